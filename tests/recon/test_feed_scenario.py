"""The issue's scenario through the feed itself: kafkacache publishes and consumes, recon names the faults.

Publishing goes through kafkacache.services.change_feed.change_publish (Kafka + publish ledger),
consuming through kafkacache.consumer.FeedConsumer.process_batch (Redis + consume
ledger), on fresh topics. The messages are fetched with an assigned (group-less)
consumer so that only the late ones are late. Faults:
- k never delivered: deleted from the partition with the admin client before consumption;
- j altered: the originals deleted likewise, copies with the same UUID but other bytes produced;
- d redelivered: their batch processed again (a crash before commit): counted, not a duplicate;
- l delayed: consumed after the topic's latency limit;
- o orphans: produced straight to the topic, never through the publisher's ledger.
"""

import datetime as dt
import math
import time
import uuid

import pytest
from confluent_kafka import TopicPartition
from django.utils import timezone

from core.clients import make_admin, make_consumer, redis_client
from core.records import record_encode, record_from_document
from kafkacache.consumer import FeedConsumer
from kafkacache.messages import message_build
from kafkacache.producer import publish
from kafkacache.services.change_feed import change_publish
from kafkacache.services.topics import topics_ensure
from recon.models import PublishedMessage, Window
from recon.services.cache_check import cache_check
from recon.services.feed import feed_topics_ensure
from recon.services.windows import range_reconcile
from tests.cache_state import records_drop
from tests.documents import client_doc

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LATENCY_LIMIT = 2


@pytest.fixture
def feed(settings, unique_name):
    settings.KAFKA_TOPIC_BULK = unique_name("r.bulk")
    settings.KAFKA_TOPIC_CHANGE = unique_name("r.change")
    settings.KAFKA_TOPIC_DEAD_LETTER = unique_name("r.dlq")
    settings.KAFKA_CONSUMER_GROUP = unique_name("r.group")
    topics_ensure(
        [settings.KAFKA_TOPIC_BULK, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER], partitions=1
    )
    change = feed_topics_ensure()["change"]
    change.window_seconds, change.grace_seconds, change.latency_limit_seconds = 3600, 0, LATENCY_LIMIT
    change.save()
    base = uuid.uuid4().int % 10**9 * 100
    yield change, iter(range(base, base + 100))
    records_drop(redis_client(), [f"client:{i}" for i in range(base, base + 100)])


def _fetch(topic: str, start: int, count: int) -> list:
    consumer = make_consumer(f"{topic}-fetch", **{"enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, start)])
    got: list = []
    deadline = time.monotonic() + 20
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                got.append(msg)
    finally:
        consumer.close()
    assert len(got) == count
    return got


def test_feed_faults_are_named_exactly(feed):
    change, client_ids = feed
    change.accepts_unsealed = True  # the rogue producer's messages reach the cache, so the legs must name them
    change.save(update_fields=["accepts_unsealed"])
    began = time.monotonic()
    add = lambda: change_publish(topic=change, event="add", record=client_doc(next(client_ids)))  # noqa: E731
    lost = [add() for _ in range(2)]
    originals = [add() for _ in range(2)]
    admin = make_admin()
    deleted = admin.delete_records([TopicPartition(change.name, 0, originals[-1].offset + 1)], operation_timeout=10)
    for future in deleted.values():
        future.result(timeout=15)

    tampered = []
    for original in originals:
        row = PublishedMessage.objects.get(uuid=original.uuid)
        value = record_encode(record_from_document(client_doc(int(original.key.split(":")[1]), name="Mallory"))).value
        tampered.append(
            message_build(
                key=original.key,
                event="add",
                value=value,
                source="rogue",
                schema_version=1,
                hash_algorithm="blake2b",
                message_uuid=original.uuid,
                created_ms=int(row.published_at.timestamp() * 1000),
                version=row.source_version,  # the original's: the bytes differ, not the version
            )
        )
    clean = [add() for _ in range(6)]
    duplicated = [add() for _ in range(2)]
    orphans = [
        message_build(
            key=f"client:{next(client_ids)}",
            event="add",
            value=record_encode(record_from_document(client_doc(1))).value,
            source="rogue",
            schema_version=1,
            hash_algorithm="blake2b",
        )
        for _ in range(2)
    ]
    publish(tampered + orphans, topic=change.name)  # straight to Kafka: no publish ledger

    start = originals[-1].offset + 1
    first = _fetch(change.name, start, len(clean) + len(duplicated) + len(tampered) + len(orphans))
    consumer = FeedConsumer()
    consumer.process_batch(first)
    dup_offsets = {p.offset for p in duplicated}
    consumer.process_batch([m for m in first if m.offset() in dup_offsets])  # redelivered

    # Only the late ones may be late: on a slow machine the steps above can take longer
    # than LATENCY_LIMIT, so the limit is raised past what they took before the late ones go.
    change.latency_limit_seconds = max(LATENCY_LIMIT, math.ceil(time.monotonic() - began) + 2)
    change.save(update_fields=["latency_limit_seconds"])
    late = [add() for _ in range(2)]
    time.sleep(change.latency_limit_seconds + 0.5)
    consumer.process_batch(_fetch(change.name, late[0].offset, len(late)))

    since = PublishedMessage.objects.filter(topic=change).order_by("published_at").first().published_at
    window = {"start": since - dt.timedelta(minutes=1), "end": timezone.now() + dt.timedelta(minutes=1)}
    report = range_reconcile(topic=change, trigger="test", now=timezone.now() + dt.timedelta(hours=2), **window).report
    named = {category: set(entry["uuids"]) for category, entry in report["findings"].items()}
    assert named == {
        "missing": {str(p.uuid) for p in lost},
        "altered": {str(p.uuid) for p in originals},
        "delayed": {str(p.uuid) for p in late},
        "orphan": {str(m.uuid) for m in orphans},
    }
    # the same offsets read again are redelivery (issue 12): on their window, not findings
    assert sum(Window.objects.filter(topic=change).values_list("redelivered", flat=True)) == len(duplicated)

    # The cache leg sees the altered records too (Redis holds the tampered bytes), and the
    # lost ones: every key the ledger published is checked, delivered or not (issue 12).
    cached = cache_check(topic=change, **window).report
    assert {name: set(entry["keys"]) for name, entry in cached["problems"].items()} == {
        "differs": {p.key for p in originals},
        "absent": {p.key for p in lost},
    }
