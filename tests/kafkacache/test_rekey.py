"""Re-encryption to the newest keys (kafkacache.services.reencrypt, `manage.py keys_reencrypt`), against
the real Redis and PostgreSQL: every cached record and audit payload ends under the
newest key, so the old one can be dropped from the settings; a stopped run resumes
from its saved position; the cache leg still matches a re-encrypted record to its
published hash, and still catches drift after it."""

import base64
import datetime as dt
import io
import os
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from core import avro
from core.cache_records import cache_records_get
from core.crypto import CryptoError, Keyring
from core.hashing import content_hash
from core.ods import ods_seed
from core.records import SENSITIVE, record_decode, record_encode, record_from_document
from core.sources import SqlSource
from kafkacache.cache import CacheOp, cache_apply
from kafkacache.consumer import FeedConsumer
from kafkacache.services.loads import load_run, load_start
from kafkacache.services.reencrypt import AUDIT_POSITION, RECORDS_POSITION, audit_reencrypt, records_reencrypt
from recon import audit
from recon.cache_compare import reencrypted
from recon.models import AuditPayload, Finding, Load, PublishedMessage
from recon.selectors.audit import message_diff
from recon.selectors.evidence import evidence_pack
from recon.selectors.messages import message_timeline
from recon.services.audit import payloads_record
from recon.services.cache_check import cache_check
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.cache_state import cached, record_forge
from tests.documents import DOC
from tests.people import people_make
from tests.recon.helpers import T0, topic_make
from tests.replay.conftest import feed_topics_make, fetch, fetch_uuid, finding_of, reconcile

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

OLD = "k1:" + base64.b64encode(b"o" * 32).decode()
NEW = "k2:" + base64.b64encode(b"n" * 32).decode()
AUDIT_OLD = "a1:" + base64.b64encode(b"p" * 32).decode()
AUDIT_NEW = "a2:" + base64.b64encode(b"q" * 32).decode()


def _legacy(plain: dict, ring: Keyring) -> bytes:
    """A value as the previous release wrote it: format 1, associated data the field name."""
    record = {**plain}
    for list_name, field, _ in SENSITIVE:
        items = []
        for item in plain[list_name]:
            nonce = os.urandom(12)
            blob = ring.keys[ring.current].encrypt(nonce, item[field].encode(), field.encode())
            items.append({**item, field: b"\x01\x02" + ring.current.encode() + nonce + blob})
        record[list_name] = items
    return avro.encode(record, version=1)


def _put(cache, key: str, value: bytes) -> None:
    cache_apply(cache, [CacheOp("add", key, 0, value, str(uuid.uuid4()), 1, created_ms=1)])


def test_cached_records_end_under_the_newest_key_resumably_and_still_reconcile(settings, cache):
    settings.FIELD_ENCRYPTION_KEYS = OLD
    plains = {f"client:{i}": record_from_document({**DOC, "client_id": i}) for i in range(1, 8)}
    published = {}
    for n, (key, plain) in enumerate(plains.items()):
        published[key] = _legacy(plain, Keyring.parse(OLD)) if n % 2 else record_encode(plain).value
        _put(cache, key, published[key])
    settings.FIELD_ENCRYPTION_KEYS = f"{NEW},{OLD}"  # rotation: the new key first
    published["client:8"] = record_encode(record_from_document({**DOC, "client_id": 8})).value
    _put(cache, "client:8", published["client:8"])  # already current: left alone

    class Stop(Exception):
        pass

    def stop_after_first_step(counts):
        raise Stop

    with pytest.raises(Stop):
        records_reencrypt(batch=2, progress=stop_after_first_step)
    assert cache.get(RECORDS_POSITION) is not None  # the position survives the stop
    out = io.StringIO()
    call_command("keys_reencrypt", "--only", "records", "--batch", "2", stdout=out)
    assert "records: seen" in out.getvalue()
    assert cache.get(RECORDS_POSITION) is None  # done: nothing to resume
    assert cached(cache, "client:8").value == published["client:8"]

    settings.FIELD_ENCRYPTION_KEYS = NEW  # the old key retired: every record still reads
    for key, plain in plains.items():
        value = cached(cache, key).value
        assert value != published[key]
        assert record_decode(value, schema_version=1, decrypt=True, key=key) == plain

    # The cache leg: a re-encrypted record matches what was published; later drift does not.
    def vouched(key: str) -> bool:
        now = cached(cache, key).value
        expected = content_hash(published[key], "blake2b")
        return content_hash(now, "blake2b") == expected or reencrypted(key, now, expected)

    assert all(vouched(key) for key in published)
    record_forge(cache, "client:3", value=published["client:5"])
    assert [key for key in published if not vouched(key)] == ["client:3"]
    # A run over current data rewrites nothing.
    assert records_reencrypt(batch=3).rewritten == 0


def test_audit_payloads_are_rewrapped_under_the_newest_key_and_stay_byte_for_byte(settings, cache):
    """Audit payloads as the feed records them (encoded client records, with their schema
    version): each ends under the newest audit key; one whose card and account ciphertexts
    are under the newest field key stays byte for byte, one under the old field key has them
    rewritten to the new key (the same bytes on both sides of a message) and keeps the
    original bytes' hashes, so it still stands for what was published."""
    topic = topic_make("rekey-audit", method_audit=True)
    settings.AUDIT_ENCRYPTION_KEYS = AUDIT_OLD
    plains = {uuid.uuid4(): record_from_document({**DOC, "client_id": i}) for i in range(1, 6)}
    old_field, new_field = list(plains)[:3], list(plains)[3:]
    encoded = {}
    settings.FIELD_ENCRYPTION_KEYS = OLD
    encoded.update({u: record_encode(plains[u]) for u in old_field})
    settings.FIELD_ENCRYPTION_KEYS = NEW
    encoded.update({u: record_encode(plains[u]) for u in new_field})
    payloads = {u: e.value for u, e in encoded.items()}
    items = [(u, e.value, T0, e.schema_version) for u, e in encoded.items()]
    payloads_record(topic=topic, side="published", items=items)
    payloads_record(topic=topic, side="consumed", items=items[:1])  # one message delivered
    settings.FIELD_ENCRYPTION_KEYS = f"{NEW},{OLD}"  # both rotations: the new keys first
    settings.AUDIT_ENCRYPTION_KEYS = f"{AUDIT_NEW},{AUDIT_OLD}"

    calls = []

    def stop_after_two_steps(counts):
        calls.append(counts.rewritten)
        if len(calls) == 2:
            raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        audit_reencrypt(batch=2, progress=stop_after_two_steps)
    assert int(cache.get(AUDIT_POSITION)) > 0
    assert AuditPayload.objects.filter(key_id="a2").count() == 4
    counts = audit_reencrypt(batch=2)
    assert (counts.rewritten, counts.skipped, counts.done) == (2, 0, True)
    assert cache.get(AUDIT_POSITION) is None

    settings.FIELD_ENCRYPTION_KEYS = NEW  # the old keys retired
    settings.AUDIT_ENCRYPTION_KEYS = AUDIT_NEW
    rows = list(AuditPayload.objects.order_by("id"))
    assert {r.key_id for r in rows} == {"a2"}
    for row in rows:
        value = audit.unseal(row)
        assert record_decode(value, schema_version=row.schema_version, decrypt=True) == plains[row.uuid]
        for alg in ("blake2b", "xxh3", "crc32"):
            assert audit.payload_hash(row, value, alg) == content_hash(payloads[row.uuid], alg)
        if row.uuid in new_field:  # only re-wrapped: the very bytes that were published
            assert value == payloads[row.uuid]
            assert (row.reencrypted_at, row.original_hashes, row.reencrypted_from) == (None, "", "")
        else:
            assert value != payloads[row.uuid]
            assert row.reencrypted_at is not None and row.reencrypted_from == "k1"
            assert row.reencrypted_hash == content_hash(value, "blake2b").hex()
            assert row.size == len(value)
    first = [audit.unseal(r) for r in rows if r.uuid == old_field[0]]
    assert len(first) == 2 and first[0] == first[1]  # published and consumed copies stay equal
    assert message_diff(topic=topic, message_uuid=old_field[0]) == {
        "available": True,
        "bytes_equal": True,
        "fields": [],
    }

    # Bytes changed after re-encryption are not passed off as the original.
    tampered = rows[0]
    assert audit.payload_hash(tampered, payloads[old_field[1]], "blake2b") != content_hash(payloads[tampered.uuid])
    # A second run finds everything current.
    again = audit_reencrypt(batch=2, restart=True)
    assert (again.rewritten, again.current, again.skipped) == (0, 6, 0)


def numbers(record: dict) -> tuple:
    """A record's clear account and card numbers (as the retrieval API serves them, or decoded)."""
    return (
        record["client_id"],
        [a["account_number"] for a in record["accounts"]],
        [c["card_number"] for c in record["cards"]],
    )


def test_the_old_field_key_retires_after_keys_reencrypt_and_everything_still_reads_replays_and_reconciles(
    settings, cache, unique_name
):
    """The proof, through the real feed (Kafka, Redis, PostgreSQL): clients loaded and
    consumed under field key k1, audit payloads kept on both sides, one message lost on the
    way. Dropping k1 at once leaves the cache unreadable; rotating to [k2, k1], running
    `keys_reencrypt` to the end and only then dropping k1 leaves every cached record
    readable (retrieval API and record_decode), the audit-way replay of the lost
    pre-rotation message works, and neither the transport reconcile (content hashes, audit
    field diff) nor the cache leg reports an alteration. Kafka's own copy of an old message
    still needs k1 (the limit the README states)."""
    settings.FIELD_ENCRYPTION_KEYS = OLD
    feed = feed_topics_make(settings, unique_name)
    topic = feed.bulk
    ods_seed(clients=5, using="default")
    load = load_run(
        load_id=load_start(topic=topic, source="ods", client_ids=[1, 2, 3, 4, 5], requested_by=None, queue=False).id
    )
    assert load.status == Load.Status.DONE
    rows = {r.key: r for r in PublishedMessage.objects.filter(load_id=load.id)}
    assert len(rows) == 5
    lost = rows["client:3"]
    messages = fetch(topic.name, 0, 5)
    FeedConsumer().process_batch([m for m in messages if m.offset() != lost.offset])
    assert cached(cache, lost.key) is None
    reconcile(topic)
    assert finding_of(topic, "missing", lost.uuid).status == Finding.Status.OPEN
    assert AuditPayload.objects.filter(topic=topic).count() == 5 + 4  # published and consumed sides
    expected = {
        item.key: item.record for batch in SqlSource().batches(client_ids=range(1, 6), batch_size=10) for item in batch
    }
    operator = people_make(viewed=[topic], operated=[topic], roles=("operator",), role_groups=False)["operator"]
    api = APIClient()
    api.force_authenticate(operator)

    def served() -> dict[str, dict]:
        body = api.get(f"/api/cache/{load.retrieval_key}").json()
        return {item["key"]: item for item in body["results"]}

    cached_keys = sorted(set(expected) - {lost.key})
    assert {k: numbers(v["record"]) for k, v in served().items() if v["state"] == "cached"} == {
        k: numbers(expected[k]) for k in cached_keys
    }

    # The control: k1 dropped before re-encryption, nothing reads any more.
    settings.FIELD_ENCRYPTION_KEYS = NEW
    assert {k: v["state"] for k, v in served().items()} == dict.fromkeys(cached_keys, "unreadable")
    assert "'k1', which is not configured" in served()["client:1"]["error"]
    hit = cache_records_get(cache, ["client:1"])["client:1"]
    with pytest.raises(CryptoError):
        record_decode(hit.value, schema_version=hit.schema_version, decrypt=True, key="client:1")

    # The rotation: k2 first, k1 still there; the command to its end; then k1 dropped.
    settings.FIELD_ENCRYPTION_KEYS = f"{NEW},{OLD}"
    out = io.StringIO()
    call_command("keys_reencrypt", "--batch", "3", stdout=out)
    assert "records: seen 4, rewritten 4, already current 0, skipped 0" in out.getvalue()
    assert "audit: seen 9, rewritten 9, already current 0, skipped 0" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = NEW

    # Every cached record reads under k2 alone: the retrieval API and the decode function.
    items = served()
    assert {k: v["state"] for k, v in items.items()} == dict.fromkeys(cached_keys, "cached")
    for key, hit in cache_records_get(cache, cached_keys).items():
        assert hit.value != next(m.value() for m in messages if m.key().decode() == key)  # rewritten
        assert record_decode(hit.value, schema_version=hit.schema_version, decrypt=True, key=key) == expected[key]
    by_uuid = {r.uuid: r for r in rows.values()}
    # Every audit payload's fields are under k2 now, and still stand for the published bytes.
    for row in AuditPayload.objects.filter(topic=topic):
        value = audit.unseal(row)
        assert record_decode(value, schema_version=row.schema_version, decrypt=True) == expected[by_uuid[row.uuid].key]
        assert audit.payload_hash(row, value, topic.hash_algorithm) == bytes(by_uuid[row.uuid].content_hash)
    delivered = rows["client:1"].uuid
    assert message_diff(topic=topic, message_uuid=delivered)["bytes_equal"] is True

    # The audit-way replay of the lost pre-rotation message.
    replay, _ = replay_request(
        topic=topic,
        way="audit",
        scope="messages",
        target={"uuids": [str(lost.uuid)]},
        reason="lost before the key rotation",
        requested_by=operator,
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    assert (replay.status, replay.outcome) == ("done", {"published": 1})
    message = fetch_uuid(topic, replay.items.get().uuid)
    FeedConsumer().process_batch([message])
    hit = cache_records_get(cache, [lost.key])[lost.key]
    assert record_decode(hit.value, schema_version=hit.schema_version, decrypt=True, key=lost.key) == expected[lost.key]
    # Kafka's own copy of the lost message is still under k1: a Kafka-way replay of it needs k1.
    original = next(m for m in messages if m.offset() == lost.offset)
    with pytest.raises(CryptoError):
        record_decode(original.value(), schema_version=hit.schema_version, decrypt=True, key=lost.key)

    # Reconciled: the missing message resolved by the replay, no alteration anywhere.
    run = reconcile(topic)
    assert finding_of(topic, "missing", lost.uuid).status == Finding.Status.RESOLVED
    assert run.report["findings"] == {}
    assert not Finding.objects.filter(topic=topic, category="altered").exists()
    # The drill-down and the evidence pack show each payload's hash as recorded, and say it was re-encrypted.
    today = timezone.now().date().isoformat()
    shown = message_timeline(user=operator, uuid=delivered).audit_payload["hashes"]
    assert [h["side"] for h in shown] == ["published", "consumed"]
    assert {h["hash"] for h in shown} == {bytes(rows["client:1"].content_hash).hex()}
    assert {h["reencrypted"] for h in shown} == {f"re-encrypted on {today} to field key k2 (from k1); hash as recorded"}
    now = timezone.now()
    pack = evidence_pack(
        topic=topic,
        start=now - dt.timedelta(days=1),
        end=now + dt.timedelta(hours=1),
        user=operator,
        with_payloads=True,
    )
    lost_payloads = [p for p in pack["payloads"] if p["uuid"] == str(lost.uuid)]
    assert [p["hash"] for p in lost_payloads] == [bytes(lost.content_hash).hex()]
    assert lost_payloads[0]["reencrypted"].startswith(f"re-encrypted on {today} to field key k2")
    cache_run = cache_check(topic=topic, load=load, now=timezone.now() + dt.timedelta(hours=2))
    assert cache_run.status == "done"
    assert not Finding.objects.filter(topic=topic, category="cache", status=Finding.Status.OPEN).exists()
