"""process_batch on its own: cache semantics, ledger, and retries when a store is down.

Messages are built in memory (confluent_kafka.Message); Redis and PostgreSQL are real.
"""

import logging
import threading

import pytest
import redis
from confluent_kafka import Message
from django.db import connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.cache_records import cache_records_get, load_keys, tombstones_get
from core.record_checks import record_problems
from core.records import record_encode, record_from_document
from kafkacache.consumer import FeedConsumer
from kafkacache.messages import message_build
from kafkacache.producer import messages_seal
from recon.models import ConsumedMessage, Finding
from recon.services.feed import feed_topics_ensure
from tests.documents import DOC

from .conftest import cached_keys, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _redis_nowhere() -> redis.Redis:
    """A Redis client for a port nothing listens on, failing at once (no client-side retries)."""
    return redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))


def _message(
    topic: str,
    offset: int,
    *,
    event: str,
    client_id: int,
    old_key: str = "",
    load: str = "",
    created_ms=None,
    version: int | None = None,
    sealed: bool = True,
):
    """A message as this product's producer seals it (`sealed` False: as another producer)."""
    value = None
    key_id = ""
    plain = record_from_document({**DOC, "client_id": client_id})
    if event != "delete":
        encoded = record_encode(plain)
        value, key_id = encoded.value, encoded.key_id
    out = message_build(
        key=f"client:{client_id}",
        event=event,
        value=value,
        source="test",
        schema_version=1,
        hash_algorithm="blake2b",
        key_id=key_id,
        old_key=old_key,
        load=load,
        created_ms=created_ms,
        version=version,
        problems=([] if event == "delete" else record_problems(plain, key=f"client:{client_id}")) if sealed else None,
    )
    if sealed:
        [out] = messages_seal([out], topic=topic)  # as kafkacache.producer.publish seals a batch
    return Message(topic=topic, partition=0, offset=offset, key=out.key.encode(), value=out.value, headers=out.headers)


def test_batch_semantics_bulk_add_update_delete(feed, cache):
    change, bulk = feed_topics_ensure()["change"], feed_topics_ensure()["bulk"]
    bulk.accepts_unsealed = True  # another producer writes to it too
    bulk.save()
    consumer = FeedConsumer()
    outcomes = consumer.process_batch(
        [
            _message(bulk.name, 0, event="bulk", client_id=1, load="rk1", version=10, sealed=True),
            _message(bulk.name, 1, event="bulk", client_id=2, load="rk1", version=11, sealed=True),
            _message(bulk.name, 2, event="bulk", client_id=5, load="rk1", version=12, sealed=False),  # not the load's
            _message(change.name, 0, event="add", client_id=3, version=13),
            _message(change.name, 1, event="update", client_id=4, old_key="client:3", version=14),
            _message(change.name, 2, event="delete", client_id=2, version=15),
            _message(change.name, 3, event="delete", client_id=99, version=16),  # never cached
        ]
    )
    assert dict(outcomes) == {"stored": 4, "unsealed": 1, "deleted": 2}
    assert cached_keys(cache) == {"client:1", "client:4", "client:5"}
    assert load_keys(cache, "rk1") == ["client:1", "client:2"]
    moved = cache_records_get(cache, ["client:4"])["client:4"]
    assert (moved.version, moved.topic) == (14, change.name)
    assert tombstones_get(cache, ["client:3", "client:2"]) == {"client:3": 14, "client:2": 15}
    assert ConsumedMessage.objects.filter(group=feed.KAFKA_CONSUMER_GROUP).count() == 7
    # The bulk record again (redelivery, or a stale batch published late): it is older than the delete.
    consumer.process_batch([_message(bulk.name, 1, event="bulk", client_id=2, load="rk1", version=11, sealed=True)])
    assert cached_keys(cache) == {"client:1", "client:4", "client:5"}
    assert consumer.last_results[0][1] == "skipped" and "older" in consumer.last_results[0][2]


def test_invalid_records_are_stored_and_flagged(feed, cache):
    change = feed_topics_ensure()["change"]
    bad = {**DOC, "client_id": 5, "country": "Nowhere", "cards": [{**DOC["cards"][0], "expiry": "2030-01"}]}
    encoded = record_encode(record_from_document(bad))
    out = message_build(
        key="client:5",
        event="add",
        value=encoded.value,
        source="test",
        schema_version=1,
        hash_algorithm="blake2b",
        key_id=encoded.key_id,
        problems=record_problems(record_from_document(bad), key="client:5"),
    )
    [out] = messages_seal([out], topic=change.name)
    msg = Message(topic=change.name, partition=0, offset=0, key=b"client:5", value=out.value, headers=out.headers)
    assert dict(FeedConsumer().process_batch([msg])) == {"invalid": 1}
    assert cached_keys(cache) == {"client:5"}  # garbage in, garbage out: still cached
    finding = Finding.objects.get(topic=change, category="invalid-data")
    assert "country 'Nowhere'" in finding.detail["reason"] and "expiry" in finding.detail["reason"]


@pytest.mark.django_db(transaction=True)  # the batch runs in a thread, with its own connection
def test_redis_down_retries_the_same_batch_until_it_is_back(feed, cache, caplog):
    change = feed_topics_ensure()["change"]
    consumer = FeedConsumer()
    consumer.redis = _redis_nowhere()  # nothing listens there
    batch = [_message(change.name, 0, event="add", client_id=8)]
    result: dict = {}
    with caplog.at_level(logging.WARNING, logger="kafkacache.consumer"):

        def work() -> None:
            try:
                result.update(out=consumer.process_batch(batch))
            finally:
                connection.close()  # the thread's own connection

        worker = threading.Thread(target=work)
        worker.start()
        wait_for(lambda: "redis write failed" in caplog.text, timeout=10, what="a failed Redis write")
        assert worker.is_alive() and not ConsumedMessage.objects.exists()  # not skipped, not recorded
        consumer.redis = cache  # Redis is back
        worker.join(timeout=10)
    assert dict(result["out"]) == {"stored": 1}
    assert cached_keys(cache) == {"client:8"}


def test_a_stop_during_retries_abandons_the_batch_uncommitted(feed, cache):
    from kafkacache.consumer import BatchAbandoned

    change = feed_topics_ensure()["change"]
    consumer = FeedConsumer()
    consumer.redis = _redis_nowhere()
    consumer.stop_requested = True
    with pytest.raises(BatchAbandoned):
        consumer.process_batch([_message(change.name, 0, event="add", client_id=9)])
    assert not ConsumedMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_pipelined_ledger_write_that_fails_is_written_again_once(feed, cache, caplog):
    """run() sends a batch's ledger statement and reads its result one batch later; when
    that result is an error, the batch is written the plain way: retried, not skipped,
    not doubled. The error here: a lock held by another session, and a statement timeout."""
    import psycopg

    from kafkacache.services.change_feed import change_publish

    from .conftest import subprocess_database_url

    change = feed_topics_ensure()["change"]
    keys = [f"client:{770000 + i}" for i in range(250)]
    for key in keys:
        change_publish(topic=change, event="delete", key=key)  # versions drawn from the source's sequence
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '300ms'")  # this session only; a reconnect drops it
    blocker = psycopg.connect(subprocess_database_url().replace("postgres://", "postgresql://"))
    blocker.execute("LOCK TABLE recon_consumedmessage IN SHARE MODE")
    release = threading.Timer(2.0, blocker.rollback)
    release.start()
    consumer = FeedConsumer(batch_size=100)
    try:
        with caplog.at_level(logging.WARNING, logger="kafkacache.consumer"):
            consumer.run(drain=True, max_seconds=60)
    finally:
        release.join()
        blocker.close()
    assert "ledger write failed" in caplog.text
    rows = ConsumedMessage.objects.filter(topic=change)
    assert rows.count() == len(keys)  # each delivery once: the failed statement left nothing behind
    assert set(rows.values_list("key", flat=True)) == set(keys)
    assert consumer.totals["deleted"] == len(keys)
    assert set(tombstones_get(cache, keys)) == set(keys)  # every delete reached Redis (tombstones)
