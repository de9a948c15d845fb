"""No global permission grants a topic, anywhere: the admin site, the cache API, payloads, exports.

The staff member here holds every global permission of every model (all of them, as a
careless "select all" in the admin's user page would give) and no topic grant, or a
grant on topic A only. What they reach is checked over the real site: every admin URL
filled with topic A's objects (the security walk's world), the cache API, the message
page and the evidence export. `topic_revoke` takes every permission of a topic away.
"""

import json
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import models
from django.test import Client
from django.urls import reverse
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm

from recon import access
from recon.admin_access import TopicScopedAdmin
from recon.models import Load, OperatorAction, Topic
from tests.dashboard.conftest import CARD
from tests.factories import PASSWORD, UserFactory

from .conftest import concrete_paths

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def every_permission(db):
    """Staff, not superuser, with every global permission there is, and no topic grant."""
    user = UserFactory(username="staff-every-perm", password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    return user


def _client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode(errors="replace")


def _scoped(app_label: str, model_name: str) -> bool:
    try:
        model = apps.get_model(app_label, model_name)
    except (LookupError, ValueError):
        return False
    return isinstance(admin.site._registry.get(model), TopicScopedAdmin)


def _admin_object_paths(world) -> list[str]:
    """Admin change, history and delete URLs of topic A's objects, for every topic-scoped model."""
    out = []
    for path in concrete_paths(world):
        parts = path.strip("/").split("/")
        objects = parts[0] == "admin" and len(parts) == 5 and parts[4] in ("change", "history", "delete")
        if objects and _scoped(parts[1], parts[2]):
            out.append(path)
    return out


def test_every_global_permission_shows_no_topic_in_the_admin(world, every_permission, topic_a, topic_b):
    client = _client(every_permission)
    secrets_of_a = [topic_a.name, topic_b.name, world.retrieval_key, str(world.message_uuid)]
    leaks, opened = [], []
    for path in concrete_paths(world):
        if not path.startswith("/admin/") or "/permissions/" in path:
            continue
        response = client.get(path)
        content = _body(response)
        leaks += [(path, s) for s in secrets_of_a if s in content]
    for path in _admin_object_paths(world):
        if client.get(path).status_code == 200:
            opened.append(path)
    assert len(_admin_object_paths(world)) >= 30  # change, history and delete of a dozen models
    assert leaks == []
    assert opened == []
    # the changelists answer (the permission lets them in) and list nothing of any topic
    for model in (Topic, Load, OperatorAction, *apps.get_app_config("recon").get_models()):
        model_admin = admin.site._registry.get(model)
        if not isinstance(model_admin, TopicScopedAdmin) or model_admin.topic_path is None:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.context["cl"].result_count == 0, url


def test_autocomplete_and_raw_id_popups_follow_the_rule(world, every_permission, topic_a):
    client = _client(every_permission)
    hits, asked = [], 0
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if not isinstance(field, models.ForeignKey):
                continue
            if not isinstance(admin.site._registry.get(field.remote_field.model), TopicScopedAdmin):
                continue
            params = {"app_label": model._meta.app_label, "model_name": model._meta.model_name}
            answer = client.get("/admin/autocomplete/", {**params, "field_name": field.name})
            asked += 1
            if answer.status_code == 200 and answer.json()["results"]:
                hits.append((model.__name__, field.name, answer.json()["results"][:2]))
    assert asked >= 10 and hits == []
    popup = client.get(reverse("admin:recon_topic_changelist"), {"_popup": "1", "_to_field": "id"})
    assert popup.status_code == 200 and topic_a.name not in _body(popup)
    # the superuser's autocomplete does list the topic: the check above can see one
    superuser = _client(UserFactory(username="root-auto", is_staff=True, is_superuser=True))
    found = superuser.get(
        "/admin/autocomplete/",
        {"app_label": "recon", "model_name": "finding", "field_name": "topic", "term": topic_a.name},
    )
    assert [r["text"] for r in found.json()["results"]] == [topic_a.name]


def test_a_topic_grant_opens_that_topic_in_the_admin_read_only(world, every_permission, topic_a, topic_b):
    access.topic_grant(every_permission, topic_a, "viewer")
    client = _client(every_permission)
    findings = client.get(reverse("admin:recon_finding_changelist"))
    assert {f.topic for f in findings.context["cl"].result_list} == {topic_a}
    assert topic_b.name not in _body(findings)  # not in the rows, not in the topic filter
    load = Load.objects.get(retrieval_key=world.retrieval_key)
    page = client.get(reverse("admin:recon_load_change", args=[load.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert world.retrieval_key not in _body(page)  # the admin never shows a key
    searched = client.get(reverse("admin:recon_load_changelist"), {"q": world.retrieval_key})
    assert searched.context["cl"].result_count == 0
    # writes of topic-scoped rows are for superusers, whatever the global permissions
    finding = world.finding_pk
    assert client.post(reverse("admin:recon_finding_delete", args=[finding]), {"post": "yes"}).status_code == 403
    rule_add = client.get(reverse("admin:recon_rule_add"))
    assert rule_add.status_code == 403
    # an operator's grant (payload permission) finds the load by its key
    access.topic_grant(every_permission, topic_a, "operator")
    searched = client.get(reverse("admin:recon_load_changelist"), {"q": world.retrieval_key})
    assert list(searched.context["cl"].result_list) == [load]


def test_a_global_payload_permission_decrypts_nothing(world, people, topic_a):
    viewer = people["viewer"]  # views topic A, no payload grant
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_topic_payload", "export_topic_evidence", "operate_topic"])
    )
    client = _client(viewer)
    cache = client.get(f"/api/cache/{world.retrieval_key}")
    assert cache.status_code == 200
    assert cache.json()["decrypted"] is False and CARD not in json.dumps(cache.json())
    loads = client.get("/api/loads").json()["results"]
    assert all(row["retrieval_key"] is None for row in loads)
    assert CARD not in _body(client.get(f"/messages/{world.message_uuid}/"))
    # and the operator's own grant still decrypts: the check above can see a card
    assert CARD in json.dumps(_client(people["operator"]).get(f"/api/cache/{world.retrieval_key}").json())


def test_a_global_export_permission_exports_nothing(data, people, topic_a, topic_b):
    viewer = people["viewer"]  # views A and B, exports neither
    viewer.user_permissions.add(*Permission.objects.filter(codename="export_topic_evidence"))
    client = _client(viewer)
    page = _body(client.get(reverse("dashboard:evidence")))
    assert topic_a.name not in page and topic_b.name not in page
    window = {"start": "2020-01-01T00:00Z", "end": "2030-01-01T00:00Z"}
    answer = client.get("/api/evidence/", {"topic": topic_a.name, **window})
    assert answer.status_code == 403
    auditor = UserFactory(username="auditor-a", password=PASSWORD)
    access.topic_grant(auditor, topic_a, "auditor")
    page = _body(_client(auditor).get(reverse("dashboard:evidence")))
    assert topic_a.name in page and topic_b.name not in page


def test_topic_revoke_takes_every_permission_of_the_topic(topic_a, topic_b):
    user = UserFactory(username="revoked-one", password=PASSWORD)
    access.topic_grant(user, topic_a, "operator")
    access.topic_grant(user, topic_b, "viewer")
    assign_perm("recon.change_topic", user, topic_a)  # what the admin's object-permission page can add
    access.topic_revoke(user, topic_a)
    left = UserObjectPermission.objects.filter(user=user).values_list("object_pk", "permission__codename")
    assert set(left) == {(str(topic_b.pk), "view_topic")}
    for check in (access.can_view, access.can_operate, access.can_view_payload, access.can_export_evidence):
        assert not check(user, topic_a)
    revoked = OperatorAction.objects.filter(action="revoke", topic=topic_a, detail__grantee="user:revoked-one")
    assert {r.detail["permission"] for r in revoked} == {
        "view_topic",
        "operate_topic",
        "view_topic_payload",
        "export_topic_evidence",
        "change_topic",
    }


def test_an_inactive_user_holds_no_topic(topic_a):
    user = UserFactory(username="gone-quiet", password=PASSWORD)
    access.topic_grant(user, topic_a, "operator")
    user.is_active = False
    assert not access.can_view(user, topic_a) and not access.topics_visible(user).exists()


def test_no_code_asks_guardian_for_global_permissions_or_lists_topics_outside_the_rule():
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] in ("tests", ".venv", "bench") or "migrations" in path.parts:
            continue
        text = path.read_text()
        if "accept_global_perms=True" in text:
            offenders.append((str(path.relative_to(ROOT)), "accept_global_perms=True"))
        if path.relative_to(ROOT) != Path("recon/access.py") and (
            "get_objects_for_user" in text or ".has_perm(" in text
        ):
            offenders.append((str(path.relative_to(ROOT)), "asks guardian outside recon.access"))
    assert offenders == []


def _reaches_topic(model, depth: int = 0) -> bool:
    for field in model._meta.get_fields():
        if field.name == "topic":
            return True
        parent = field.remote_field.model if isinstance(field, models.ForeignKey) else None
        if depth < 1 and parent not in (None, model, Topic) and _reaches_topic(parent, depth + 1):
            return True
    return model is Topic


def test_every_admin_of_a_topic_scoped_model_follows_the_rule():
    """A model that names a topic (or whose parent does) gets TopicScopedAdmin, or is left unregistered."""
    ungoverned = [
        model.__name__
        for model, model_admin in admin.site._registry.items()
        if _reaches_topic(model) and not isinstance(model_admin, TopicScopedAdmin)
    ]
    assert ungoverned == []
