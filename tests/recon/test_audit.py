"""Audit log: payloads encrypted at rest, per-topic opt-in, retention purge, field-level diff."""

import datetime as dt
import uuid

import pytest
from cryptography.exceptions import InvalidTag
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from core.hashing import content_hash
from core.records import record_encode
from recon import audit
from recon.audit import field_diff, unseal
from recon.models import AuditPayload, Finding
from recon.selectors.audit import message_diff
from recon.services.audit import audit_purge, payloads_record
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record
from recon.services.windows import range_reconcile
from tests.recon.helpers import T0, topic_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

SECRET = b"client:7 card 4111111111111111"


def _plain(name: str, card: str = "4111111111111111") -> dict:
    return {
        "client_id": 7,
        "name": name,
        "email": None,
        "segment": "retail",
        "status": "active",
        "country": "DE",
        "updated_at": T0,
        "accounts": [],
        "cards": [
            {
                "card_id": 70,
                "card_number": card,
                "card_last4": card[-4:],
                "brand": "visa",
                "expiry": "12/29",
                "status": "active",
            }
        ],
    }


def test_payloads_are_encrypted_at_rest_and_only_kept_when_audit_is_on():
    on, off = topic_make("audit-on", method_audit=True), topic_make("audit-off")
    message = uuid.uuid4()
    assert payloads_record(topic=off, side="published", items=[(message, SECRET, T0)]) == 0
    assert payloads_record(topic=on, side="published", items=[(message, SECRET, T0, 1)]) == 1
    row = AuditPayload.objects.get()
    assert SECRET not in bytes(row.payload) and b"4111" not in bytes(row.payload)
    assert unseal(row) == SECRET and row.size == len(SECRET) and row.schema_version == 1
    assert row.expires_at - row.stored_at == dt.timedelta(days=on.audit_retention_days)
    # The ciphertext is bound to its row: passed off as the consumed side, it does not open.
    row.side = "consumed"
    with pytest.raises(InvalidTag):
        unseal(row)
    with pytest.raises(ValueError, match="side"):
        payloads_record(topic=on, side="sideways", items=[(message, SECRET, T0)])


def test_purge_removes_only_expired_payloads():
    topic = topic_make("audit-purge", method_audit=True, audit_retention_days=7)
    payloads_record(topic=topic, side="consumed", items=[(uuid.uuid4(), b"x", T0) for _ in range(3)])
    AuditPayload.objects.filter(pk=AuditPayload.objects.order_by("pk").first().pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert audit_purge() == 1
    assert AuditPayload.objects.count() == 2
    assert audit_purge(now=timezone.now() + dt.timedelta(days=8), chunk=1) == 2
    assert not AuditPayload.objects.exists()


def test_malformed_keys_fail_with_the_setting_name(settings):
    settings.AUDIT_ENCRYPTION_KEYS = "k1:not-base64!"
    with pytest.raises(ImproperlyConfigured, match="AUDIT_ENCRYPTION_KEYS"):
        audit.keyring_check()


def test_old_keys_still_decrypt_after_rotation(settings):
    topic = topic_make("audit-rotate", method_audit=True)
    payloads_record(topic=topic, side="published", items=[(uuid.uuid4(), SECRET, T0)])
    old = settings.AUDIT_ENCRYPTION_KEYS
    settings.AUDIT_ENCRYPTION_KEYS = "audit2:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=," + old
    payloads_record(topic=topic, side="published", items=[(uuid.uuid4(), SECRET, T0)])
    assert sorted(AuditPayload.objects.values_list("key_id", flat=True)) == ["audit1", "audit2"]
    assert {unseal(r) for r in AuditPayload.objects.all()} == {SECRET}


def test_field_diff_lists_changed_paths():
    a = {"name": "Ann", "cards": [{"n": 1}, {"n": 2}]}
    b = {"name": "Ann", "cards": [{"n": 1}, {"n": 3}, {"n": 4}]}
    assert [d["path"] for d in field_diff(a, b)] == ["cards#", "cards[1].n", "cards[2].n"]
    assert field_diff(a, a) == []


def test_altered_message_gets_its_changed_fields_from_the_audit_log():
    topic = topic_make("audit-diff", method_audit=True)
    message = uuid.uuid4()
    sent = record_encode(_plain("Ann Smith")).value
    received = record_encode(_plain("Ann Smyth", card="5500000000000004")).value
    published_record(
        topic=topic,
        rows=[PublishedRow(message, 0, 0, "client:7", "bulk", content_hash(sent), len(sent), T0)],
    )
    consumed_record(
        topic=topic,
        rows=[ConsumedRow(message, "g", 0, 0, "client:7", content_hash(received), T0, T0, "stored")],
    )
    payloads_record(topic=topic, side="published", items=[(message, sent, T0, 1)])
    payloads_record(topic=topic, side="consumed", items=[(message, received, T0, 1)])

    range_reconcile(
        topic=topic, start=T0, end=T0 + dt.timedelta(minutes=5), trigger="test", now=T0 + dt.timedelta(hours=1)
    )
    finding = Finding.objects.get(topic=topic, category="altered")
    # Paths only in the finding (viewers see findings); the card number changed as ciphertext.
    assert finding.detail["audit"]["fields"] == ["cards[0].card_last4", "cards[0].card_number", "name"]
    assert "5500000000000004" not in str(finding.detail)  # the whole number: a 4-digit piece can be in a hash by chance

    full = message_diff(topic=topic, message_uuid=message, decrypt=True)
    by_path = {d["path"]: d for d in full["fields"]}
    assert by_path["name"] == {"path": "name", "published": "Ann Smith", "consumed": "Ann Smyth"}
    assert by_path["cards[0].card_number"]["consumed"] == "5500000000000004"
