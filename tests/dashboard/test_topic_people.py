"""A topic's people on its page: its admins add a person with one role, change it, remove them;
nobody else may, nobody changes their own; every change is in the audit trail with before and
after, and the page shows roles, never permissions."""

import pytest
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm

from recon import access
from recon.models import OperatorAction
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def topic_admin(topic_a):
    user = UserFactory(username="topicadmin1", password=PASSWORD)
    access.topic_grant(user, topic_a, "admin")
    return user


@pytest.fixture
def newcomer():
    return UserFactory(username="newcomer1", password=PASSWORD)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _set(client, topic, username, role):
    return client.post(reverse("dashboard:topic-member-set", args=[topic.pk]), {"username": username, "role": role})


def test_a_topic_admin_adds_changes_and_removes_a_person_each_audited_with_before_and_after(
    topic_a, topic_admin, newcomer
):
    client = _client(topic_admin)
    response = _set(client, topic_a, "NewComer1", "operator")  # usernames in any spelling
    assert response.status_code == 302
    assert access.can_operate(newcomer, topic_a) and not access.can_manage_people(newcomer, topic_a)

    _set(client, topic_a, "newcomer1", "viewer")
    assert access.can_view(newcomer, topic_a) and not access.can_operate(newcomer, topic_a)
    assert not access.can_view_payload(newcomer, topic_a)  # one role: nothing of the operator stays

    client.post(reverse("dashboard:topic-member-remove", args=[topic_a.pk]), {"username": "newcomer1"})
    assert not access.can_view(newcomer, topic_a)

    trail = OperatorAction.objects.filter(target="user:newcomer1", topic=topic_a, outcome="accepted").order_by("pk")
    assert [(a.action, a.detail["before"], a.detail["after"], a.user) for a in trail] == [
        ("topic.member_set", None, "operator", topic_admin),
        ("topic.member_set", "operator", "viewer", topic_admin),
        ("topic.member_remove", "viewer", None, topic_admin),
    ]


def test_nobody_without_the_topic_admin_role_changes_people_and_the_refusal_is_recorded(
    people, topic_a, topic_b, newcomer
):
    access.topic_grant(people["operator"], topic_b, "admin")  # an admin of B, operator of A
    for role, status in (("operator", 403), ("viewer", 403), ("outsider", 404)):
        response = _set(_client(people[role]), topic_a, "newcomer1", "operator")
        assert response.status_code == status, role
        response = _client(people[role]).post(
            reverse("dashboard:topic-member-remove", args=[topic_a.pk]), {"username": "viewer1"}
        )
        assert response.status_code == status, role
    assert not access.can_view(newcomer, topic_a)
    assert access.can_view(people["viewer"], topic_a)
    refused = OperatorAction.objects.filter(topic=topic_a, outcome="refused", action__startswith="topic.member")
    assert refused.count() == 4  # the operator's and the viewer's, each twice; the outsider learns nothing
    # A malformed post or an unknown name is a 403 too: a non-admin learns nothing of who exists.
    assert _set(_client(people["operator"]), topic_a, "nobody-here", "operator").status_code == 403
    assert _set(_client(people["operator"]), topic_a, "", "god").status_code == 403


def test_a_topic_admin_cannot_change_their_own_role_and_the_page_offers_no_way_to(topic_a, topic_admin):
    client = _client(topic_admin)
    assert _set(client, topic_a, "topicadmin1", "viewer").status_code == 403
    assert access.can_manage_people(topic_admin, topic_a)
    assert OperatorAction.objects.filter(target="user:topicadmin1", outcome="refused: own role").exists()
    page = client.get(reverse("dashboard:topic", args=[topic_a.pk])).content.decode()
    assert 'data-change="topicadmin1"' not in page


def test_permissions_given_one_by_one_become_one_role_and_the_page_never_shows_a_permission(
    topic_a, topic_admin, newcomer
):
    assign_perm("recon.view_topic", newcomer, topic_a)
    assign_perm("recon.change_topic", newcomer, topic_a)  # what the admin's object-permission page can add
    client = _client(topic_admin)
    page = client.get(reverse("dashboard:topic", args=[topic_a.pk])).content.decode()
    assert 'data-member="newcomer1"' in page and "no single role" in page
    _set(client, topic_a, "newcomer1", "auditor")
    assert (
        access.role_of(
            newcomer.userobjectpermission_set.filter(object_pk=str(topic_a.pk)).values_list(
                "permission__codename", flat=True
            )
        )
        == "auditor"
    )
    entry = OperatorAction.objects.get(action="topic.member_set", target="user:newcomer1")
    assert entry.detail["before"] is None or entry.detail["before"] == ""
    assert set(entry.detail["before_permissions"]) == {"view_topic", "change_topic"}
    page = client.get(reverse("dashboard:topic", args=[topic_a.pk])).content.decode()
    for codename in ("view_topic", "operate_topic", "change_topic", "export_topic_evidence", "manage_topic_people"):
        assert codename not in page


def test_the_topics_page_lists_what_the_user_sees_with_their_role(people, topic_a, topic_b):
    page = _client(people["operator"]).get(reverse("dashboard:topics")).content.decode()
    assert f'data-topic="{topic_a.name}"' in page and f'data-topic="{topic_b.name}"' in page
    assert ">operator<" in page and ">viewer<" in page
    outsider = _client(people["outsider"]).get(reverse("dashboard:topics")).content.decode()
    assert topic_a.name not in outsider
    assert _client(people["outsider"]).get(reverse("dashboard:topic", args=[topic_a.pk])).status_code == 404
