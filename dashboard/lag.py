"""Consumer lag per topic: messages in Kafka the topic's consumer group has not committed.

Asked of the brokers (committed offsets against the partitions' end offsets), so
a page shows what Kafka knows rather than what the ledger guesses. Answers are
cached for a few seconds: a dashboard refreshed by a room of people must not turn
into a stream of admin requests, and a slow or absent broker costs one timeout,
not one per page view.
"""

import logging
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec
from django.core.cache import cache

from kafkacache.clients import make_admin

logger = logging.getLogger(__name__)

CACHE_SECONDS = 15
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Lag:
    topic: str
    group: str
    messages: int | None  # None: Kafka did not answer (the page says "unavailable")
    partitions: int = 0
    error: str = ""


def consumer_lag(topic: str, group: str) -> Lag:
    key = f"dashboard:lag:{topic}:{group}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    try:
        lag = _ask_kafka(topic, group)
    except Exception as exc:  # any broker failure is shown as "unavailable", never as a page error
        logger.warning("consumer lag of %s/%s unavailable: %s", topic, group, exc)
        lag = Lag(topic=topic, group=group, messages=None, error=f"{type(exc).__name__}: {exc}")
    cache.set(key, lag, CACHE_SECONDS)
    return lag


def _ask_kafka(topic: str, group: str) -> Lag:
    admin = make_admin(**{"socket.connection.setup.timeout.ms": int(TIMEOUT_S * 1000)})
    metadata = admin.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
    if metadata is None or metadata.error is not None:
        raise LookupError(f"topic {topic} not in Kafka" + (f" ({metadata.error})" if metadata else ""))
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
    latest = _offsets(admin, partitions, OffsetSpec.latest())
    earliest = _offsets(admin, partitions, OffsetSpec.earliest())
    request = [ConsumerGroupTopicPartitions(group, partitions)]
    committed_group = admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT_S)[group].result(TIMEOUT_S)
    committed = {tp.partition: tp.offset for tp in committed_group.topic_partitions or []}
    total = 0
    for p in (tp.partition for tp in partitions):
        # No commit yet (negative offset): everything still retained is lag.
        start = committed.get(p, -1)
        start = start if start >= 0 else earliest[p]
        total += max(latest[p] - start, 0)
    return Lag(topic=topic, group=group, messages=total, partitions=len(partitions))


def _offsets(admin, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[int, int]:
    futures = admin.list_offsets(dict.fromkeys(partitions, spec), request_timeout=TIMEOUT_S)
    return {tp.partition: future.result(TIMEOUT_S).offset for tp, future in futures.items()}
