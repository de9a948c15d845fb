"""The loop closes by itself: after a replay, the windows and keys it touched are judged
again (the originals' windows too) and a fixed finding closes as "fixed by replay N,
verified by run M" (real Kafka, Redis, PostgreSQL; tasks called, not run eagerly)."""

import datetime as dt

import pytest
from django.utils import timezone

from kafkacache.consumer import FeedConsumer
from recon.models import Finding, ReconRun, Replay, ReplayItem
from recon.services.cache_check import cache_check
from recon.services.runs import replay_verify
from recon.tasks import replay_verify_task, run_execute_task
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.cache_state import records_drop

from .conftest import fetch_uuid, finding_of, lose_one

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _replay(topic, operator, way: str, uuids) -> Replay:
    replay, _ = replay_request(
        topic=topic,
        way=way,
        scope="messages",
        target={"uuids": [str(u) for u in uuids]},
        reason="repair",
        requested_by=operator,
        queue=False,
    )
    return replay_run(replay_id=replay.pk)


def _verified(replay: Replay, capture) -> list[ReconRun]:
    """What the replay's finish queues, run the way a worker would."""
    with capture(execute=False) as queued:
        runs = replay_verify(replay_id=replay.pk)
    assert runs and len(queued) == len(runs)
    for run in runs:
        assert run_execute_task(str(run.pk)) == "done"
    return [ReconRun.objects.get(pk=r.pk) for r in runs]


def test_a_kafka_repair_closes_the_missing_and_the_cache_finding_verified_by_runs(
    feed, client_ids, cache, people, django_capture_on_commit_callbacks
):
    topic = feed.change
    published, lost, _ = lose_one(topic, client_ids, cache)
    # The cache leg finds a key deleted behind the feed's back, too.
    gone = published[0]
    records_drop(cache, [gone.key])
    now = timezone.now()
    # Judged past the latency limit: a key published moments ago is in flight, not a finding (issue 12).
    later = now + dt.timedelta(hours=2)
    run = cache_check(topic=topic, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(minutes=1), now=later)
    absent = Finding.objects.get(topic=topic, category="cache", key=gone.key)
    assert absent.status == Finding.Status.OPEN and absent.detail["problem"] == "absent" and run.status == "done"

    # The kafka way writes Redis itself: its end queues the verification runs at once (on commit,
    # one task per run), nothing waits for the feed.
    with django_capture_on_commit_callbacks(execute=False) as finished:
        replay = _replay(topic, people["operator"], "kafka", [lost.uuid, gone.uuid])
    assert replay.status == "done" and replay.outcome == {"stored": 2}
    runs = list(ReconRun.objects.filter(replay=replay))
    assert runs and all(r.status == "queued" for r in runs) and len(finished) == len(runs)
    for run in runs:
        assert run_execute_task(str(run.pk)) == "done"
    runs = [ReconRun.objects.get(pk=r.pk) for r in runs]
    transport = next(r for r in runs if r.kind == "transport")
    assert {r.kind for r in runs} == {"transport", "cache"} and all(r.replay_id == replay.pk for r in runs)
    assert transport.trigger == "replay" and transport.total == transport.processed == 1
    # No second pass on a redelivered task.
    assert replay_verify(replay_id=replay.pk) == []

    missing = finding_of(topic, "missing", lost.uuid)
    assert missing.status == Finding.Status.RESOLVED
    assert (missing.detail["replay"], missing.detail["verified_by_run"]) == (str(replay.pk), str(transport.pk))
    absent.refresh_from_db()
    cache_run = ReconRun.objects.get(pk=absent.detail["verified_by_run"])
    assert absent.status == Finding.Status.RESOLVED and absent.detail["replay"] == str(replay.pk)
    assert cache_run.kind == "cache" and cache_run.replay_id == replay.pk and cache_run.report["all_matched"]
    # The re-read of the delivered message is a repair, not a duplicate.
    assert not Finding.objects.filter(topic=topic, category__in=("duplicate", "delayed", "orphan")).exists()


def test_an_audit_replay_is_verified_once_the_feed_has_consumed_it(
    feed, client_ids, cache, people, django_capture_on_commit_callbacks
):
    topic = feed.change
    _, lost, _ = lose_one(topic, client_ids, cache)
    replay = _replay(topic, people["operator"], "audit", [lost.uuid])
    new_uuid = ReplayItem.objects.get(replay=replay).uuid

    # Published, not consumed yet: nothing judged, the task looks again later.
    assert replay_verify(replay_id=replay.pk) is None
    assert replay_verify_task(str(replay.pk)) == 0
    assert not ReconRun.objects.filter(replay=replay).exists()

    FeedConsumer().process_batch([fetch_uuid(topic, new_uuid)])
    runs = _verified(replay, django_capture_on_commit_callbacks)
    transport = next(r for r in runs if r.kind == "transport")
    # The original's window and the new message's (here the same hour-long window).
    assert transport.params["windows"] and transport.report["replay"] == str(replay.pk)
    missing = finding_of(topic, "missing", lost.uuid)
    assert missing.status == Finding.Status.RESOLVED
    assert missing.detail["verified_by_run"] == str(transport.pk) and missing.detail["replay_uuid"] == str(new_uuid)


def test_a_finished_load_is_judged_in_both_legs_once_consumed(feed, cache, people, django_capture_on_commit_callbacks):
    from core.ods import ods_seed
    from kafkacache.services.loads import load_run, load_start
    from recon.models import Load
    from recon.services.runs import load_verify

    from .conftest import fetch

    topic = feed.bulk
    ods_seed(clients=5, using="default")
    records_drop(cache, [f"client:{i}" for i in range(1, 6)])
    load = load_start(topic=topic, source="ods", client_ids=[1, 2, 3], requested_by=None, queue=False)
    load = load_run(load_id=load.id)
    assert load.status == Load.Status.DONE
    assert load_verify(load_id=load.id) is None  # published, the feed has not consumed it yet

    FeedConsumer().process_batch(fetch(topic.name, 0, 3))
    records_drop(cache, ["client:3"])  # removed behind the feed's back: only the cache leg can see it
    with django_capture_on_commit_callbacks(execute=False) as queued:
        runs = load_verify(load_id=load.id)
    assert runs is not None and {r.kind for r in runs} == {"transport", "cache"} and len(queued) == 2
    for run in runs:
        assert run_execute_task(str(run.pk)) == "done"
    cache_run = ReconRun.objects.get(load=load, kind="cache")
    assert (cache_run.trigger, cache_run.report["checked"], cache_run.report["all_matched"]) == ("load", 3, False)
    assert cache_run.report["problems"]["absent"]["keys"] == ["client:3"]
    absent = Finding.objects.get(topic=topic, category="cache", key="client:3")
    assert absent.status == Finding.Status.OPEN and absent.load_id == load.id
    assert ReconRun.objects.get(load=load, kind="transport").report["windows"]["total"] >= 1
    assert load_verify(load_id=load.id) == []  # judged once
