"""Celery tasks of reconciliation: thin, they take ids and call a service."""

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model

from core.jobs import jobs_resume
from recon.models import Load, ReconRun, Topic
from recon.services import audit, partitions, runs, windows
from recon.services.cache_check import cache_check
from recon.services.validation import validation_run

logger = logging.getLogger(__name__)


@shared_task(name="recon.tasks.windows_reconcile_due", ignore_result=True)
def windows_reconcile_due() -> int:
    """Beat: reconcile the windows whose end + grace has passed."""
    return len(windows.due_windows_reconcile())


@shared_task(name="recon.tasks.window_reconcile", ignore_result=True)
def window_reconcile(window_id: int) -> None:
    windows.window_reconcile(window_id=window_id)


@shared_task(name="recon.tasks.partitions_maintain", ignore_result=True)
def partitions_maintain() -> dict:
    """Beat: daily ledger partitions ahead; expired ones dropped whole."""
    return partitions.partitions_maintain()


@shared_task(name="recon.tasks.audit_purge", ignore_result=True)
def audit_purge() -> int:
    """Beat: audit payloads past their topic's retention."""
    return audit.audit_purge()


def _args(topic_id: int, load_id: str | None, user_id: int | None) -> dict:
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return {
        "topic": Topic.objects.get(pk=topic_id),
        "load": Load.objects.get(pk=load_id) if load_id else None,
        "requested_by": user,
    }


@shared_task(name="recon.tasks.cache_check", ignore_result=True)
def cache_check_task(
    topic_id: int, start: str | None = None, end: str | None = None, load_id: str | None = None, user_id=None
) -> str:
    run = cache_check(
        start=dt.datetime.fromisoformat(start) if start else None,
        end=dt.datetime.fromisoformat(end) if end else None,
        trigger="task",
        **_args(topic_id, load_id, user_id),
    )
    return str(run.pk)


@shared_task(name="recon.tasks.cache_legs_due", ignore_result=True)
def cache_legs_due() -> list[int]:
    """Beat: the cache leg of every bulk and change topic, each its own task."""
    topic_ids = list(
        Topic.objects.filter(kind__in=(Topic.Kind.BULK, Topic.Kind.CHANGE)).order_by("pk").values_list("pk", flat=True)
    )
    for topic_id in topic_ids:
        cache_leg_task.delay(topic_id)
    return topic_ids


@shared_task(name="recon.tasks.cache_leg", ignore_result=True)
def cache_leg_task(topic_id: int) -> str:
    """The whole topic against its system of record (a replay's keys: recon.services.runs.replay_verify)."""
    return str(cache_check(topic=Topic.objects.get(pk=topic_id), trigger="schedule").pk)


@shared_task(name="recon.tasks.validation_run", ignore_result=True)
def validation_task(
    topic_id: int, start: str | None = None, end: str | None = None, load_id: str | None = None, user_id=None
) -> str:
    run = validation_run(
        start=dt.datetime.fromisoformat(start) if start else None,
        end=dt.datetime.fromisoformat(end) if end else None,
        trigger="task",
        **_args(topic_id, load_id, user_id),
    )
    return str(run.pk)


@shared_task(name=runs.RUN_EXECUTE, ignore_result=True)
def run_execute_task(run_id: str) -> str:
    """A queued run (recon.services.runs); its claim makes a redelivered task a no-op."""
    return runs.run_execute(run_id=run_id).status


@shared_task(name="recon.tasks.runs_resume", ignore_result=True)
def runs_resume_task() -> list[str]:
    """Beat: queued runs whose task was lost, and silent transport runs, queued again."""
    return jobs_resume(
        ReconRun, task=runs.RUN_EXECUTE, stale_seconds=settings.RECON_RUN_STALE_SECONDS, beating=runs.BEATING
    )


def _verify_later(task, subject_id: str, attempt: int) -> None:
    task.apply_async((subject_id, attempt + 1), countdown=settings.RECON_VERIFY_WAIT_SECONDS)


@shared_task(name=runs.REPLAY_VERIFY, ignore_result=True)
def replay_verify_task(replay_id: str, attempt: int = 0) -> int:
    """After a replay: re-judge what it touched, once the feed has consumed what it published."""
    done = runs.replay_verify(replay_id=replay_id, force=attempt >= settings.RECON_VERIFY_MAX_WAITS)
    if done is None and attempt <= settings.RECON_VERIFY_MAX_WAITS:  # beyond: not finished, give up
        _verify_later(replay_verify_task, replay_id, attempt)
    return len(done or ())


@shared_task(name=runs.LOAD_VERIFY, ignore_result=True)
def load_verify_task(load_id: str, attempt: int = 0) -> int:
    """After a load: judge its windows and its keys, once the feed has consumed it."""
    done = runs.load_verify(load_id=load_id, force=attempt >= settings.RECON_VERIFY_MAX_WAITS)
    if done is None and attempt <= settings.RECON_VERIFY_MAX_WAITS:
        _verify_later(load_verify_task, load_id, attempt)
    return len(done or ())
