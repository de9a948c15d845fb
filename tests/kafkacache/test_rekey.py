"""Re-encryption to the newest keys (kafkacache.rekey, `manage.py keys_reencrypt`), against
the real Redis and PostgreSQL: every cached record and audit payload ends under the
newest key, so the old one can be dropped from the settings; a stopped run resumes
from its saved position; the cache leg still matches a re-encrypted record to its
published hash, and still catches drift after it."""

import base64
import io
import os
import uuid

import pytest
from django.core.management import call_command

from core import avro
from core.crypto import Keyring
from core.hashing import content_hash
from core.records import SENSITIVE, record_decode, record_encode, record_from_document
from core.redis_keys import rec_key
from kafkacache.rekey import AUDIT_POSITION, RECORDS_POSITION, audit_reencrypt, records_reencrypt
from recon import audit
from recon.cache_compare import reencrypted
from recon.models import AuditPayload
from tests.documents import DOC
from tests.recon.helpers import T0, topic_make

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
    return avro.encode(record)


def _put(cache, key: str, value: bytes) -> None:
    cache.hset(rec_key(key), mapping={"p": value, "u": str(uuid.uuid4()), "v": 1, "t": 1})


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
    assert cache.hget(rec_key("client:8"), "p") == published["client:8"]

    settings.FIELD_ENCRYPTION_KEYS = NEW  # the old key retired: every record still reads
    for key, plain in plains.items():
        value = cache.hget(rec_key(key), "p")
        assert value != published[key]
        assert record_decode(value, schema_version=1, decrypt=True, key=key) == plain

    # The cache leg: a re-encrypted record matches what was published; later drift does not.
    def vouched(key: str) -> bool:
        now = cache.hget(rec_key(key), "p")
        expected = content_hash(published[key], "blake2b")
        return content_hash(now, "blake2b") == expected or reencrypted(key, now, expected)

    assert all(vouched(key) for key in published)
    cache.hset(rec_key("client:3"), "p", published["client:5"])
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
    audit.payloads_record(topic=topic, side="published", items=items)
    audit.payloads_record(topic=topic, side="consumed", items=items[:1])  # one message delivered
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
    assert audit.message_diff(topic=topic, message_uuid=old_field[0]) == {
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
