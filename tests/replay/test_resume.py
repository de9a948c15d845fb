"""A replay whose worker died is found and taken over; one that is still running is left alone."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from core.jobs import jobs_stalled
from recon.models import Replay
from replay.services.runs import replay_run

pytestmark = pytest.mark.django_db


def _running(topic, heartbeat: dt.datetime) -> Replay:
    replay = Replay.objects.create(
        topic=topic,
        way="kafka",
        scope="messages",
        target={"uuids": [str(uuid.uuid4())]},
        fingerprint=uuid.uuid4().hex,
        reason="test",
        status=Replay.Status.RUNNING,
        started_at=heartbeat,
        heartbeat_at=heartbeat,
    )
    replay.items.create(outcome="stored", detail="written by the worker that died")
    return replay


def test_a_stalled_replay_is_found_and_started_over(feed, settings):
    now = timezone.now()
    stalled = _running(feed.change, now - dt.timedelta(seconds=settings.REPLAY_STALE_SECONDS + 60))
    alive = _running(feed.change, now - dt.timedelta(seconds=5))
    assert jobs_stalled(Replay, stale_seconds=settings.REPLAY_STALE_SECONDS, now=now) == [str(stalled.pk)]

    stalled = replay_run(replay_id=stalled.pk)
    assert stalled.status == "problems"  # its one message is skipped (no scope left): not plain done
    assert [i.outcome for i in stalled.items.all()] == ["skipped"]  # the dead run's item replaced

    alive = replay_run(replay_id=alive.pk)
    assert alive.status == "running" and alive.items.get().detail == "written by the worker that died"
