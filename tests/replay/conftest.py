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
from django.contrib.auth.models import User
from django.utils import timezone

from core.clients import make_consumer, redis_client
from kafkacache.topic_rows import topic_rows_ensure
from kafkacache.topics import topics_ensure
from recon import access
from recon.models import Finding, PublishedMessage, ReconRun, Topic
from recon.services import range_reconcile
from tests.dashboard.test_browser import browser, login  # noqa: F401  (Debian's Chromium; a logged-in page)

PASSWORD = "test-pass-123"


def feed_topics_make(settings, unique_name) -> SimpleNamespace:
    settings.KAFKA_TOPIC_BULK = unique_name("rp.bulk")
    settings.KAFKA_TOPIC_CHANGE = unique_name("rp.change")
    settings.KAFKA_TOPIC_DEAD_LETTER = unique_name("rp.dlq")
    settings.KAFKA_CONSUMER_GROUP = unique_name("rp.group")
    topics_ensure(
        [settings.KAFKA_TOPIC_BULK, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER], partitions=1
    )
    rows = topic_rows_ensure()
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


@pytest.fixture
def people(db, feed):
    def user(name: str) -> User:
        return User.objects.create_user(name, password=PASSWORD)

    viewer, operator, outsider = user("viewer1"), user("operator1"), user("outsider1")
    for topic in (feed.bulk, feed.change):
        access.topic_grant(viewer, topic, "viewer")
        access.topic_grant(operator, topic, "operator")
    return {"viewer": viewer, "operator": operator, "outsider": outsider}
