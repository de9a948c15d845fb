"""Duplicates that mean something, on the real Kafka, Redis and PostgreSQL: a re-read offset is
redelivery (counted per window), a second copy in the log is a duplicate, and one record version
published again under a new UUID (a restarted bulk load) is `republished`."""

import pytest

from core.clients import make_producer
from core.ods import ods_seed
from kafkacache.consumer import FeedConsumer
from kafkacache.services.change_feed import change_publish
from kafkacache.services.loads import load_run, load_start
from recon.models import Finding, PublishedMessage, Window
from tests.documents import client_doc
from tests.replay.conftest import feed_topics_make, fetch, reconcile

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def feed(settings, unique_name):
    return feed_topics_make(settings, unique_name)


def test_a_consumer_reading_offsets_again_is_redelivery_and_a_copy_in_the_log_a_duplicate(feed, cache):
    topic = feed.change
    published = [change_publish(topic=topic, event="add", record=client_doc(700 + i)) for i in range(4)]
    messages = fetch(topic.name, published[0].offset, 4)
    consumer = FeedConsumer()
    consumer.process_batch(messages)
    # A consumer killed before its commit: the next one reads the same offsets again.
    consumer.process_batch(messages[:3])
    # The producer sending one message again: the same UUID at a new offset.
    producer = make_producer()
    again = messages[3]
    producer.produce(topic.name, key=again.key(), value=again.value(), headers=again.headers())
    assert producer.flush(10) == 0
    consumer.process_batch(fetch(topic.name, published[-1].offset + 1, 1))

    run = reconcile(topic)
    window = Window.objects.get(topic=topic)
    assert window.redelivered == 3 and window.summary["redelivered"] == 3
    duplicates = Finding.objects.filter(topic=topic, category="duplicate")
    assert [(f.uuid, f.detail["deliveries"]) for f in duplicates] == [(published[3].uuid, 2)]
    assert set(run.report["findings"]) == {"duplicate"}


def test_a_restarted_bulk_load_is_republished_info_and_the_cache_is_unharmed(feed, cache):
    topic = feed.bulk
    ods_seed(clients=3, using="default")
    first = load_run(load_id=load_start(topic=topic, source="ods", client_ids=[], requested_by=None, queue=False).id)
    again = load_run(load_id=load_start(topic=topic, source="ods", client_ids=[], requested_by=None, queue=False).id)
    FeedConsumer().process_batch(fetch(topic.name, 0, 6))

    run = reconcile(topic)
    findings = {f.key: f for f in Finding.objects.filter(topic=topic, category="republished")}
    assert set(findings) == {"client:1", "client:2", "client:3"}
    rows = {(r.key, r.load_id): r for r in PublishedMessage.objects.filter(topic=topic)}
    for key, finding in findings.items():
        assert (finding.severity, finding.classification) == ("info", "mismatch")
        assert finding.uuid == rows[(key, again.id)].uuid
        assert finding.detail["uuids"] == [str(rows[(key, first.id)].uuid), str(rows[(key, again.id)].uuid)]
        assert finding.detail["source_version"] == rows[(key, first.id)].source_version
        assert finding.load_id == again.id
    assert set(run.report["findings"]) == {"republished"}  # nothing missing, nothing duplicated
