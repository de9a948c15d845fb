"""Celery tasks of replays: thin, they take ids and call a service. Their names stay
those they had under recon.tasks, so queued tasks and beat entries keep working."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from replay import approval, runs
from replay.selectors import replays_stalled

logger = logging.getLogger(__name__)


@shared_task(name="recon.tasks.replay_run", ignore_result=True)
def replay_run_task(replay_id: str) -> str:
    """A replay or reprocess request (replay.runs); its claim makes a redelivered task a no-op."""
    return runs.replay_run(replay_id=replay_id).status


@shared_task(name="recon.tasks.replays_resume", ignore_result=True)
def replays_resume_task() -> list[str]:
    """Beat: queue again the replays whose worker went away (or that no worker picked up)."""
    stalled = replays_stalled(now=timezone.now(), stale_seconds=settings.REPLAY_STALE_SECONDS)
    for replay_id in stalled:
        logger.warning("replay %s stalled: queued again", replay_id)
        replay_run_task.delay(replay_id)
    return stalled


@shared_task(name="recon.tasks.replay_approvals_expire", ignore_result=True)
def replay_approvals_expire_task() -> int:
    """Beat: replay requests nobody approved within REPLAY_APPROVAL_HOURS expire (each recorded)."""
    return approval.replay_approvals_expire()
