"""Consumer lag per partition, asked of Kafka itself: committed offsets against
the partitions' end offsets. The one place the project reads lag from brokers
(the dashboard caches totals of it, /metrics and lag alerts read it per partition)."""

from typing import NamedTuple

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec

from core.clients import make_admin

TIMEOUT_S = 3.0


class PartitionLag(NamedTuple):
    group: str
    topic: str
    partition: int
    committed: int  # negative: the group never committed on this partition
    end: int
    lag: int


def consumer_lag(group: str, topics: list[str], *, timeout_s: float = TIMEOUT_S) -> list[PartitionLag]:
    """Lag of `group` on every partition of `topics` that exists (missing topics are skipped)."""
    admin = make_admin(**{"socket.connection.setup.timeout.ms": int(timeout_s * 1000)})
    metadata = admin.list_topics(timeout=timeout_s)
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        if topic in metadata.topics and metadata.topics[topic].error is None
        for p in sorted(metadata.topics[topic].partitions)
    ]
    if not partitions:
        return []
    request = [ConsumerGroupTopicPartitions(group, partitions)]
    done = admin.list_consumer_group_offsets(request, request_timeout=timeout_s)[group].result(timeout_s)
    committed = {(tp.topic, tp.partition): tp.offset for tp in done.topic_partitions or []}
    latest = _offsets(admin, partitions, OffsetSpec.latest(), timeout_s)
    earliest = _offsets(admin, partitions, OffsetSpec.earliest(), timeout_s)
    lags = []
    for tp in partitions:
        key = (tp.topic, tp.partition)
        offset = committed.get(key, -1)
        # Never committed: everything Kafka still retains is lag.
        start = offset if offset >= 0 else earliest[key]
        lags.append(PartitionLag(group, tp.topic, tp.partition, offset, latest[key], max(latest[key] - start, 0)))
    return lags


def _offsets(admin, partitions: list[TopicPartition], spec: OffsetSpec, timeout_s: float) -> dict[tuple[str, int], int]:
    futures = admin.list_offsets(dict.fromkeys(partitions, spec), request_timeout=timeout_s)
    return {(tp.topic, tp.partition): future.result(timeout_s).offset for tp, future in futures.items()}


def group_active(group: str, *, timeout_s: float = TIMEOUT_S) -> bool | None:
    """Has the group members right now? None when Kafka does not say (the lag status then cannot
    tell a stalled consumer from a stopped one and calls it stalled)."""
    admin = make_admin(**{"socket.connection.setup.timeout.ms": int(timeout_s * 1000)})
    try:
        described = admin.describe_consumer_groups([group], request_timeout=timeout_s)[group].result(timeout_s)
    except Exception:  # an unknown group, or a broker that does not answer
        return None
    return bool(described.members)
