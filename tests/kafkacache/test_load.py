"""A bulk load end to end against the real Kafka, Redis and PostgreSQL."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from kafkacache.cache import cache_records_get, load_keys
from kafkacache.models import Load
from kafkacache.ods import ods_seed
from kafkacache.records import record_decode
from kafkacache.selectors import loads_stalled
from kafkacache.services import load_run, load_start, topic_rows_ensure
from recon.models import ConsumedMessage, OperatorAction, PublishedMessage, Window

from .conftest import cached_keys, consume_all, source_records, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.django_db
def test_bulk_load_of_1000_clients_lands_in_redis_equal_to_the_source_and_in_both_ledgers(feed, cache):
    ods_seed(clients=1000, using="default")
    topic = topic_rows_ensure()["bulk"]
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
    topic = topic_rows_ensure()["bulk"]
    load = load_start(topic=topic, source="ods", client_ids=[2, 4], requested_by=None, queue=False)
    assert load_run(load_id=load.id).status == Load.Status.DONE
    again = load_run(load_id=load.id)  # a second worker, or a redelivered task
    assert (again.status, again.published) == (Load.Status.DONE, 2)
    assert PublishedMessage.objects.filter(load_id=load.id).count() == 2


@pytest.mark.django_db
def test_a_load_from_a_missing_file_fails_with_the_reason(feed, settings, tmp_path):
    settings.SOURCE_FILE_DIR = str(tmp_path)
    (tmp_path / "clients.jsonl").write_text("")
    topic = topic_rows_ensure()["bulk"]
    load = load_start(topic=topic, source="file:clients.jsonl", client_ids=None, requested_by=None, queue=False)
    (tmp_path / "clients.jsonl").unlink()  # gone by the time the worker runs it
    load = load_run(load_id=load.id)
    assert load.status == Load.Status.FAILED
    assert "no such file" in load.error


def test_the_celery_task_runs_a_queued_load(feed, cache, celery_worker_process):
    ods_seed(clients=20, using="default")
    topic = topic_rows_ensure()["bulk"]
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
    topic = topic_rows_ensure()["bulk"]
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    stalled = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    Load.objects.filter(id=stalled.id).update(status="running", heartbeat_at=hour_ago, published=2)  # worker died
    live = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    Load.objects.filter(id=live.id).update(status="running", heartbeat_at=timezone.now())
    lost = load_start(topic=topic, source="ods", client_ids=[1], requested_by=None, queue=False)
    Load.objects.filter(id=lost.id).update(created_at=hour_ago)  # queued, its task never arrived
    assert sorted(loads_stalled()) == sorted([str(stalled.id), str(lost.id)])

    resumed = load_run(load_id=stalled.id)
    assert (resumed.status, resumed.published) == ("done", 5)  # restarted from the beginning
    assert load_run(load_id=live.id).status == "running"  # its worker is alive: left alone
    assert load_run(load_id=lost.id).status == "done"
    assert loads_stalled() == []
