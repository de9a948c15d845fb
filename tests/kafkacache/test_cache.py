"""kafkacache.cache.cache_apply against the real Redis: one script call per batch, same guard."""

import hashlib
import time
import uuid

import pytest

from kafkacache import cache as cache_module
from kafkacache.cache import CacheOp, cache_apply, cache_records_get, load_keys

pytestmark = pytest.mark.integration


def _put(key: str, t: int, value: bytes = b"v", **kw) -> CacheOp:
    return CacheOp(kw.pop("event", "add"), key, t, value, f"u{t}", 1, **kw)


def test_a_batch_applies_in_order_with_the_publish_time_guard(cache):
    cache_apply(
        cache,
        [
            _put("client:1", 10, b"ten"),
            _put("client:1", 5, b"older"),  # older than what is cached: ignored
            _put("client:2", 5, b"a"),
            CacheOp("delete", "client:2", 6),  # newer delete: gone, tombstone 6
            _put("client:2", 6, b"same-time"),  # not older than the tombstone: written
            CacheOp("delete", "client:3", 9),  # a key never cached: tombstone only
            _put("client:3", 8, b"late"),  # older than the tombstone: ignored
        ],
    )
    records = cache_records_get(cache, ["client:1", "client:2", "client:3"])
    assert records["client:1"].value == b"ten" and records["client:1"].created_ms == 10
    assert records["client:1"].uuid == "u10" and records["client:1"].schema_version == 1
    assert records["client:2"].value == b"same-time"
    assert "client:3" not in records
    assert cache.get("kc:del:client:3") == b"9"
    assert cache.ttl("kc:del:client:3") > 0


def test_update_with_a_key_change_deletes_the_old_key_and_bulk_fills_the_load_set(cache):
    cache_apply(cache, [_put("client:7", 1, event="bulk", load="r1"), _put("client:8", 1, event="bulk", load="r1")])
    assert load_keys(cache, "r1") == ["client:7", "client:8"]
    cache_apply(cache, [_put("client:9", 2, b"moved", event="update", old_key="client:7")])
    records = cache_records_get(cache, ["client:7", "client:9"])
    assert set(records) == {"client:9"}
    assert cache.get("kc:del:client:7") == b"2"
    # a redelivered older bulk message of the old key does not bring it back
    cache_apply(cache, [_put("client:7", 1, event="bulk", load="r1")])
    assert cache_records_get(cache, ["client:7"]) == {}


def test_a_script_the_server_does_not_know_is_loaded_then_run(cache, monkeypatch):
    # A text no server has seen stands for a restarted Redis (SCRIPT FLUSH would
    # be server-wide and hit other runs on this Redis).
    source = cache_module._APPLY + f"-- {uuid.uuid4()}\n"
    sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    monkeypatch.setattr(cache_module, "_APPLY", source)
    monkeypatch.setattr(cache_module, "_APPLY_SHA", sha)
    assert cache.script_exists(sha) == [False]
    cache_apply(cache, [_put("client:1", 2, b"loaded")])
    assert cache.script_exists(sha) == [True]
    assert cache_records_get(cache, ["client:1"])["client:1"].value == b"loaded"


def test_an_empty_batch_sends_nothing(cache):
    cache_apply(cache, [])
    assert list(cache.scan_iter("kc:*")) == []


def test_a_sent_call_is_applied_by_the_server_before_its_reply_is_read(cache):
    sent = cache_module.cache_apply_send(cache, [_put("client:1", 3, b"early"), _put("client:2", 3)])
    # Another connection sees the writes while this one has not read its reply yet:
    # the server did the work meanwhile, which is what the consume loop overlaps.
    deadline = time.monotonic() + 5
    while not cache.exists("kc:rec:client:2") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache_records_get(cache, ["client:1"])["client:1"].value == b"early"
    cache_module.cache_apply_wait(cache, sent)
    assert cache_module.cache_apply_send(cache, []) is None
    cache_module.cache_apply_wait(cache, None)  # nothing was sent: nothing to read


def test_a_sent_call_to_a_server_without_the_script_is_loaded_and_run_on_wait(cache, monkeypatch):
    source = cache_module._APPLY + f"-- {uuid.uuid4()}\n"
    monkeypatch.setattr(cache_module, "_APPLY", source)
    monkeypatch.setattr(cache_module, "_APPLY_SHA", hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())
    sent = cache_module.cache_apply_send(cache, [_put("client:4", 1, b"late-loaded")])
    cache_module.cache_apply_wait(cache, sent)  # NOSCRIPT came back: loaded, run again
    assert cache_records_get(cache, ["client:4"])["client:4"].value == b"late-loaded"
    assert cache.ping()  # the pool's connections are all fine afterwards


def test_a_discarded_call_never_hands_its_reply_to_the_next_command(cache):
    sent = cache_module.cache_apply_send(cache, [_put("client:5", 1)])
    cache_module.cache_apply_discard(cache, sent)  # reply unread: the connection is dropped
    for _ in range(5):  # any pooled connection answers its own command
        assert cache.set("kc:probe", "x") is True and cache.get("kc:probe") == b"x"
