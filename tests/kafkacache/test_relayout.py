"""`manage.py cache_relayout`: a cache of the layout before hash tags moves to the tagged
one in place, the source version deciding where the new code already wrote (real Redis)."""

import io

import pytest
from django.core.management import call_command

from kafkacache.cache import CacheOp, cache_apply
from tests.cache_state import cached

pytestmark = pytest.mark.integration


def _record(cache, name: str, sv: int, value: bytes) -> None:
    cache.hset(name, mapping={"p": value, "u": f"u-{sv}", "v": "1", "t": "0", "sv": str(sv), "tp": "t"})


def test_old_names_move_to_tagged_ones_and_the_newer_version_wins(cache):
    _record(cache, "kc:rec:client:1", 3, b"only-old")  # nothing new: moved
    _record(cache, "kc:rec:client:2", 2, b"old")  # the new code wrote a newer version: kept
    _record(cache, "kc:rec:{client:2}", 5, b"new")
    _record(cache, "kc:rec:client:3", 7, b"old-newer")  # the old one is newer: it replaces
    _record(cache, "kc:rec:{client:3}", 5, b"new-older")
    _record(cache, "kc:rec:client:4", 4, b"deleted-since")  # a newer delete in the new layout: dropped
    cache.set("kc:dv:{client:4}", 6, ex=3600)
    cache.set("kc:dv:client:5", 9, ex=3600)  # a tombstone, moved with its expiry
    cache.set("kc:dv:client:6", 3, ex=3600)  # older than the record the new code wrote: dropped
    _record(cache, "kc:rec:{client:6}", 5, b"written-after")

    out = io.StringIO()
    call_command("cache_relayout", batch=2, stdout=out)
    assert "3 moved, 3 kept" in out.getvalue()

    assert sorted(k.decode() for k in cache.scan_iter("kc:*")) == [
        "kc:dv:{client:4}",
        "kc:dv:{client:5}",
        "kc:rec:{client:1}",
        "kc:rec:{client:2}",
        "kc:rec:{client:3}",
        "kc:rec:{client:6}",
    ]
    one = cached(cache, "client:1")
    assert (one.value, one.version, one.uuid, one.topic) == (b"only-old", 3, "u-3", "t")
    assert cached(cache, "client:2").value == b"new"
    assert cached(cache, "client:3").value == b"old-newer"
    assert cache.get("kc:dv:{client:5}") == b"9" and 0 < cache.ttl("kc:dv:{client:5}") <= 3600
    assert cached(cache, "client:6").value == b"written-after"
    assert {cache.type(f"kc:rec:{{client:{i}}}") for i in (1, 2, 3, 6)} == {b"string"}  # one value each

    again = io.StringIO()
    call_command("cache_relayout", stdout=again)
    assert "0 moved, 0 kept (the new layout was newer), 0 made one value" in again.getvalue()  # idempotent


def test_a_moved_record_drops_an_older_tombstone_of_its_key(cache):
    """A key holds a record or a tombstone, never both (core.redis_keys): the readers rely on it."""
    _record(cache, "kc:rec:client:7", 8, b"old-record")
    cache.set("kc:dv:{client:7}", 2, ex=3600)  # a delete the new code saw, older than the record
    out = io.StringIO()
    call_command("cache_relayout", stdout=out)
    assert "1 moved, 0 kept" in out.getvalue()
    assert sorted(k.decode() for k in cache.scan_iter("kc:*")) == ["kc:rec:{client:7}"]


def test_a_record_of_the_hash_layout_is_read_ordered_and_rewritten_as_one_value(cache):
    """A cache written before one-value records keeps serving: every reader reads a hash
    record, the consumer's write orders against its version and replaces it by one value,
    and cache_relayout makes the rest one value."""
    _record(cache, "kc:rec:{client:8}", 5, b"hash-record")
    _record(cache, "kc:rec:{client:9}", 5, b"hash-record-too")
    held = cached(cache, "client:8")
    assert (held.value, held.version, held.uuid, held.schema_version, held.topic) == (b"hash-record", 5, "u-5", 1, "t")

    older = CacheOp("update", "client:8", 4, b"older", "u-4", 1, topic="t")
    newer = CacheOp("update", "client:8", 6, b"newer", "u-6", 1, topic="t")
    assert cache_apply(cache, [older]).verdicts == ["o"]  # the hash record's version decides
    assert cache.type("kc:rec:{client:8}") == b"hash"
    assert cache_apply(cache, [newer]).verdicts == ["a"]
    assert cache.type("kc:rec:{client:8}") == b"string"
    assert (cached(cache, "client:8").value, cached(cache, "client:8").version) == (b"newer", 6)

    out = io.StringIO()
    call_command("cache_relayout", stdout=out)
    assert "1 made one value" in out.getvalue()
    assert cache.type("kc:rec:{client:9}") == b"string"
    assert (cached(cache, "client:9").value, cached(cache, "client:9").version) == (b"hash-record-too", 5)
