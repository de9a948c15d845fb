"""The one lifecycle of a long job (a bulk load, a reconciliation run of any kind, a
replay; any model with `status`, `created_at`, `started_at`, `heartbeat_at`,
`finished_at`):

    queued -> running -> done | failed

- **enqueue**: a service queues the job's task by its name once its transaction
  commits (job_enqueue), so no service imports its own tasks module;
- **claim**: a worker takes a job that is queued, or running with a heartbeat older
  than the stale limit (its worker went away), with one conditional UPDATE, so two
  workers never both run it and a redelivered task is a no-op. A job its caller runs
  at once (a scheduled reconcile, a check called in process) is created running
  and has nothing to claim;
- **beat**: while running, each batch moves `heartbeat_at` (with its counters); a
  worker that lost its job to a later claim (it stalled past the limit) beats nothing
  and stops;
- **stalled**: queued and never picked up, or running and silent, past the limit:
  jobs_resume (beat) queues these again, and the claim above takes them;
- **finish**: running -> done or failed, once.
"""

import datetime as dt
import logging
from typing import Any

from celery import current_app
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# Done, but not every item got where it belongs (a replay that skipped or failed some): never plain done.
PROBLEMS = "problems"


def job_enqueue(name: str, *args: Any, **kwargs: Any) -> None:
    """Queue the task named `name` once the caller's transaction commits (at once outside one).

    By name, so the service that queues a task never imports the tasks module that
    calls it back (tests/architecture checks that every name given here is a
    registered task).
    """
    transaction.on_commit(lambda: _job_send(name, args, kwargs))


def _job_send(name: str, args: tuple, kwargs: dict) -> None:
    # A signature by name runs as the registered task's own delay would (routed by name,
    # in process under Celery's eager mode); where the tasks module is not imported (a
    # web process), it is sent by name, and the routes (config.celery) are by name too.
    current_app.signature(name, args=args, kwargs=kwargs).apply_async()


def job_claim(model: type[models.Model], pk, *, stale_seconds: int, beating: Q | None = None, **reset) -> bool:
    """Take a queued or stalled job (True), or leave it to whoever holds it (False).
    `beating`: only running jobs that match it beat, so only they can be stalled (None: all).
    `reset`: the fields a fresh start clears (counters, error)."""
    now = timezone.now()
    stalled = Q(status=RUNNING, heartbeat_at__lt=now - dt.timedelta(seconds=stale_seconds))
    if beating is not None:
        stalled &= beating
    claimed = model._default_manager.filter(Q(status=QUEUED) | stalled, pk=pk).update(
        status=RUNNING, started_at=now, heartbeat_at=now, **reset
    )
    return bool(claimed)


def job_beat(model: type[models.Model], pk, *, claimed_at: dt.datetime | None = None, **fields) -> bool:
    """A running job is alive; `fields` are written with the heartbeat (F() expressions welcome).
    `claimed_at`: the `started_at` its claim set, so a worker that stalled past the limit
    and lost the job to another claim beats nothing (False) and stops."""
    running = model._default_manager.filter(pk=pk, status=RUNNING)
    if claimed_at is not None:
        running = running.filter(started_at=claimed_at)
    return bool(running.update(heartbeat_at=timezone.now(), **fields))


def job_finish(model: type[models.Model], pk, *, status: str, claimed_at: dt.datetime | None = None, **fields) -> bool:
    """running -> done | problems | failed, once (False when the job was not running; with
    `claimed_at`, as for job_beat, also when another claim holds it now)."""
    if status not in (DONE, PROBLEMS, FAILED):
        raise ValueError(f"a job finishes done, problems or failed, not {status!r}")
    running = model._default_manager.filter(pk=pk, status=RUNNING)
    if claimed_at is not None:
        running = running.filter(started_at=claimed_at)
    return bool(running.update(status=status, finished_at=timezone.now(), **fields))


def jobs_stalled(
    model: type[models.Model],
    *,
    stale_seconds: int,
    now: dt.datetime | None = None,
    limit: int = 100,
    beating: Q | None = None,
) -> list[str]:
    """Jobs whose task was lost: queued and not picked up, or running without a heartbeat
    (`beating`: as for job_claim)."""
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=stale_seconds)
    silent = Q(status=RUNNING, heartbeat_at__lt=cutoff)
    if beating is not None:
        silent &= beating
    stalled = model._default_manager.filter(Q(status=QUEUED, created_at__lt=cutoff) | silent)
    return [str(pk) for pk in stalled.order_by("created_at").values_list("pk", flat=True)[:limit]]


def jobs_resume(
    model: type[models.Model], *, task: str, stale_seconds: int, beating: Q | None = None, limit: int = 100
) -> list[str]:
    """Queue the task `task` again for every stalled job (jobs_stalled); the claim makes a double queue harmless.

    Sent at once, not on commit: the jobs are committed rows already, and beat calls
    this outside any transaction.
    """
    stalled = jobs_stalled(model, stale_seconds=stale_seconds, beating=beating, limit=limit)
    for pk in stalled:
        logger.warning("%s %s stalled: queued again", model._meta.verbose_name, pk)
        _job_send(task, (pk,), {})
    return stalled
