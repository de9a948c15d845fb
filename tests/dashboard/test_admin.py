"""The admin site: every model registered, ledger lists cheap and read-only, topic permissions."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from core.admin_tools import COUNT_CAP, CappedCountPaginator
from recon.models import OperatorAction, PublishedMessage, Topic

pytestmark = pytest.mark.django_db


def test_every_model_of_our_apps_is_registered():
    for label in ("kafkacache", "recon"):
        for model in apps.get_app_config(label).get_models():
            assert admin.site.is_registered(model), model.__name__


def test_every_changelist_answers(client_for, data):
    client = client_for("admin")
    for label in ("kafkacache", "recon"):
        for model in apps.get_app_config(label).get_models():
            url = reverse(f"admin:{label}_{model._meta.model_name}_changelist")
            assert client.get(url).status_code == 200, url
            assert client.get(url, {"q": "' OR 1=1 --"}).status_code == 200, url


def test_ledger_admin_is_read_only_and_searches_by_uuid(client_for, data):
    client = client_for("admin")
    url = reverse("admin:recon_publishedmessage_changelist")
    row = data["rows_a"][0]
    found = client.get(url, {"q": str(row.uuid)})
    assert list(found.context["cl"].result_list) == [PublishedMessage.objects.get(uuid=row.uuid)]
    by_key = client.get(url, {"q": row.key}).context["cl"].result_list
    assert {p.key for p in by_key} == {row.key}
    assert found.context["cl"].show_full_result_count is False
    assert client.get(reverse("admin:recon_publishedmessage_add")).status_code == 403
    assert client.get(reverse("admin:recon_operatoraction_changelist")).status_code == 200
    action = OperatorAction.objects.first()
    assert (
        client.post(reverse("admin:recon_operatoraction_delete", args=[action.pk]), {"post": "yes"}).status_code == 403
    )


def test_capped_paginator_counts_no_further_than_the_cap(data):
    assert CappedCountPaginator(PublishedMessage.objects.order_by("-id"), 50).count == 9
    assert COUNT_CAP >= 1000


def test_topic_admin_grants_object_permissions_and_records_changes(client_for, data, topic_a, people):
    client = client_for("admin")
    assert client.get(reverse("admin:recon_topic_permissions", args=[topic_a.pk])).status_code == 200
    response = client.get(reverse("admin:recon_topic_change", args=[topic_a.pk]))
    form = response.context["adminform"].form
    payload = {k: v for k, v in form.initial.items() if v is not None}
    payload.update(window_seconds=600)
    payload = {k: ("on" if v is True else v) for k, v in payload.items() if v is not False}
    assert client.post(reverse("admin:recon_topic_change", args=[topic_a.pk]), payload).status_code == 302
    assert Topic.objects.get(pk=topic_a.pk).window_seconds == 600
    assert OperatorAction.objects.filter(
        action="topic-change", topic=topic_a, detail__changed=["window_seconds"]
    ).exists()
    # Opening the topic to unsealed producers is in the trail with its before and after.
    payload.update(accepts_unsealed="on")
    assert client.post(reverse("admin:recon_topic_change", args=[topic_a.pk]), payload).status_code == 302
    assert Topic.objects.get(pk=topic_a.pk).accepts_unsealed is True
    opened = OperatorAction.objects.get(action="topic-change", topic=topic_a, detail__changed=["accepts_unsealed"])
    assert opened.detail["accepts_unsealed"] == {"before": False, "after": True}


def test_non_staff_cannot_enter_admin(client_for):
    response = client_for("operator").get(reverse("admin:index"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
