"""Replay tests: fresh feed topics (one partition each) per test, a clean cache, people.

Messages are published through the feed's services and consumed through
FeedConsumer.process_batch on messages fetched with an assigned consumer, so a
test decides exactly which ones the subscriber never got.
"""

import datetime as dt
import time
import uuid
from types import SimpleNamespace

import pytest
from confluent_kafka import Message, TopicPartition
from django.utils import timezone

from core.clients import make_consumer, redis_client
from kafkacache.consumer import FeedConsumer
from kafkacache.services.change_feed import change_publish
from kafkacache.services.topics import topics_ensure
from recon.models import Finding, PublishedMessage, ReconRun, Topic
from recon.services.feed import feed_topics_ensure
from recon.services.windows import range_reconcile
from tests.browser import browser, login  # noqa: F401  (Debian's Chromium; a logged-in page)
from tests.cache_state import cached
from tests.documents import client_doc
from tests.people import people_make


def feed_topics_make(settings, unique_name) -> SimpleNamespace:
    settings.KAFKA_TOPIC_BULK = unique_name("rp.bulk")
    settings.KAFKA_TOPIC_CHANGE = unique_name("rp.change")
    settings.KAFKA_TOPIC_DEAD_LETTER = unique_name("rp.dlq")
    settings.KAFKA_CONSUMER_GROUP = unique_name("rp.group")
    topics_ensure(
        [settings.KAFKA_TOPIC_BULK, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER], partitions=1
    )
    rows = feed_topics_ensure()
    for topic in rows.values():
        # One window per hour, closed at once: a reconcile "two hours later" judges it.
        topic.window_seconds, topic.grace_seconds, topic.latency_limit_seconds = 3600, 0, 600
        topic.method_audit = True
        topic.save()
    return SimpleNamespace(bulk=rows["bulk"], change=rows["change"], dead_letter=settings.KAFKA_TOPIC_DEAD_LETTER)


@pytest.fixture
def feed(settings, unique_name):
    return feed_topics_make(settings, unique_name)


@pytest.fixture
def client_ids():
    """Client ids no other test uses, and their cache keys removed afterwards."""
    base = uuid.uuid4().int % 10**9 * 100 + 1000
    yield iter(range(base, base + 100))
    client = redis_client()
    keys = [f"kc:{kind}:client:{i}" for i in range(base, base + 100) for kind in ("rec", "dv")]
    client.delete(*keys)


def fetch(topic: str, start: int, count: int, partition: int = 0) -> list[Message]:
    """`count` messages from `start` on, with a group-less assigned consumer (commits nothing)."""
    consumer = make_consumer(f"{topic}-fetch", **{"enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, start)])
    got: list[Message] = []
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


def fetch_uuid(topic: Topic, message_uuid) -> Message:
    row = PublishedMessage.objects.get(uuid=message_uuid)
    return fetch(topic.name, row.offset, 1, row.partition)[0]


def reconcile(topic: Topic) -> ReconRun:
    """Reconcile the topic's last day as the scheduler would two hours from now (every window closed)."""
    now = timezone.now()
    return range_reconcile(
        topic=topic,
        start=now - dt.timedelta(days=1),
        end=now + dt.timedelta(hours=1),
        trigger="test",
        now=now + dt.timedelta(hours=2),
    )


def finding_of(topic: Topic, category: str, message_uuid) -> Finding:
    return Finding.objects.get(topic=topic, category=category, uuid=message_uuid)


def lose_one(topic, client_ids, cache) -> tuple[list, object, list]:
    """Three adds published; the subscriber gets the first and the last, never the middle one."""
    published = [change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(3)]
    lost = published[1]
    messages = fetch(topic.name, published[0].offset, 3)
    FeedConsumer().process_batch([m for m in messages if m.offset() != lost.offset])
    assert cached(cache, lost.key) is None
    reconcile(topic)
    assert finding_of(topic, "missing", lost.uuid).status == Finding.Status.OPEN
    return published, lost, messages


@pytest.fixture
def people(db, feed):
    """Viewer and operator of both feed topics and an outsider; no role groups, no admin."""
    return people_make(
        viewed=[feed.bulk, feed.change],
        operated=[feed.bulk, feed.change],
        roles=("viewer", "operator", "outsider"),
        role_groups=False,
    )
