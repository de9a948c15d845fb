"""A replay's run: claim the request, run its way batch by batch, finish, and queue the
re-judging of what it touched.

`replay_run` claims the request with a conditional update (a redelivered task, or a
second run of a finished request, does nothing), runs its way (replay.ways) with
progress (replay.services.progress), and ends DONE, PROBLEMS (something skipped, failed or
dead again, each item with its reason) or FAILED; at its end the verification run
(recon.services.runs.replay_verify) re-judges the windows and the cache keys it touched.

REPLAY_RUN is the name replay.tasks registers the run under: the request
(replay.services.requests) and the approval (replay.services.approval) queue it by that name.
"""

import logging
import uuid

from django.conf import settings

from core.jobs import job_claim, job_enqueue, job_finish
from recon.models import Replay, ReplayItem
from recon.services.actions import operator_action_record
from recon.services.runs import REPLAY_VERIFY, replay_verify
from replay.services.progress import Progress
from replay.ways import WAYS

logger = logging.getLogger(__name__)

Way = Replay.Way

# Kept from when replays lived in recon: queued tasks and beat entries know this name.
REPLAY_RUN = "recon.tasks.replay_run"

# Items that did not get where they belong: a replay with any of them ends PROBLEMS, never DONE.
PROBLEM_OUTCOMES = (ReplayItem.Outcome.SKIPPED, ReplayItem.Outcome.FAILED, ReplayItem.Outcome.DEAD)


def replay_run(*, replay_id: uuid.UUID | str) -> Replay:
    """Run a queued (or stalled) replay; a finished or running one is left alone."""

    claimed = job_claim(
        Replay,
        replay_id,
        stale_seconds=settings.REPLAY_STALE_SECONDS,
        total=None,
        processed=0,
        outcome={},
        error="",
    )
    replay = Replay.objects.select_related("topic", "requested_by").get(pk=replay_id)
    if not claimed:
        logger.info("replay %s is %s: left alone", replay_id, replay.status)
        return replay
    ReplayItem.objects.filter(replay=replay).delete()  # a reclaimed replay starts over
    progress = Progress(replay)
    try:
        WAYS[replay.way](replay, progress)
    except Exception as exc:
        logger.exception("replay %s failed", replay.pk)
        return _finish(replay, Replay.Status.FAILED, f"{type(exc).__name__}: {exc}", progress)
    problems = sum(progress.counts.get(str(o), 0) for o in PROBLEM_OUTCOMES)
    return _finish(replay, Replay.Status.PROBLEMS if problems else Replay.Status.DONE, "", progress)


def _finish(replay: Replay, status: str, error: str, progress: Progress) -> Replay:
    job_finish(Replay, replay.pk, status=status, error=error[:4000], outcome=dict(progress.counts))
    replay.refresh_from_db()
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(progress.counts.items())) or "nothing to do"
    operator_action_record(
        user=None,  # the system reports; the person who asked is on the request's own entry
        action="reprocess.finish" if replay.way == Way.DEAD_LETTER else "replay.finish",
        topic=replay.topic,
        target=f"replay:{replay.pk}",
        detail={"way": replay.way, "scope": replay.scope, "outcome": dict(progress.counts), "error": error[:500]},
        outcome=(f"{status}: {counts}" if not error else f"{status}: {error}")[:255],
    )
    logger.info("replay %s %s: %s %s", replay.pk, status, counts, error)
    # Close the loop: re-judge the windows (originals' included) and, in the cache leg, the
    # keys it touched. Queued now when nothing it published is still unconsumed (the kafka and
    # dead-letter ways write Redis themselves); otherwise the task waits for the feed
    # (recon.services.runs.replay_verify).
    if replay_verify(replay_id=replay.pk) is None:
        job_enqueue(REPLAY_VERIFY, str(replay.pk))
    return replay
