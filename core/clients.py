"""Kafka and Redis clients built from settings.

Kafka clients are made in the process that uses them, never at import time: a
librdkafka client created before a fork loses its threads in the child.
"""

import functools
import os
from typing import Any

import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel


def kafka_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}
    config.update(settings.KAFKA_CLIENT_CONFIG)
    config.update(overrides)
    return config


def make_admin(**overrides: Any) -> AdminClient:
    return AdminClient(kafka_config(**overrides))


def make_producer(**overrides: Any) -> Producer:
    """An idempotent producer: retries never duplicate or reorder within a partition."""
    config = kafka_config(
        **{
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": settings.KAFKA_COMPRESSION,
            "linger.ms": settings.KAFKA_LINGER_MS,
            "batch.size": settings.KAFKA_BATCH_BYTES,
            # The broker rejects what the producer lets through; keep both at the
            # product's limit plus headroom for headers and framing.
            "message.max.bytes": max(settings.MESSAGE_MAX_BYTES * 4, 1_000_000),
        }
    )
    config.update(overrides)
    return Producer(config)


def make_consumer(group_id: str, **overrides: Any) -> Consumer:
    """An at-least-once consumer: offsets are stored by the caller after processing."""
    config = kafka_config(
        **{
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            # A SIGKILL redelivers what was stored but not yet committed: at most this long.
            "auto.commit.interval.ms": settings.CONSUMER_COMMIT_INTERVAL_MS,
            "partition.assignment.strategy": "cooperative-sticky",
            "client.id": f"kafkacache-{os.getpid()}",
        }
    )
    config.update(overrides)
    return Consumer(config)


@functools.cache
def _redis_pool(url: str) -> redis.ConnectionPool:
    return redis.ConnectionPool.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)


def redis_client() -> redis.Redis:
    """The cache store: a RedisCluster client when REDIS_CLUSTER_NODES is set, the master
    the sentinels name when REDIS_SENTINELS is, else the standalone Redis of REDIS_URL.
    redis-py pools notice a fork and reconnect in the child.

    Typed as redis.Redis: the cluster client answers the same commands the product uses
    (multi-key ones split per slot, SCAN over every master); kafkacache.cache writes the
    batch per slot itself."""
    if settings.REDIS_CLUSTER_NODES:
        return _redis_cluster(tuple(settings.REDIS_CLUSTER_NODES), settings.REDIS_URL)  # type: ignore[return-value]
    if settings.REDIS_SENTINELS:
        return _redis_sentinel(
            tuple(settings.REDIS_SENTINELS),
            settings.REDIS_SENTINEL_MASTER,
            settings.REDIS_URL,
            settings.REDIS_SENTINEL_PASSWORD,
        )
    return redis.Redis(connection_pool=_redis_pool(settings.REDIS_URL))


def _url_options(url: str) -> dict[str, Any]:
    """REDIS_URL's user, password, TLS and ssl_* options for nodes found another way (a
    cluster's slot map, a sentinel's answer): parsed by redis-py exactly as for the
    standalone pool, so rediss:// keeps its fail-closed certificate checks; the URL's
    host, port and path are not used."""
    options = redis.connection.parse_url(url)
    for unused in ("host", "port", "path"):
        options.pop(unused, None)
    if options.pop("connection_class", None) is redis.SSLConnection:
        options["ssl"] = True
    return options


def _host_port(variable: str, seed: str) -> tuple[str, int]:
    host, _, port = seed.rpartition(":")
    if not host or not port.isdigit():
        raise ImproperlyConfigured(f"{variable}: {seed!r} is not host:port")
    return host, int(port)


@functools.cache
def _redis_sentinel(sentinels: tuple[str, ...], master: str, url: str, sentinel_password: str) -> redis.Redis:
    """The master of `master` as the sentinels name it, one client per process: its pool asks
    them again when a connection fails or finds a demoted master (READONLY), so the
    consume loop's retry reaches the promoted replica."""
    options = _url_options(url)
    tls = {name: value for name, value in options.items() if name == "ssl" or name.startswith("ssl_")}
    sentinel = Sentinel(
        [_host_port("REDIS_SENTINELS", seed) for seed in sentinels],
        sentinel_kwargs={"password": sentinel_password or None, "socket_timeout": 2, **tls},
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        **options,
    )
    return sentinel.master_for(master)


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def mget_across_slots(client: redis.Redis, names: list[str]) -> list:
    """MGET of keys that may sit in different hash slots: a cluster splits it per slot
    (not atomic across slots, which no reader here needs); a standalone Redis answers one MGET."""
    if not names:
        return []
    if is_cluster(client):
        return client.mget_nonatomic(names)  # type: ignore[attr-defined]
    return client.mget(names)


@functools.cache
def _redis_cluster(seeds: tuple[str, ...], url: str) -> RedisCluster:
    """One client per process (it holds the slot map and a pool per node). TLS and the ACL
    user are REDIS_URL's (_url_options); a cluster has database 0 only."""
    options = _url_options(url)
    options.pop("db", None)
    nodes = [ClusterNode(*_host_port("REDIS_CLUSTER_NODES", seed)) for seed in seeds]
    return RedisCluster(
        startup_nodes=nodes,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        **options,
    )
