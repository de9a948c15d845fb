"""The feed's Kafka topics, created explicitly (the broker's auto-create is off)."""

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic
from django.conf import settings

from kafkacache.clients import make_admin


def feed_topics() -> list[str]:
    return [settings.KAFKA_TOPIC_BULK, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER]


def topics_ensure(names: list[str] | None = None, *, partitions: int | None = None) -> dict[str, str]:
    """Create missing topics; answer {name: "created" | "exists"}."""
    admin = make_admin()
    wanted = names or feed_topics()
    new = [
        NewTopic(
            name,
            num_partitions=partitions or settings.KAFKA_TOPIC_PARTITIONS,
            replication_factor=settings.KAFKA_TOPIC_REPLICATION,
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
