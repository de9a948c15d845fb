"""The feed's Kafka topics, created explicitly (the broker's auto-create is off)."""

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic
from django.conf import settings

from core.clients import make_admin


def feed_topics() -> list[str]:
    return [settings.KAFKA_TOPIC_BULK, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER]


# The broker stamps each message with its own clock (LogAppendTime), so the
# consumer and the publish ledger can bound a producer's `created` header by a
# clock no producer controls (kafkacache.clock).
TOPIC_CONFIG = {"message.timestamp.type": "LogAppendTime"}


def topics_ensure(names: list[str] | None = None, *, partitions: int | None = None) -> dict[str, str]:
    """Create missing topics (broker-stamped times); answer {name: "created" | "exists"}."""
    admin = make_admin()
    wanted = names or feed_topics()
    new = [
        NewTopic(
            name,
            num_partitions=partitions or settings.KAFKA_TOPIC_PARTITIONS,
            replication_factor=settings.KAFKA_TOPIC_REPLICATION,
            # With the producer's acks=all: acknowledged only once min.insync.replicas hold it.
            config={**TOPIC_CONFIG, "min.insync.replicas": str(settings.KAFKA_TOPIC_MIN_INSYNC_REPLICAS)},
        )
        for name in wanted
    ]
    outcome = {}
    for name, future in admin.create_topics(new, operation_timeout=30, request_timeout=30).items():
        try:
            future.result()
            outcome[name] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            outcome[name] = "exists"
    return outcome


def topics_delete(names: list[str], *, timeout_s: float = 60) -> dict[str, str]:
    """Delete topics and wait for the broker's answer; {name: "deleted" | error}.

    The admin client is kept until every future is done: dropping it earlier
    cancels the requests and leaves the topics behind.
    """
    admin = make_admin()
    outcome = {}
    for name, future in admin.delete_topics(names, operation_timeout=30).items():
        try:
            future.result(timeout=timeout_s)
            outcome[name] = "deleted"
        except KafkaException as exc:
            outcome[name] = str(exc)
    return outcome
