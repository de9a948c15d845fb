"""Object permissions: only superusers manage them in the admin, and every grant and
revoke (admin pages, recon.access, a shell) is in the audit trail with who did it."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import remove_perm

from recon import access
from recon.models import OperatorAction
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_staff_with_change_topic_cannot_reach_the_object_permission_pages(topic_a, topic_b, people):
    staff = UserFactory(username="staff-changer", password=PASSWORD, is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["change_topic", "view_topic"]))
    access.topic_grant(staff, topic_a, "viewer")
    client = Client()
    client.force_login(staff)
    base = reverse("admin:recon_topic_permissions", args=[topic_a.pk])
    page = client.get(reverse("admin:recon_topic_change", args=[topic_a.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]  # granted A: read only
    # topic B is not theirs: the admin does not open it (its "does not exist" redirect)
    assert client.get(reverse("admin:recon_topic_change", args=[topic_b.pk])).status_code == 302
    assert client.get(base).status_code == 403
    manage_self = reverse("admin:recon_topic_permissions_manage_user", args=[topic_a.pk, staff.pk])
    assert client.get(manage_self).status_code == 403
    answer = client.post(manage_self, {"permissions": ["view_topic_payload", "operate_topic"]})
    assert answer.status_code == 403
    assert not access.can_view_payload(User.objects.get(pk=staff.pk), topic_a)


def test_every_grant_and_revoke_is_in_the_audit_trail_with_who_did_it(topic_a, people):
    admin, outsider = people["admin"], people["outsider"]
    client = Client()
    client.force_login(admin)
    page = reverse("admin:recon_topic_permissions_manage_user", args=[topic_a.pk, outsider.pk])
    assert client.get(reverse("admin:recon_topic_permissions", args=[topic_a.pk])).status_code == 200
    answer = client.post(page, {"permissions": ["view_topic", "view_topic_payload"]})
    assert answer.status_code == 302
    grants = OperatorAction.objects.filter(action="grant", topic=topic_a, detail__grantee="user:outsider1")
    assert {(g.user, g.detail["permission"]) for g in grants} == {
        (admin, "view_topic"),
        (admin, "view_topic_payload"),
    }
    # revoked on the same page: payload access only
    client.post(page, {"permissions": ["view_topic"]})
    revoke = OperatorAction.objects.get(action="revoke", topic=topic_a, detail__grantee="user:outsider1")
    assert (revoke.user, revoke.detail["permission"], revoke.target) == (
        admin,
        "view_topic_payload",
        f"recon.topic:{topic_a.pk}",
    )
    # outside a request (a shell, a command): recorded, with no user
    remove_perm(access.VIEW, outsider, topic_a)
    shell = OperatorAction.objects.filter(action="revoke", detail__permission="view_topic").get()
    assert shell.user is None and shell.detail["grantee"] == "user:outsider1"
