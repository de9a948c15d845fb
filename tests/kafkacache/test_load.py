"""A bulk load end to end against the real Kafka, Redis and PostgreSQL."""

import datetime as dt
import time
import uuid

import pytest
from django.db import transaction
from django.utils import timezone

from core.cache_records import cache_records_get, load_keys
from core.clients import make_consumer
from core.jobs import jobs_stalled
from core.ods import ods_seed
from core.records import record_decode
from core.sources import SourceError, SqlSource
from kafkacache.services.loads import load_run, load_start
from recon.models import ConsumedMessage, Load, OperatorAction, PublishedMessage, Window
from recon.services.feed import feed_topics_ensure

from .conftest import cached_keys, consume_all, source_records, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.django_db
def test_bulk_load_of_1000_clients_lands_in_redis_equal_to_the_source_and_in_both_ledgers(feed, cache):
    ods_seed(clients=1000, using="default")
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    load = load_run(load_id=load.id)
    assert (load.status, load.total, load.built, load.published, load.failed, load.exceptions) == (
        Load.Status.DONE,
        1000,
        1000,
        1000,
        0,
        0,
    )
    assert OperatorAction.objects.filter(action="load.start", target=f"load:{load.id}").exists()

    consume_all()

    expected = source_records()
    assert len(expected) == 1000
    assert cached_keys(cache) == set(expected)  # exactly those records, nothing else
    assert set(load_keys(cache, load.retrieval_key)) == set(expected)
    cached = cache_records_get(cache, expected)
    for key, record in expected.items():
        hit = cached[key]
        assert record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) == record, key

    published = dict(PublishedMessage.objects.filter(load_id=load.id).values_list("uuid", "content_hash"))
    consumed = dict(ConsumedMessage.objects.filter(topic=topic, outcome="stored").values_list("uuid", "content_hash"))
    assert len(published) == 1000
    assert {u: bytes(h) for u, h in consumed.items()} == {u: bytes(h) for u, h in published.items()}
    # every cached value is the exact published value: its uuid is the published one
    assert {hit.uuid for hit in cached.values()} == {str(u) for u in published}
    windows = Window.objects.filter(topic=topic)
    assert sum(w.published_count for w in windows) == sum(w.consumed_count for w in windows) == 1000
    assert all(w.published_digest == w.consumed_digest for w in windows)


@pytest.mark.django_db
def test_a_load_is_claimed_once(feed, cache):
    ods_seed(clients=5, using="default")
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="ods", client_ids=[2, 4], requested_by=None, queue=False)
    assert load_run(load_id=load.id).status == Load.Status.DONE
    again = load_run(load_id=load.id)  # a second worker, or a redelivered task
    assert (again.status, again.published) == (Load.Status.DONE, 2)
    assert PublishedMessage.objects.filter(load_id=load.id).count() == 2


@pytest.mark.django_db
def test_a_load_from_a_missing_file_fails_with_the_reason(feed, settings, tmp_path):
    settings.SOURCE_FILE_DIR = str(tmp_path)
    (tmp_path / "clients.jsonl").write_text("")
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="file:clients.jsonl", client_ids=None, requested_by=None, queue=False)
    (tmp_path / "clients.jsonl").unlink()  # gone by the time the worker runs it
    load = load_run(load_id=load.id)
    assert load.status == Load.Status.FAILED
    assert "no such file" in load.error


def test_the_celery_task_runs_a_queued_load(feed, cache, celery_worker_process):
    ods_seed(clients=20, using="default")
    topic = feed_topics_ensure()["bulk"]
    with transaction.atomic():
        load = load_start(topic=topic, source="ods", client_ids=[3, 5, 7], requested_by=None)
    # queued on commit; the real worker claims and runs it
    done = wait_for(
        lambda: Load.objects.filter(id=load.id, status__in=["done", "failed"]).first(), timeout=60, what="the load"
    )
    assert (done.status, done.total, done.published) == ("done", 3, 3)
    assert set(PublishedMessage.objects.filter(load_id=load.id).values_list("key", flat=True)) == {
        "client:3",
        "client:5",
        "client:7",
    }


@pytest.mark.django_db
def test_a_stalled_load_is_found_and_claimed_again_but_a_live_one_is_left_alone(feed, cache, settings):
    ods_seed(clients=5, using="default")
    topic = feed_topics_ensure()["bulk"]
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    stalled = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    Load.objects.filter(id=stalled.id).update(status="running", heartbeat_at=hour_ago, published=2)  # worker died
    live = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    Load.objects.filter(id=live.id).update(status="running", heartbeat_at=timezone.now())
    lost = load_start(topic=topic, source="ods", client_ids=[1], requested_by=None, queue=False)
    Load.objects.filter(id=lost.id).update(created_at=hour_ago)  # queued, its task never arrived
    assert sorted(jobs_stalled(Load, stale_seconds=settings.LOAD_STALE_SECONDS)) == sorted(
        [str(stalled.id), str(lost.id)]
    )

    resumed = load_run(load_id=stalled.id)
    assert (resumed.status, resumed.published) == ("done", 5)  # restarted from the beginning
    assert load_run(load_id=live.id).status == "running"  # its worker is alive: left alone
    assert load_run(load_id=lost.id).status == "done"
    assert jobs_stalled(Load, stale_seconds=settings.LOAD_STALE_SECONDS) == []


def _topic_offsets(topic: str, expected: int) -> dict[str, tuple[int, int]]:
    """Record key -> (partition, offset) of every message on the topic, read from Kafka."""
    consumer = make_consumer(f"t-offsets-{uuid.uuid4().hex[:8]}", **{"enable.auto.commit": False})
    consumer.subscribe([topic])
    out: dict[str, tuple[int, int]] = {}
    deadline = time.monotonic() + 60
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=500, timeout=1.0):
                if m.error() is None:
                    out[m.key().decode()] = (m.partition(), m.offset())
    finally:
        consumer.close()
    return out


@pytest.mark.django_db
def test_a_load_with_batches_in_flight_ledgers_each_message_kafka_acknowledged_with_its_offset(feed, cache, settings):
    settings.LOAD_BATCH_SIZE = 40
    settings.LOAD_BATCHES_IN_FLIGHT = 3
    ods_seed(clients=300, using="default")
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    steps = []

    def progress(current: Load, counts) -> None:
        # at every step the counters are exactly what the ledger holds: a batch is
        # ledgered and counted together, once all of it is acknowledged
        ledgered = PublishedMessage.objects.filter(load_id=load.id).count()
        steps.append((current.published, ledgered, counts.published, current.heartbeat_at))

    load = load_run(load_id=load.id, progress=progress)
    assert (load.status, load.total, load.built, load.published, load.failed) == ("done", 300, 300, 300, 0)
    assert len(steps) == 8  # 7 batches of 40 and one of 20
    assert [s[2] for s in steps] == [40] * 7 + [20]
    assert all(published == ledgered for published, ledgered, _, _ in steps)
    assert [s[0] for s in steps] == sorted(s[0] for s in steps) and steps[-1][0] == 300
    heartbeats = [s[3] for s in steps]
    assert heartbeats == sorted(heartbeats) and heartbeats[-1] > heartbeats[0]  # it beat per batch

    on_kafka = _topic_offsets(topic.name, 300)
    ledger = {
        key: (partition, offset)
        for key, partition, offset in PublishedMessage.objects.filter(load_id=load.id).values_list(
            "key", "partition", "offset"
        )
    }
    assert len(on_kafka) == 300 and ledger == on_kafka  # every ledger row is an acknowledged message, at its offset


@pytest.mark.django_db
def test_a_load_failing_midway_still_ledgers_the_batches_already_handed_to_kafka(feed, cache, settings, monkeypatch):
    settings.LOAD_BATCH_SIZE = 25
    settings.LOAD_BATCHES_IN_FLIGHT = 4
    ods_seed(clients=200, using="default")
    read = SqlSource.read

    def failing(self, **kwargs):
        for i, batch in enumerate(read(self, **kwargs)):
            if i == 3:
                raise SourceError("the source went away")
            yield batch

    monkeypatch.setattr(SqlSource, "read", failing)
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    load = load_run(load_id=load.id)
    assert load.status == "failed" and "the source went away" in load.error
    assert load.error.startswith("part 1 of 1 (every client): SourceError")
    # the three batches read before the failure were all in flight: acknowledged, so ledgered and counted
    assert load.published == 75 == PublishedMessage.objects.filter(load_id=load.id).count()
    assert set(_topic_offsets(topic.name, 75)) == set(
        PublishedMessage.objects.filter(load_id=load.id).values_list("key", flat=True)
    )
