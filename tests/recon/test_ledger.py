"""Ledger writes land in the partitioned tables and keep window counts and digests."""

import datetime as dt
import uuid

import pytest

from core.hashing import MOD64, content_hash, digest_sum, window_digest
from recon.models import ConsumedMessage, PublishedMessage, Topic, Window
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

T0 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


def _published(n: int, at: dt.datetime) -> list[PublishedRow]:
    return [
        PublishedRow(uuid.uuid4(), i % 2, i, f"client:{i}", "bulk", content_hash(f"v{i}".encode()), 10, at)
        for i in range(n)
    ]


def test_hashes_are_stable_and_digest_sum_ignores_order():
    assert content_hash(b"abc") == content_hash(b"abc")
    assert content_hash(b"abc") != content_hash(b"abd")
    assert len(content_hash(b"x", "xxh3")) == 16 and len(content_hash(b"x", "crc32")) == 4
    digests = [content_hash(bytes([i])) for i in range(50)]
    assert digest_sum(digests) == digest_sum(list(reversed(digests)))
    assert 0 <= digest_sum(digests) < MOD64
    with pytest.raises(ValueError, match="unknown hash"):
        content_hash(b"x", "md5")


def test_both_sides_land_in_one_window_with_equal_digests():
    topic = Topic.objects.create(name="ledger-t", consumer_group="g", window_seconds=60)
    rows = _published(25, T0 + dt.timedelta(seconds=5))
    published_record(topic=topic, rows=rows[:10])
    published_record(topic=topic, rows=rows[10:])
    consumed_record(
        topic=topic,
        rows=[
            ConsumedRow(r.uuid, "g", r.partition, r.offset, r.key, r.content_hash, r.published_at, T0, "stored")
            for r in rows
        ],
    )
    assert PublishedMessage.objects.filter(topic=topic).count() == 25
    assert ConsumedMessage.objects.filter(topic=topic).count() == 25
    window = Window.objects.get(topic=topic)
    assert (window.start, window.end) == (T0, T0 + dt.timedelta(seconds=60))
    assert window.published_count == window.consumed_count == 25
    expected = window_digest([(r.uuid, r.content_hash) for r in rows])
    assert int(window.published_digest) == int(window.consumed_digest) == expected
    assert window.consumed_max_latency_ms == 0  # consumed "at" T0, before publish: clamped


def test_digest_tells_apart_same_content_under_other_uuids():
    same = content_hash(b"")  # two deletes carry the same (empty) value
    a, b = uuid.uuid4(), uuid.uuid4()
    assert window_digest([(a, same), (a, same)]) != window_digest([(a, same), (b, same)])
    assert window_digest([(a, same), (b, same)]) == window_digest([(b, same), (a, same)])


def test_window_keeps_the_slowest_delivery():
    topic = Topic.objects.create(name="ledger-lat", consumer_group="g", window_seconds=60)
    rows = _published(3, T0)
    published_record(topic=topic, rows=rows)
    consumed_record(
        topic=topic,
        rows=[
            ConsumedRow(
                r.uuid, "g", r.partition, r.offset, r.key, r.content_hash, T0, T0 + dt.timedelta(seconds=i), "stored"
            )
            for i, r in enumerate(rows)
        ],
    )
    consumed_record(
        topic=topic, rows=[ConsumedRow(rows[0].uuid, "g", 0, 0, "k", rows[0].content_hash, T0, T0, "stored")]
    )
    assert Window.objects.get(topic=topic).consumed_max_latency_ms == 2000


def test_rows_split_across_windows_by_publish_time():
    topic = Topic.objects.create(name="ledger-split", consumer_group="g", window_seconds=60)
    published_record(topic=topic, rows=_published(3, T0) + _published(2, T0 + dt.timedelta(seconds=61)))
    counts = list(Window.objects.filter(topic=topic).order_by("start").values_list("published_count", "consumed_count"))
    assert counts == [(3, 0), (2, 0)]


def test_consumed_rows_land_as_given():
    """Every column of a consumed row reads back as written: a UUID given as text (as the
    consumer keeps it), a missing one as NULL, a key beyond ASCII, empty and NUL-holding hashes."""
    topic = Topic.objects.create(name="ledger-exact", consumer_group="g", window_seconds=60)
    text_uuid, other_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    at = T0 + dt.timedelta(microseconds=123_457)
    given = [
        ConsumedRow(text_uuid, "g", 1, 2**40, "clé:1 ✓", b"\x00\x01" * 8, at, T0, "stored"),
        ConsumedRow(other_uuid, "g", 1, 7, "", b"", at, T0, "stored"),
        ConsumedRow(None, "g", 1, 0, "client:3", b"\xff" * 16, T0 + dt.timedelta(seconds=61), T0, "dead"),
    ]
    consumed_record(topic=topic, rows=given)
    fields = ("uuid", "group", "partition", "offset", "key", "content_hash", "published_at", "consumed_at", "outcome")
    stored = [
        (*row[:5], bytes(row[5]), *row[6:])
        for row in ConsumedMessage.objects.filter(topic=topic).order_by("offset").values_list(*fields)
    ]
    expected = [(uuid.UUID(text_uuid), *given[0][1:]), (uuid.UUID(other_uuid), *given[1][1:]), tuple(given[2])]
    assert stored == sorted(expected, key=lambda row: row[3])
