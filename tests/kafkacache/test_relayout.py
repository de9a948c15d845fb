"""`manage.py cache_relayout`: a cache of the layout before hash tags moves to the tagged
one in place, the source version deciding where the new code already wrote (real Redis)."""

import io

import pytest
from django.core.management import call_command

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
    assert cache.hmget("kc:rec:{client:1}", "p", "sv") == [b"only-old", b"3"]
    assert cache.hget("kc:rec:{client:2}", "p") == b"new"
    assert cache.hget("kc:rec:{client:3}", "p") == b"old-newer"
    assert cache.get("kc:dv:{client:5}") == b"9" and 0 < cache.ttl("kc:dv:{client:5}") <= 3600
    assert cache.hget("kc:rec:{client:6}", "p") == b"written-after"

    again = io.StringIO()
    call_command("cache_relayout", stdout=again)
    assert "0 moved, 0 kept" in again.getvalue()  # idempotent: nothing of the old layout is left


def test_a_moved_record_drops_an_older_tombstone_of_its_key(cache):
    """A key holds a record or a tombstone, never both (core.redis_keys): the readers rely on it."""
    _record(cache, "kc:rec:client:7", 8, b"old-record")
    cache.set("kc:dv:{client:7}", 2, ex=3600)  # a delete the new code saw, older than the record
    out = io.StringIO()
    call_command("cache_relayout", stdout=out)
    assert "1 moved, 0 kept" in out.getvalue()
    assert sorted(k.decode() for k in cache.scan_iter("kc:*")) == ["kc:rec:{client:7}"]
