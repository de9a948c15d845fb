"""Fixtures of the feed tests: own topics and group per test, a clean cache, helpers."""

import time
from collections.abc import Callable

import pytest
from django.conf import settings as django_settings

from core.record_checks import record_problems
from core.records import record_encode, record_from_document
from core.sources import SqlSource
from kafkacache.consumer import FeedConsumer
from kafkacache.messages import OutMessage, message_build
from kafkacache.services.topics import topics_ensure
from tests import cache_state


@pytest.fixture
def feed(settings, unique_name):
    """Fresh bulk, change and dead-letter topics and consumer group for this test."""
    settings.KAFKA_TOPIC_BULK = unique_name("t.bulk")
    settings.KAFKA_TOPIC_CHANGE = unique_name("t.change")
    settings.KAFKA_TOPIC_DEAD_LETTER = unique_name("t.dlq")
    settings.KAFKA_CONSUMER_GROUP = unique_name("t.group")
    topics_ensure([settings.KAFKA_TOPIC_BULK, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER])
    return settings


def consume_all(*, limit: float = 60.0, batch_size: int | None = None) -> FeedConsumer:
    """Run a consumer in this process until it has caught up with every partition."""
    consumer = FeedConsumer(batch_size=batch_size)
    consumer.run(drain=True, max_seconds=limit)
    return consumer


def wait_for(condition: Callable[[], object], *, timeout: float = 30.0, every: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


cached_keys = cache_state.cached_keys


def source_records(client_ids=None) -> dict[str, dict]:
    """The source's current records by record key (the expected cache)."""
    source = SqlSource()
    out = {}
    for batch in source.batches(client_ids=client_ids, batch_size=1000):
        for item in batch:
            out[item.key] = item.record
    return out


def subprocess_database_url() -> str:
    db = django_settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def client_message(
    client_id: int, *, document: dict | None = None, sealed: bool = True, topic: str | None = None
) -> OutMessage:
    """An add of a client record (DOC by default), built and sealed as the producer does
    for `topic` (the change topic by default); `sealed` False: as a producer that does
    not seal (the consumer checks it in full)."""
    from kafkacache.producer import messages_seal
    from tests.documents import DOC

    plain = record_from_document({**(document or DOC), "client_id": client_id})
    encoded = record_encode(plain)
    message = message_build(
        key=f"client:{client_id}",
        event="add",
        value=encoded.value,
        source="test",
        schema_version=encoded.schema_version,
        hash_algorithm="blake2b",
        key_id=encoded.key_id,
        problems=record_problems(plain, key=f"client:{client_id}") if sealed else None,
    )
    return messages_seal([message], topic=topic or django_settings.KAFKA_TOPIC_CHANGE)[0]
