"""Poison messages go to the dead-letter topic with their reason; the loop goes on."""

import pytest
from confluent_kafka import TopicPartition

from core.clients import make_consumer, make_producer
from core.records import record_encode, record_from_document
from kafkacache.messages import message_build
from recon.models import ConsumedMessage, Finding
from recon.services.feed import feed_topics_ensure
from tests.documents import DOC
from tests.kafka_reads import headers_read_all

from .conftest import cached_keys, client_message, consume_all

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _good(client_id: int):
    return client_message(client_id, sealed=False)


def _with(message, **headers):
    replaced = dict(message.headers)
    for name, value in headers.items():
        replaced[name.replace("_", "-")] = value
    return [(k, v) for k, v in replaced.items() if v is not None]


def test_poison_messages_are_dead_lettered_and_recorded_and_the_loop_goes_on(feed, cache, settings):
    change = feed_topics_ensure()["change"]
    change.accepts_unsealed = True  # another producer's messages, checked in full
    change.save()
    first, last = _good(1), _good(2)
    huge = record_encode(record_from_document({**DOC, "client_id": 3, "name": "x" * 12_000}))
    oversize = message_build(
        key="client:3",
        event="add",
        value=huge.value,
        source="test",
        schema_version=1,
        hash_algorithm="blake2b",
        key_id=huge.key_id,
    )
    poison = [
        # (key, value, headers, expected reason)
        (b"client:4", b"\x00\xffnot avro", _with(_good(4)), "malformed Avro"),
        (b"client:5", _good(5).value, _with(_good(5), event=b"upsert"), "unknown event type 'upsert'"),
        (b"client:6", _good(6).value, _with(_good(6), schema=b"99"), "unknown schema version '99'"),
        (None, _good(7).value, _with(_good(7)), "missing key"),
        (b"client:3", oversize.value, oversize.headers, "oversize"),
        (b"client:8", _good(8).value, _with(_good(8), uuid=None), "missing or invalid uuid header"),
    ]
    producer = make_producer()
    producer.produce(change.name, key=first.key.encode(), value=first.value, headers=first.headers)
    for key, value, headers, _ in poison:
        producer.produce(change.name, key=key, value=value, headers=headers)
    producer.produce(change.name, key=last.key.encode(), value=last.value, headers=last.headers)
    assert producer.flush(10) == 0

    consume_all()

    assert cached_keys(cache) == {"client:1", "client:2"}  # before and after the poison
    dead = ConsumedMessage.objects.filter(topic=change, outcome="dead")
    assert dead.count() == len(poison)
    assert ConsumedMessage.objects.filter(topic=change, outcome="unsealed").count() == 2
    findings = Finding.objects.filter(topic=change, category="dead-lettered")
    reasons = sorted(f.detail["reason"] for f in findings)
    for _, _, _, expected in poison:
        assert sum(expected in reason for reason in reasons) == 1, (expected, reasons)
    assert all(f.classification == "exception" for f in findings)

    # the dead-letter topic has each poison message, its reason and origin in headers
    letters = headers_read_all(settings.KAFKA_TOPIC_DEAD_LETTER, expected=len(poison))
    assert sorted(h["dlq-reason"].decode() for h in letters) == reasons
    assert {h["dlq-topic"] for h in letters} == {change.name.encode()}

    # and the offsets of the whole topic were committed: nothing is consumed twice
    committed = _committed(feed.KAFKA_CONSUMER_GROUP, change.name)
    assert sum(committed) == 2 + len(poison)


def _committed(group: str, topic: str) -> list[int]:
    consumer = make_consumer(group)
    try:
        partitions = [TopicPartition(topic, p) for p in range(feed_partitions())]
        return [max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10)]
    finally:
        consumer.close()


def feed_partitions() -> int:
    from django.conf import settings

    return settings.KAFKA_TOPIC_PARTITIONS
