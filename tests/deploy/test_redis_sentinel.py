"""The cache behind Redis Sentinel (a master, a replica, 3 sentinels on loopback): the
product finds the master through REDIS_SENTINELS, a load is whole and reconciles, and
a master SIGKILLed mid-consume is replaced by the sentinels' choice; the cache leg finds
whatever asynchronous replication dropped and a replay restores it (figures printed)."""

import pytest
import redis

from core.clients import is_cluster, redis_client
from core.ods import ods_seed
from recon import access
from tests.cache_state import cached
from tests.factories import UserFactory
from tests.replay.conftest import feed_topics_make

from ..kafkacache.conftest import cached_keys, source_records
from .cache_failover import fail_over_mid_consume, leg_finds_and_replay_restores, lost_keys
from .redis_sentinel import MASTER_NAME, RedisSentinelServices

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def redis_sentinel():
    services = RedisSentinelServices.create()
    try:
        services.up()
        yield services
    finally:
        services.down()


@pytest.fixture
def behind_sentinel(redis_sentinel, cache, settings):
    """The product's cache store is the sentinels' master (`cache`, the standalone store, first)."""
    settings.REDIS_SENTINELS = redis_sentinel.seeds()
    settings.REDIS_SENTINEL_MASTER = MASTER_NAME
    client = redis_client()
    assert not is_cluster(client)
    client.flushdb()
    yield client
    client.flushdb()


def test_a_load_behind_sentinel_survives_its_master_being_killed_mid_consume(
    redis_sentinel, behind_sentinel, cache, settings, unique_name, transactional_db
):
    feed = feed_topics_make(settings, unique_name)
    operator = UserFactory(username="sentinel-operator")
    access.topic_grant(operator, feed.bulk, "operator")
    ods_seed(clients=1000, using="default")
    first = redis_sentinel.master()

    # A first part, whole, on the master the sentinels name (not on the standalone Redis).
    fail_over_mid_consume(
        settings, behind_sentinel, store_env=_store(redis_sentinel), ids=range(1, 151), fail=lambda: None
    )
    assert lost_keys(behind_sentinel, source_records(list(range(1, 151)))) == set()
    assert cached(redis_sentinel.node(first, db=_db(settings)), "client:1") and not cached_keys(cache)

    promoted: list[int] = []
    figures = fail_over_mid_consume(
        settings,
        behind_sentinel,
        store_env=_store(redis_sentinel),
        ids=range(151, 1001),
        fail=lambda: promoted.append(redis_sentinel.kill_master()),
    )
    assert promoted and promoted[0] != first and redis_sentinel.master() == promoted[0]
    # the consumer went on on the promoted node
    assert cached(redis_sentinel.node(promoted[0], db=_db(settings)), "client:1000")
    figures |= leg_finds_and_replay_restores(behind_sentinel, topic=feed.bulk, operator=operator)
    print(f"\nredis sentinel fail-over figures: {figures}")


def _store(services: RedisSentinelServices) -> dict[str, str]:
    return {"REDIS_SENTINELS": ",".join(services.seeds()), "REDIS_SENTINEL_MASTER": MASTER_NAME}


def _db(settings) -> int:
    """The database REDIS_URL names (the product's, on whichever node is the master)."""
    return int(redis.connection.parse_url(settings.REDIS_URL).get("db", 0))
