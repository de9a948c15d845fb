"""The Redis Cluster harness: 3 masters and 3 replicas on loopback, keys across slots, fail-overs.

The product's batch write does not run on a cluster yet (README, "Scaling out": one
script call per hash slot is the change it needs); these tests keep the harness for
that work honest: the layout, what a multi-slot script is refused with, and that a
write acknowledged by a replica (WAIT) survives its master being SIGKILLed.
"""

import pytest
import redis

from .redis_cluster import RedisClusterServices

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def redis_cluster():
    services = RedisClusterServices.create()
    try:
        services.up()
        yield services
    finally:
        services.down()


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
