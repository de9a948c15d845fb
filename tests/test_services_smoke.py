"""The real services answer: Kafka through a consumer group, Redis, PostgreSQL."""

import time
import uuid

import pytest
from django.db import connection

from core.clients import make_consumer, make_producer, redis_client
from kafkacache.services.topics import topics_ensure

pytestmark = pytest.mark.integration


def test_kafka_message_round_trips_through_a_consumer_group(unique_name):
    topic, group = unique_name("smoke"), unique_name("smoke-group")
    assert topics_ensure([topic], partitions=2) == {topic: "created"}
    payload = uuid.uuid4().bytes
    producer = make_producer()
    producer.produce(topic, key=b"k1", value=payload, headers={"h": b"v"})
    assert producer.flush(10) == 0

    consumer = make_consumer(group)
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        message = None
        while message is None and time.monotonic() < deadline:
            polled = consumer.poll(1.0)
            if polled is not None and polled.error() is None:
                message = polled
        assert message is not None, "nothing consumed within 30 s"
        assert (message.key(), message.value(), dict(message.headers())) == (b"k1", payload, {"h": b"v"})
        consumer.store_offsets(message)
        consumer.commit(asynchronous=False)
        committed = consumer.committed([_tp(message)], timeout=10)[0]
        assert committed.offset == message.offset() + 1
    finally:
        consumer.close()
    assert topics_ensure([topic]) == {topic: "exists"}


def _tp(message):
    from confluent_kafka import TopicPartition

    return TopicPartition(message.topic(), message.partition())


def test_redis_round_trip():
    client = redis_client()
    key = f"smoke:{uuid.uuid4().hex}"
    client.set(key, b"\x00\xffvalue", ex=60)
    assert client.get(key) == b"\x00\xffvalue"
    client.delete(key)
    assert client.get(key) is None


@pytest.mark.django_db
def test_postgresql_round_trip():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE smoke (id int primary key, body text)")
        cursor.execute("INSERT INTO smoke VALUES (1, %s)", ["é ✓"])
        cursor.execute("SELECT body, version() FROM smoke")
        body, version = cursor.fetchone()
    assert body == "é ✓"
    assert version.startswith("PostgreSQL")


def test_topics_delete_waits_for_the_broker(unique_name):
    from core.clients import make_admin
    from kafkacache.services.topics import topics_delete

    topic = unique_name("smoke-delete")
    topics_ensure([topic], partitions=1)
    assert topics_delete([topic]) == {topic: "deleted"}
    assert topic not in make_admin().list_topics(timeout=10).topics
    assert topics_delete([topic])[topic] != "deleted"  # gone already: the error, not a crash
