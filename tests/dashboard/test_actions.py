"""Batch load from the dashboard, and the audit payload on the message page."""

import datetime as dt
import uuid

import pytest
from django.urls import reverse

from core.records import record_encode, record_from_document
from recon.models import Load, OperatorAction
from recon.services.audit import payloads_record
from tests.dashboard.conftest import publish

pytestmark = pytest.mark.django_db

DOCUMENT = {
    "client_id": 42,
    "name": "ACME",
    "segment": "retail",
    "status": "active",
    "country": "DE",
    "updated_at": "2026-11-25T10:00:00+00:00",
    "accounts": [
        {
            "account_number": "12345678901",
            "product": "current",
            "currency": "EUR",
            "daily_limit_cents": 100000,
            "overdraft_enabled": False,
            "alerts_enabled": True,
            "statement_day": 1,
            "language": "de",
        }
    ],
    "cards": [
        {"card_id": 7, "card_number": "4111111111111111", "brand": "visa", "expiry": "12/29", "status": "active"}
    ],
}


def test_operator_starts_a_load_of_their_topic(client_for, people, topic_a):
    page = client_for("operator").get(reverse("dashboard:loads")).content.decode()
    assert 'action="/loads/start"' in page and topic_a.name in page
    response = client_for("operator").post(
        reverse("dashboard:load-start"), {"topic": topic_a.name, "source": "ods", "client_ids": "3, 1,2"}
    )
    load = Load.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:load", args=[load.pk])
    assert (load.topic, load.client_ids, load.requested_by, load.status) == (
        topic_a,
        [1, 2, 3],
        people["operator"],
        "queued",
    )
    assert OperatorAction.objects.filter(action="load.start", target=f"load:{load.pk}").exists()


def test_load_start_is_refused_to_others(client_for, people, topic_a, topic_b):
    assert b'action="/loads/start"' not in client_for("viewer").get(reverse("dashboard:loads")).content
    forged = {"topic": topic_a.name, "source": "ods"}
    assert client_for("viewer").post(reverse("dashboard:load-start"), forged).status_code == 403
    on_b = {"topic": topic_b.name, "source": "ods"}
    assert client_for("operator").post(reverse("dashboard:load-start"), on_b).status_code == 403
    assert not Load.objects.exists()


def test_load_start_bad_input_is_a_message(client_for, people, topic_a):
    client = client_for("operator")
    bad_ids = client.post(
        reverse("dashboard:load-start"), {"topic": topic_a.name, "source": "ods", "client_ids": "1,x"}
    )
    assert bad_ids.status_code == 302
    bad_source = client.post(reverse("dashboard:load-start"), {"topic": topic_a.name, "source": "ftp://x"}, follow=True)
    assert b"Load not started" in bad_source.content and b"unknown source" in bad_source.content
    assert not Load.objects.exists()


def test_audit_payload_shown_masked_to_payload_users_only(client_for, people, topic_a):
    topic_a.method_audit = True
    topic_a.save()
    row = publish(topic_a, 1, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))[0]
    encoded = record_encode(record_from_document(DOCUMENT))
    payloads_record(topic=topic_a, side="published", items=[(row.uuid, encoded.value, row.published_at, 1)])
    url = reverse("dashboard:message", args=[row.uuid])

    as_operator = client_for("operator").get(url)
    payload = as_operator.context["t"].audit_payload
    card = payload["published"][0]["cards"][0]
    assert card["card_number"].endswith("1111") and "4111111111111111" not in as_operator.content.decode()
    assert payload["published"][0]["accounts"][0]["account_number"].endswith("8901")
    assert "12345678901" not in as_operator.content.decode()

    as_viewer = client_for("viewer").get(url)
    assert as_viewer.context["t"].audit_payload is None
    assert b"not shown to your role" in as_viewer.content
    api = client_for("viewer").get(reverse("api-message", args=[row.uuid])).json()
    assert api["audit_payload"] is None
    assert client_for("operator").get(reverse("api-message", args=[uuid.uuid4()])).status_code == 404
