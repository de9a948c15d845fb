"""A load split by client-id range into parts, each run and resumed on its own, against the
real Kafka, Redis, PostgreSQL and Celery workers."""

import datetime as dt
import json
import os
import signal
import time
import uuid

import pytest
from django.db import transaction
from django.utils import timezone

from core.cache_records import load_keys
from core.clients import make_consumer
from core.ods import ods_seed
from core.sources import FileSource, PartRange, SqlSource
from kafkacache import tasks
from kafkacache.messages import headers_dict
from kafkacache.producer import producer
from kafkacache.services import loads
from kafkacache.services.loads import load_parts_run, load_run, load_start
from recon.models import Finding, Load, LoadPart, PublishedMessage, ReconRun
from recon.services.feed import feed_topics_ensure
from recon.services.runs import load_verify
from recon.tasks import run_execute_task
from tests.conftest import celery_worker
from tests.documents import DOC

from .conftest import cached_keys, consume_all, wait_for

pytestmark = pytest.mark.integration


def _on_topic(topic: str, retrieval_key: str, *, at_least: int) -> dict[uuid.UUID, str]:
    """Every message of the load on the topic, read from Kafka: message uuid -> record key."""
    consumer = make_consumer(f"t-parts-{uuid.uuid4().hex[:8]}", **{"enable.auto.commit": False})
    consumer.subscribe([topic])
    out: dict[uuid.UUID, str] = {}
    quiet_until = None
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            got = consumer.consume(num_messages=1000, timeout=1.0)
            for m in got:
                headers = headers_dict(m.headers())
                if m.error() is None and headers.get("load") == retrieval_key.encode():
                    out[uuid.UUID(headers["uuid"].decode())] = m.key().decode()
            if len(out) >= at_least and not got:
                quiet_until = quiet_until or time.monotonic() + 2  # then a little longer: nothing more comes
                if time.monotonic() > quiet_until:
                    break
    finally:
        consumer.close()
    return out


def _ledger(load: Load) -> list[tuple[uuid.UUID, str]]:
    return list(PublishedMessage.objects.filter(load_id=load.id).values_list("uuid", "key"))


@pytest.mark.django_db
def test_the_sql_source_splits_into_client_ranges_that_cover_every_key(feed):
    ods_seed(clients=1000, using="default")
    source = SqlSource()
    assert source.parts(size=300) == [
        PartRange(None, 300, 300),
        PartRange(300, 600, 300),
        PartRange(600, 900, 300),
        PartRange(900, None, 100),  # the last runs to the end: a client added meanwhile is in it
    ]
    # a last range that would be empty: the one before it runs to the end instead
    assert source.parts(size=250) == [
        PartRange(None, 250, 250),
        PartRange(250, 500, 250),
        PartRange(500, 750, 250),
        PartRange(750, None, 250),
    ]
    assert source.parts(size=5000) == [PartRange(None, None, 1000)]
    # chosen clients: the chosen ones in key order, counted as the source has them
    assert source.parts(client_ids=[7, 3, 2000, 9, 500, 3], size=2) == [
        PartRange(None, 7, 2),
        PartRange(7, 500, 2),
        PartRange(500, 2000, 0),
    ]
    # each range reads exactly its clients, and a position resumes inside one
    keys = [item.key for batch in source.read(batch_size=70, key_after=300, key_last=600) for item in batch.items]
    assert keys == [f"client:{i}" for i in range(301, 601)]
    batches = list(source.read(batch_size=70, key_after=300, key_last=600, after=450))
    assert [b.position for b in batches] == [520, 590, 600]
    assert batches[0].items[0].key == "client:451"


def test_a_file_is_one_part_resumable_by_line(tmp_path):
    path = tmp_path / "clients.jsonl"
    path.write_text("".join(json.dumps({**DOC, "client_id": i}) + "\n" for i in range(1, 8)))
    source = FileSource(path)
    assert source.parts(size=2) == [PartRange(None, None, 7)]
    assert [(len(b.items), b.position) for b in source.read(batch_size=3)] == [(3, 3), (3, 6), (1, 7)]
    assert [i.key for b in source.read(batch_size=3, after=5) for i in b.items] == ["client:6", "client:7"]


@pytest.mark.django_db
def test_a_load_in_parts_is_one_load_with_one_progress(feed, cache, settings):
    settings.LOAD_PART_CLIENTS = 300
    settings.LOAD_BATCH_SIZE = 100
    ods_seed(clients=1000, using="default")
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    steps = []

    def progress(current: Load, counts) -> None:
        # the load's counters are its parts' sum and what the ledger holds, at every batch
        parts = LoadPart.objects.filter(load=load)
        steps.append(
            (current.published, sum(p.published for p in parts), PublishedMessage.objects.filter(load=load).count())
        )

    load = load_run(load_id=load.id, progress=progress)
    assert (load.status, load.part_count, load.total, load.built, load.published, load.failed) == (
        "done",
        4,
        1000,
        1000,
        1000,
        0,
    )
    assert all(a == b == c for a, b, c in steps) and len(steps) == 3 + 3 + 3 + 1
    parts = list(LoadPart.objects.filter(load=load))
    assert [(p.number, p.status, p.total, p.published, p.attempts) for p in parts] == [
        (1, "done", 300, 300, 1),
        (2, "done", 300, 300, 1),
        (3, "done", 300, 300, 1),
        (4, "done", 100, 100, 1),
    ]
    keys = [key for _, key in _ledger(load)]
    assert sorted(keys) == sorted(f"client:{i}" for i in range(1, 1001))  # every client, once

    # chosen clients across parts: only those, once each
    settings.LOAD_PART_CLIENTS = 50
    chosen = list(range(1, 1001, 7))
    some = load_start(topic=topic, source="ods", client_ids=chosen, requested_by=None, queue=False)
    some = load_run(load_id=some.id)
    assert (some.status, some.part_count, some.total, some.published) == ("done", 3, len(chosen), len(chosen))
    assert sorted(key for _, key in _ledger(some)) == sorted(f"client:{i}" for i in chosen)


class _Killed(BaseException):
    """Stands for SIGKILL inside the process: nothing after it runs (no except Exception catches it)."""


@pytest.mark.django_db
def test_a_part_resumed_after_its_worker_died_ledgers_what_kafka_acknowledged_and_sends_no_client_twice(
    feed, cache, settings, monkeypatch
):
    settings.LOAD_BATCH_SIZE = 40
    settings.LOAD_BATCHES_IN_FLIGHT = 4
    ods_seed(clients=400, using="default")
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    done_batch = loads._PartRun._batch_done
    calls = []

    def dies_at_the_third(self, batch):
        calls.append(1)
        if len(calls) >= 3:  # the worker is gone: this batch and those behind it are never ledgered
            raise _Killed
        return done_batch(self, batch)

    monkeypatch.setattr(loads._PartRun, "_batch_done", dies_at_the_third)
    with pytest.raises(_Killed):
        load_run(load_id=load.id)
    monkeypatch.setattr(loads._PartRun, "_batch_done", done_batch)
    producer().flush(30)  # what the dead worker had handed to Kafka is acknowledged
    part = LoadPart.objects.get(load=load)
    assert (part.status, part.published, part.position) == ("running", 80, 80)
    sent = _on_topic(topic.name, load.retrieval_key, at_least=81)
    assert len(sent) > 80 and len(_ledger(load)) == 80  # acknowledged, not ledgered
    # someone else's message with the load's key and an unclaimed client: no seal, never ledgered as ours
    forged = uuid.uuid4()
    producer().produce(
        topic.name,
        key=b"client:399",
        value=b"not ours",
        headers=[("uuid", str(forged).encode()), ("event", b"bulk"), ("load", load.retrieval_key.encode())],
    )
    producer().flush(30)

    LoadPart.objects.filter(id=part.id).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    load = load_parts_run(load_id=load.id)
    part.refresh_from_db()
    assert (load.status, load.published, part.status, part.published, part.attempts) == ("done", 400, "done", 400, 2)
    ledger = _ledger(load)
    on_topic = _on_topic(topic.name, load.retrieval_key, at_least=401)
    assert len(ledger) == len({u for u, _ in ledger}) == 400  # each acknowledged message ledgered once
    assert {u for u, _ in ledger} == set(on_topic) - {forged}  # ... and every one of ours on the topic is
    assert sorted(key for _, key in ledger) == sorted(f"client:{i}" for i in range(1, 401))  # no client twice


def test_a_load_in_parts_on_two_celery_workers_one_killed_mid_part_finishes_whole(
    feed, cache, settings, transactional_db
):
    """Two real workers run the parts; one is SIGKILLed in the middle of one. Its part is
    resumed alone by the other: the load finishes, every acknowledged message is ledgered
    once and no client is sent twice, the retrieval set is whole, and both reconciliation
    legs find nothing."""
    env = {"LOAD_PART_CLIENTS": "1000", "LOAD_BATCH_SIZE": "25", "LOAD_BATCHES_IN_FLIGHT": "4"}
    settings.LOAD_PART_CLIENTS, settings.LOAD_BATCH_SIZE = 1000, 25
    clients = 3000
    ods_seed(clients=clients, using="default")
    topic = feed_topics_ensure()["bulk"]
    every = {f"client:{i}" for i in range(1, clients + 1)}
    with celery_worker(env) as (_doomed, doomed_proc), celery_worker(env) as (_survivor, _proc):
        with transaction.atomic():
            load = load_start(topic=topic, source="ods", client_ids=None, requested_by=None)

        def doomed_mid_part() -> LoadPart | None:
            # a solo worker answers no inspect() while it runs a task: the part says who holds it
            running = LoadPart.objects.filter(load=load, status="running", worker__endswith=f":{doomed_proc.pid}")
            return running.filter(published__gte=200, published__lte=700).first()

        victim = wait_for(doomed_mid_part, timeout=120, every=0.02, what="a part half done on the doomed worker")
        os.killpg(doomed_proc.pid, signal.SIGKILL)
        doomed_proc.wait()
        victim.refresh_from_db()
        assert victim.status == "running" and victim.published < victim.total  # its worker died in the middle
        # LOAD_STALE_SECONDS pass without a heartbeat: beat's resume queues the part again
        LoadPart.objects.filter(id=victim.id).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
        assert str(victim.id) in tasks.loads_resume_task()
        load = wait_for(
            lambda: Load.objects.filter(id=load.id, status__in=["done", "failed"]).first(), timeout=180, what="the load"
        )
    victim.refresh_from_db()
    parts = list(LoadPart.objects.filter(load=load))
    assert (load.status, load.error, load.part_count, load.total, load.published) == ("done", "", 3, clients, clients)
    assert all(p.status == "done" for p in parts) and sum(p.published for p in parts) == clients
    assert victim.attempts == 2  # resumed once, alone: the other parts ran once
    assert sorted(p.attempts for p in parts) == [1, 1, 2]

    ledger = _ledger(load)
    on_topic = _on_topic(topic.name, load.retrieval_key, at_least=clients)
    assert len(ledger) == len({u for u, _ in ledger}) == len(on_topic)  # every acknowledged message, once
    assert {u for u, _ in ledger} == set(on_topic)
    assert sorted(key for _, key in ledger) == sorted(every)  # every client, none twice

    consume_all(limit=120)
    assert set(load_keys(cache, load.retrieval_key)) == every  # one retrieval key, the whole set
    assert cached_keys(cache) == every
    runs = load_verify(load_id=load.id)
    assert runs is not None and {r.kind for r in runs} == {"transport", "cache"}
    for run in runs:
        assert run_execute_task(str(run.pk)) == "done"
    cache_run = ReconRun.objects.get(load=load, kind="cache")
    assert (cache_run.report["checked"], cache_run.report["all_matched"]) == (clients, True)
    transport = ReconRun.objects.get(load=load, kind="transport")
    assert transport.status == "done" and transport.report["windows"]["total"] >= 1
    assert list(Finding.objects.filter(topic=topic).values_list("category", "key")) == []  # both legs agree: clean
