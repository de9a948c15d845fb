"""The cache on Redis Cluster: 3 masters and 3 replicas on loopback (Debian's redis-server).

First the harness itself (the layout, what a multi-slot script is refused with, a write
a replica acknowledged surviving its master's SIGKILL); then the product on it: the
batch write per hash slot answers exactly as the one script of a standalone Redis, a
load fed through the real consumer is whole and reconciles, and masters failed over
mid-consume (cleanly, and by SIGKILL) lose nothing the leg does not find and a replay
restore. The fail-over test prints its figures (README, "Scaling out").
"""

import random

import pytest
import redis

from core.cache_records import SLOTS, bucket_digests, cache_records_get, load_keys
from core.clients import is_cluster, redis_client
from core.ods import ods_seed
from core.records import record_decode
from core.redis_keys import load_key, rec_key, tombstone_key
from kafkacache.cache import CacheOp, cache_apply, digests_mark_complete
from kafkacache.services.cache_scrub import cache_scrub_slice
from kafkacache.services.loads import load_run, load_start
from recon import access
from recon.models import Finding
from recon.services.cache_check import cache_check
from tests.factories import UserFactory
from tests.replay.conftest import feed_topics_make

from ..kafkacache.conftest import cached_keys, source_records
from .cache_failover import (
    consume_here,
    fail_over_mid_consume,
    later,
    leg_finds_and_replay_restores,
    lost_keys,
    replay_from_source,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_cluster_has_three_masters_each_with_a_replica(redis_cluster):
    masters = redis_cluster.masters()
    assert len(masters) == 3 and all(len(replicas) == 1 for replicas in masters.values()), masters
    info = redis_cluster.node(redis_cluster.ports[0]).execute_command("CLUSTER", "INFO").decode()
    assert "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info


def test_one_script_over_keys_of_several_slots_is_refused(redis_cluster):
    client = redis_cluster.client()
    keys = [f"kc:rec:client:{i}" for i in range(20)]
    assert len({client.keyslot(k) for k in keys}) > 1
    node = redis_cluster.node(redis_cluster.master_of(keys[0]))
    with pytest.raises(redis.ResponseError, match="same slot"):
        node.eval("for i, k in ipairs(KEYS) do redis.call('SET', k, '1') end", len(keys), *keys)
    # Hash-tagged keys share a slot: one script may write them all.
    tagged = [f"kc:rec:{{client:7}}:{field}" for field in ("a", "b", "c")]
    assert len({client.keyslot(k) for k in tagged}) == 1
    redis_cluster.node(redis_cluster.master_of(tagged[0])).eval(
        "for i, k in ipairs(KEYS) do redis.call('SET', k, '1') end", len(tagged), *tagged
    )
    assert client.get(tagged[2]) == b"1"


def test_a_write_a_replica_acknowledged_survives_its_master_being_killed(redis_cluster):
    client = redis_cluster.client()
    key = "kc:rec:client:42"
    master = redis_cluster.master_of(key)
    node = redis_cluster.node(master)
    node.set(key, "v1")
    assert node.execute_command("WAIT", 1, 2000) == 1  # on the replica too
    promoted = redis_cluster.kill_master(master)
    assert redis_cluster.node(promoted).get(key) == b"v1"
    client = redis_cluster.client()  # a fresh client learns the new slot map
    assert client.get(key) == b"v1"
    client.delete(key)
    redis_cluster.revive()  # the killed node rejoins as the new master's replica


# --- the product on the cluster ----------------------------------------------------------


@pytest.fixture
def on_cluster(redis_cluster, cache, settings):
    """The product's cache store is the cluster (REDIS_CLUSTER_NODES), empty before and after.
    (`cache`, the standalone store, is made first: it is the baseline some tests compare with.)"""
    assert not is_cluster(cache)
    settings.REDIS_CLUSTER_NODES = redis_cluster.seeds()
    redis_cluster.clear()
    client = redis_client()
    assert is_cluster(client)
    client.nodes_manager.initialize()  # the process's client outlives a fail-over of an earlier test
    yield client
    redis_cluster.clear()


def _ops(seed: int, count: int = 600) -> list[CacheOp]:
    """Puts, deletes, key changes and bulk puts with a retrieval set, over 60 keys, versions
    out of order (some unordered: version 0)."""
    rng = random.Random(seed)
    ops = []
    for i in range(count):
        key, version, roll = f"client:{rng.randrange(60)}", rng.choice([0, *range(1, 25)]), rng.random()
        common = {"value": b"v%d" % i, "uuid": f"u{i}", "schema_version": 1, "created_ms": i, "topic": "t"}
        if roll < 0.2:
            ops.append(CacheOp("delete", key, version))
        elif roll < 0.3:
            ops.append(CacheOp("update", key, version, old_key=f"client:{rng.randrange(60)}", **common))
        elif roll < 0.5:
            ops.append(CacheOp("bulk", key, version, load=f"r{rng.randrange(3)}", **common))
        else:
            ops.append(CacheOp("add", key, version, **common))
    return ops


def _state(client) -> dict:
    keys = [f"client:{i}" for i in range(60)]
    out: dict = {}
    for key in keys:
        tomb = client.get(tombstone_key(key))
        out[key] = (client.get(rec_key(key)), tomb, tomb is not None and client.ttl(tombstone_key(key)) > 0)
    for load in ("r0", "r1", "r2"):
        out[load] = sorted(client.smembers(load_key(load)))
    return out


def test_the_batch_write_per_slot_answers_as_the_one_script_of_a_standalone_redis(redis_cluster, on_cluster, cache):
    """The same 600 ops in batches of 100 on both: the same verdict for every op, the same
    records, tombstones and retrieval sets after; each record beside its tombstone."""
    for port in redis_cluster.masters():
        redis_cluster.node(port).script_flush()  # the first call on each master meets NOSCRIPT
    ops = _ops(seed=7)
    keys = {op.key for op in ops}
    assert len({redis_cluster.master_of(rec_key(key)) for key in keys}) == 3  # the batches span every master
    assert all(redis_cluster.master_of(rec_key(key)) == redis_cluster.master_of(tombstone_key(key)) for key in keys)
    for start in range(0, len(ops), 100):
        batch = ops[start : start + 100]
        assert cache_apply(on_cluster, batch).verdicts == cache_apply(cache, batch).verdicts, f"batch at {start}"
    standalone = _state(cache)
    assert _state(on_cluster) == standalone
    entries = [entry for key, entry in standalone.items() if key.startswith("client:")]
    assert sum(1 for record, _, _ in entries if record) > 10  # the ops leave records,
    assert sum(1 for _, tomb, ttl in entries if tomb and ttl) > 5  # tombstones with their expiry,
    assert all(standalone[load] for load in ("r0", "r1", "r2"))  # and retrieval sets to compare
    # Each slot's bucket digests sit beside its records, and are the standalone Redis's.
    assert bucket_digests(on_cluster) == bucket_digests(cache) != {}


@pytest.mark.django_db
def test_a_load_fed_through_the_cluster_is_whole_reconciles_and_a_replay_closes_a_lost_key(
    redis_cluster, on_cluster, cache, settings, unique_name
):
    feed = feed_topics_make(settings, unique_name)
    operator = UserFactory(username="cluster-operator")
    access.topic_grant(operator, feed.bulk, "operator")
    ods_seed(clients=40, using="default")
    load = load_run(load_id=load_start(topic=feed.bulk, source="ods", client_ids=[], requested_by=None, queue=False).id)
    consume_here()

    expected = source_records()
    assert cached_keys(on_cluster) == set(expected) and not cached_keys(cache)  # on the cluster, not the standalone
    assert len({redis_cluster.master_of(rec_key(key)) for key in expected}) == 3
    for key, hit in cache_records_get(on_cluster, expected).items():
        assert record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) == expected[key]
    assert load_keys(on_cluster, load.retrieval_key) == sorted(expected, key=lambda k: (len(k), k))
    clean = cache_check(topic=feed.bulk, now=later()).report
    assert (clean["checked"], clean["all_matched"]) == (40, True)

    # Behind the feed's back, on the masters themselves: one record lost, one altered.
    redis_cluster.node(redis_cluster.master_of(rec_key("client:3"))).delete(rec_key("client:3"))
    redis_cluster.node(redis_cluster.master_of(rec_key("client:9"))).setrange(rec_key("client:9"), 200, b"tampered")
    run = cache_check(topic=feed.bulk, now=later(), trigger="test")
    problems = {kind: entry["keys"] for kind, entry in run.report["problems"].items()}
    assert problems == {"absent": ["client:3"], "differs": ["client:9"]}

    replay_from_source(feed.bulk, ["client:3", "client:9"], operator=operator, reason="lost on the cluster")
    fixed = cache_check(topic=feed.bulk, now=later(), trigger="test").report
    assert fixed["all_matched"] is True and fixed["findings"]["resolved"] == 2


@pytest.mark.django_db
def test_the_scrub_and_the_digest_leg_on_the_cluster_find_what_changed_behind_the_writers_back(
    redis_cluster, on_cluster, cache, settings, unique_name
):
    settings.CACHE_DIGEST_RECHECK_MS = 0
    feed = feed_topics_make(settings, unique_name)
    ods_seed(clients=40, using="default")
    load_run(load_id=load_start(topic=feed.bulk, source="ods", client_ids=[], requested_by=None, queue=False).id)
    consume_here()
    scrub = cache_scrub_slice(slots=SLOTS)
    assert (scrub.finished_at is not None, scrub.keys_read, scrub.buckets_repaired) == (True, 40, 0)
    clean = cache_check(topic=feed.bulk, now=later()).report
    assert (clean["method"], clean["checked"], clean["all_matched"]) == ("digest", 40, True)

    redis_cluster.node(redis_cluster.master_of(rec_key("client:3"))).delete(rec_key("client:3"))
    redis_cluster.node(redis_cluster.master_of(rec_key("client:9"))).setrange(rec_key("client:9"), 200, b"tampered")
    scrub = cache_scrub_slice(slots=SLOTS)
    assert (scrub.buckets_repaired, scrub.values_differ) == (1, 1)
    run = cache_check(topic=feed.bulk, now=later(), trigger="test")
    # The lost record by its rebuilt bucket; the altered one by its standing finding (the scrub's).
    problems = {kind: entry["keys"] for kind, entry in run.report["problems"].items()}
    assert (run.report["method"], problems) == ("digest", {"absent": ["client:3"], "differs": ["client:9"]})
    standing = Finding.objects.filter(topic=feed.bulk, category="cache", status="open")
    assert {f.key: f.detail["problem"] for f in standing} == {"client:3": "absent", "client:9": "differs"}


@pytest.mark.slow
def test_masters_failed_over_mid_consume_lose_nothing_the_leg_does_not_find_and_a_replay_restore(
    redis_cluster, on_cluster, settings, unique_name, transactional_db
):
    feed = feed_topics_make(settings, unique_name)
    operator = UserFactory(username="failover-operator")
    access.topic_grant(operator, feed.bulk, "operator")
    ods_seed(clients=2100, using="default")
    store = {"REDIS_CLUSTER_NODES": ",".join(redis_cluster.seeds())}
    figures = {}
    settings.CACHE_DIGEST_RECHECK_MS = 0
    digests_mark_complete(on_cluster)  # an empty cache: every record will come through the writer

    # A clean fail-over (CLUSTER FAILOVER: the replica catches up first): nothing lost.
    victim = redis_cluster.master_of(rec_key("client:1"))
    replica = redis_cluster.masters()[victim][0]
    figures["clean"] = fail_over_mid_consume(
        settings, on_cluster, store_env=store, ids=range(1, 601), fail=lambda: redis_cluster.failover(replica)
    )
    assert lost_keys(on_cluster, source_records(list(range(1, 601)))) == set()
    redis_cluster.revive()

    # A master SIGKILLed while its replica lags (its link cut for 1.5 s of writes): the
    # replica takes over after cluster-node-timeout without them. The consumer acknowledged
    # those batches (WAIT timed out: counted, logged); the cache leg finds each lost key.
    victim = redis_cluster.master_of(rec_key("client:601"))
    figures["sigkill"] = fail_over_mid_consume(
        settings,
        on_cluster,
        store_env=store,
        ids=range(601, 2101),
        fail=lambda: redis_cluster.kill_master_while_replica_lags(victim, lag=1.5),
    )
    assert lost_keys(on_cluster, source_records())  # acknowledged writes dropped: the case the leg is for
    assert figures["sigkill"]["wait_short_batches"] > 0  # and the consumer said so as it went
    # The digests fail over with their records (one script call, one slot): the same keys by both.
    figures["sigkill"] |= leg_finds_and_replay_restores(
        on_cluster, topic=feed.bulk, operator=operator, methods=("digest", "keys")
    )
    print(f"\nredis cluster fail-over figures: {figures}")
    redis_cluster.revive()
