"""Celery tasks of replays: thin, they take ids and call a service. Their names stay
those they had under recon.tasks, so queued tasks and beat entries keep working."""

from celery import shared_task
from django.conf import settings

from core.jobs import jobs_resume
from recon.models import Replay
from replay.services import approval, runs


@shared_task(name=runs.REPLAY_RUN, ignore_result=True)
def replay_run_task(replay_id: str) -> str:
    """A replay or reprocess request (replay.services.runs); its claim makes a redelivered task a no-op."""
    return runs.replay_run(replay_id=replay_id).status


@shared_task(name="recon.tasks.replays_resume", ignore_result=True)
def replays_resume_task() -> list[str]:
    """Beat: queue again the replays whose worker went away (or that no worker picked up)."""
    return jobs_resume(Replay, task=runs.REPLAY_RUN, stale_seconds=settings.REPLAY_STALE_SECONDS)


@shared_task(name="recon.tasks.replay_approvals_expire", ignore_result=True)
def replay_approvals_expire_task() -> int:
    """Beat: replay requests nobody approved within REPLAY_APPROVAL_HOURS expire (each recorded)."""
    return approval.replay_approvals_expire()
