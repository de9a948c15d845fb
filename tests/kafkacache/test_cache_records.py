"""core.cache_records, the one reader of the cache, against the real Redis: what the writer
(kafkacache.cache) wrote reads back field for field, and a record written behind the
writer's back is read, not a crash."""

import pytest

from core.cache_records import (
    Cached,
    cache_read,
    cache_records_get,
    load_keys,
    record_keys_scan,
    tombstones_get,
)
from kafkacache.cache import CacheOp, cache_apply, record_value_swap

pytestmark = pytest.mark.integration


def test_what_the_writer_wrote_reads_back_field_for_field(cache):
    cache_apply(
        cache,
        [
            CacheOp("bulk", "client:10", 7, b"ten", "u-10", 2, load="r1", created_ms=1234, topic="t.bulk"),
            CacheOp("bulk", "client:2", 3, b"two", "u-2", 1, load="r1", topic="t.bulk"),
            CacheOp("delete", "client:2", 4),
            CacheOp("add", "client:5", 0, b"five", "u-5", 1),
        ],
    )
    records = cache_records_get(cache, ["client:10", "client:2", "client:5", "client:404"])
    assert set(records) == {"client:10", "client:5"}
    ten = records["client:10"]
    assert (ten.key, ten.value, ten.uuid, ten.schema_version, ten.created_ms, ten.version, ten.topic) == (
        "client:10",
        b"ten",
        "u-10",
        2,
        1234,
        7,
        "t.bulk",
    )
    assert (ten.replaced_hashes, ten.rewritten_hash) == ("", "")
    assert records["client:5"].version == 0  # unordered
    assert tombstones_get(cache, ["client:10", "client:2", "client:404"]) == {"client:2": 4}
    assert load_keys(cache, "r1") == ["client:2", "client:10"]  # client ids in numeric order
    assert cache_read(cache, ["client:10", "client:2", "client:404"]) == [
        Cached(b"ten", 7, "u-10", "t.bulk", 0, 1234),
        Cached(None, 0, "", "", 4, 0),
        Cached(None, 0, "", "", 0, 0),
    ]


def test_a_re_encrypted_value_keeps_what_it_replaced_and_a_changed_one_is_left_alone(cache):
    cache_apply(cache, [CacheOp("add", "client:1", 2, b"old bytes", "u-1", 1)])
    assert record_value_swap(cache, "client:1", held=b"not what is cached", fresh=b"x", schema_version=1) is False
    assert cache_records_get(cache, ["client:1"])["client:1"].value == b"old bytes"
    assert record_value_swap(cache, "client:1", held=b"old bytes", fresh=b"new bytes", schema_version=2) is True
    held = cache_records_get(cache, ["client:1"])["client:1"]
    assert (held.value, held.version, held.uuid, held.schema_version) == (b"new bytes", 2, "u-1", 2)
    assert held.replaced_hashes.startswith("blake2b:") and "," in held.replaced_hashes
    assert len(held.rewritten_hash) == 32  # BLAKE2b-128, hex


def test_a_record_written_behind_the_writers_back_is_read_not_a_crash(cache):
    cache.set("kc:rec:{client:1}", b"junk")  # no record head: a hand's value, version 0
    cache.set("kc:rec:{client:2}", b"K1" + b"x" * 16 + b"a head that is none")
    cache.hset("kc:rec:{client:3}", mapping={"u": "a uuid without a value"})  # the hash layout, no value
    cache.hset("kc:rec:{client:4}", mapping={"p": b"old", "u": "x", "sv": "not a number", "t": "soon"})
    records = cache_records_get(cache, ["client:1", "client:2", "client:3", "client:4"])
    assert set(records) == {"client:1", "client:2", "client:4"}  # a hash without a value serves nothing
    fields = [(r.value, r.uuid, r.version, r.created_ms, r.schema_version, r.topic) for r in records.values()]
    assert fields == [
        (b"junk", "", 0, 0, 0, ""),
        (b"K1" + b"x" * 16 + b"a head that is none", "", 0, 0, 0, ""),
        (b"old", "x", 0, 0, 0, ""),
    ]
    read = cache_read(cache, ["client:1", "client:3", "client:4"])
    assert [(c.value, c.version) for c in read] == [(b"junk", 0), (None, 0), (b"old", 0)]


def test_every_record_key_is_scanned_in_resumable_pages(cache):
    keys = [f"client:{i}" for i in range(1, 26)]
    cache_apply(cache, [CacheOp("add", key, 1, b"v", "u", 1) for key in keys])
    cache_apply(cache, [CacheOp("delete", "client:99", 1)])  # a tombstone is no record
    pages = list(record_keys_scan(cache, count=5))
    assert sorted(k for _position, page in pages for k in page) == sorted(keys)
    assert pages[-1][0] == ""  # the last page: nothing to resume
    position = next(p for p, page in pages if p and page)
    seen_before = {k for p, page in pages[: [p for p, _ in pages].index(position) + 1] for k in page}
    resumed = {k for _p, page in record_keys_scan(cache, count=5, position=position) for k in page}
    assert seen_before | resumed == set(keys)
