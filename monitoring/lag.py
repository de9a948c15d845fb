"""Consumer lag per partition, read from Kafka itself (committed vs end offsets)."""

from typing import NamedTuple

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec

from kafkacache.clients import make_admin

TIMEOUT_S = 5.0


class PartitionLag(NamedTuple):
    group: str
    topic: str
    partition: int
    committed: int  # -1: the group never committed on this partition
    end: int
    lag: int


def consumer_lag(group: str, topics: list[str]) -> list[PartitionLag]:
    admin = make_admin()
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        if topic in metadata.topics
        for p in metadata.topics[topic].partitions
    ]
    if not partitions:
        return []
    committed_future = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=TIMEOUT_S
    )[group]
    committed = {(tp.topic, tp.partition): tp.offset for tp in committed_future.result().topic_partitions}
    ends_futures = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=TIMEOUT_S)
    lags = []
    for tp, future in sorted(ends_futures.items(), key=lambda item: (item[0].topic, item[0].partition)):
        end = future.result().offset
        done = committed.get((tp.topic, tp.partition), -1)
        # Never committed: everything retained is still to be consumed.
        lags.append(PartitionLag(group, tp.topic, tp.partition, done, end, end - max(done, 0)))
    return lags
