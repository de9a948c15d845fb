"""kafkacache.cache.cache_apply against the real Redis: one script call per batch, same guard."""

import hashlib
import time
import uuid

import pytest

from core.cache_records import cache_records_get, load_keys, tombstones_get
from kafkacache import cache as cache_module
from kafkacache.cache import CacheOp, cache_apply

pytestmark = pytest.mark.integration


def _put(key: str, v: int, value: bytes = b"v", **kw) -> CacheOp:
    return CacheOp(kw.pop("event", "add"), key, v, value, f"u{v}", 1, **kw)


def test_a_batch_applies_in_order_by_source_version_never_by_arrival(cache):
    ops = [
        _put("client:1", 10, b"ten", created_ms=5),
        _put("client:1", 5, b"older", created_ms=99_999),  # older version, later clock: refused
        _put("client:1", 10, b"ten-again"),  # the same version again (a redelivery, a replay): written
        _put("client:2", 5, b"a"),
        CacheOp("delete", "client:2", 6),  # newer delete: gone, tombstone 6
        _put("client:2", 6, b"same-as-delete"),  # not newer than the delete: refused
        CacheOp("delete", "client:3", 9),  # a key never cached: tombstone only
        _put("client:3", 8, b"late"),  # older than the tombstone: refused
        _put("client:4", 3, b"three"),
        CacheOp("delete", "client:4", 2),  # an older delete: refused, the record stays
        _put("client:5", 0, b"unordered"),  # no version: fills an empty key
        _put("client:5", 0, b"unordered-2"),  # and replaces another unordered record (arrival order)
        _put("client:6", 1, b"versioned"),
        _put("client:6", 0, b"unordered"),  # but never a versioned one
        CacheOp("delete", "client:6", 0),  # nor deletes it
    ]
    verdicts = cache_apply(cache, ops).verdicts
    assert verdicts == ["a", "o", "e", "a", "a", "o", "a", "o", "a", "o", "a", "a", "a", "u", "u"]
    records = cache_records_get(cache, [f"client:{n}" for n in range(1, 7)])
    assert records["client:1"].value == b"ten-again" and records["client:1"].version == 10
    assert records["client:1"].uuid == "u10" and records["client:1"].schema_version == 1
    assert "client:2" not in records and "client:3" not in records
    assert records["client:4"].value == b"three"
    assert records["client:5"].value == b"unordered-2" and records["client:5"].version == 0
    assert records["client:6"].value == b"versioned"
    assert cache.get("kc:dv:{client:3}") == b"9"
    assert cache.ttl("kc:dv:{client:3}") > 0


def test_put_verdict_predicts_the_script_on_every_combination(cache):
    """The Python mirror (dry runs, replay pre-checks) and the Lua script give the same answers."""
    from kafkacache.cache import put_verdict

    n = 0
    for held in (None, 0, 3, 5):
        for tombstone in (None, 3, 5, 7):
            for version in (0, 3, 5, 6, 8):
                n += 1
                key = f"client:{n}"
                setup = [CacheOp("delete", key, tombstone)] if tombstone is not None else []
                cache_apply(cache, setup + ([_put(key, held)] if held is not None else []))
                # whatever state that left (a newer write drops an older tombstone), as a reader sees it
                record = cache_records_get(cache, [key]).get(key)
                state_held = record.version if record is not None else None
                state_tomb = tombstones_get(cache, [key]).get(key, 0)
                expected = put_verdict(version, held=state_held, tombstone=state_tomb)
                assert cache_apply(cache, [_put(key, version)]).verdicts == [expected], (held, tombstone, version)


def test_a_newer_write_after_a_delete_drops_the_tombstone(cache):
    cache_apply(cache, [CacheOp("delete", "client:1", 4), _put("client:1", 5, b"back")])
    assert cache_records_get(cache, ["client:1"])["client:1"].value == b"back"
    assert cache.get("kc:dv:{client:1}") is None  # compact: only deletes the cache still needs to remember


def test_the_record_knows_the_topic_that_wrote_it(cache):
    cache_apply(cache, [_put("client:1", 1, topic="cache.change")])
    assert cache_records_get(cache, ["client:1"])["client:1"].topic == "cache.change"


def test_update_with_a_key_change_deletes_the_old_key_and_bulk_fills_the_load_set(cache):
    cache_apply(cache, [_put("client:7", 1, event="bulk", load="r1"), _put("client:8", 1, event="bulk", load="r1")])
    assert load_keys(cache, "r1") == ["client:7", "client:8"]
    verdicts = cache_apply(cache, [_put("client:9", 2, b"moved", event="update", old_key="client:7")]).verdicts
    assert verdicts == ["a"]  # one verdict per op: the put's
    records = cache_records_get(cache, ["client:7", "client:9"])
    assert set(records) == {"client:9"}
    assert cache.get("kc:dv:{client:7}") == b"2"
    # a redelivered older bulk message of the old key does not bring it back
    assert cache_apply(cache, [_put("client:7", 1, event="bulk", load="r1")]).verdicts == ["o"]
    assert cache_records_get(cache, ["client:7"]) == {}


def test_a_key_change_deletes_the_old_key_at_its_own_version(cache):
    # client 7 renumbered to 9 at version 3; a new client 7 inserted at version 4 is not
    # deleted by that renumbering, whichever arrives first
    cache_apply(cache, [_put("client:7", 4, b"new seven")])
    cache_apply(cache, [_put("client:9", 5, b"nine", event="update", old_key="client:7", old_version=3)])
    assert cache_records_get(cache, ["client:7"])["client:7"].value == b"new seven"


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
    while not cache.exists("kc:rec:{client:2}") and time.monotonic() < deadline:
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


def _digests_from_content(cache) -> dict[int, int]:
    from core.redis_keys import digests_of

    keys = [name.decode()[len("kc:rec:{") : -1] for name in cache.scan_iter("kc:rec:{*", count=1000)]
    records = cache_records_get(cache, keys)
    return digests_of((key, record.version) for key, record in records.items())


def test_every_write_keeps_its_bucket_digest_equal_to_what_the_cache_holds(cache):
    """Puts, updates, deletes, key changes, restores and refused writes, in random batches:
    the digests the script keeps are the digests of the records Redis ends with."""
    import random

    from core.cache_records import bucket_digests

    rng = random.Random(23)
    versions: dict[str, int] = {}
    for _ in range(30):
        ops = []
        for _ in range(rng.randrange(1, 40)):
            key = f"client:{rng.randrange(60)}"
            v = versions.get(key, 0) + rng.choice((-1, 0, 1, 2, 3))
            kind = rng.random()
            if kind < 0.15:
                ops.append(CacheOp("delete", key, max(v, 0)))
            elif kind < 0.22:
                ops.append(_put(f"client:{rng.randrange(60)}", max(v, 1), event="update", old_key=key))
            elif kind < 0.27:
                ops.append(CacheOp("restore", key, max(v, 0), b"r" if rng.random() < 0.5 else b"", "ur", 1))
            elif kind < 0.30:
                ops.append(_put(key, 0))
            else:
                ops.append(_put(key, max(v, 1), bytes([rng.randrange(256)])))
            versions[key] = max(versions.get(key, 0), v)
        cache_apply(cache, ops)
        assert bucket_digests(cache) == _digests_from_content(cache)
    assert bucket_digests(cache)  # the run left records behind


def test_each_slots_digests_are_named_by_a_tag_of_that_slot():
    """The shipped tag table is what the search finds, and each tag hashes to its own slot:
    a slot's digests sit on the node of its records."""
    from redis.crc import key_slot

    from core.redis_keys import SLOT_TAGS_FILE, SLOTS, digest_key, slot_tags_search

    assert SLOT_TAGS_FILE.read_text().split() == slot_tags_search()
    assert [key_slot(digest_key(slot).encode()) for slot in range(SLOTS)] == list(range(SLOTS))
