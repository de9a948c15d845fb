"""A run started now by the caller that runs it, and finished with its report (a queued run is
claimed instead: recon.services.runs)."""

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from config.errors import AppError
from core.jobs import job_finish
from recon.models import ReconRun, Topic

logger = logging.getLogger(__name__)


def run_start(
    *,
    kind: str,
    topic: Topic,
    start: dt.datetime | None,
    end: dt.datetime | None,
    load=None,
    trigger: str,
    requested_by=None,
) -> ReconRun:
    """A run of a check over a range or a load (a load's range is its lifetime), started
    RUNNING by the caller that runs it now (a queued run is claimed instead: recon.services.runs)."""
    if load is None and (start is None or end is None):
        raise AppError("Give a load, or both start and end.", code="invalid_range")
    if load is not None:
        start, end = load.created_at, load.finished_at or timezone.now()
    assert start is not None and end is not None
    if start >= end:
        raise AppError("start must be before end.", code="invalid_range")
    return ReconRun.objects.create(
        kind=kind,
        topic=topic,
        load=load,
        range_start=start,
        range_end=end,
        trigger=trigger,
        requested_by=requested_by if requested_by is not None and requested_by.is_authenticated else None,
    )


def run_for_check(run: ReconRun | None, *, kind: str, topic: Topic, **started) -> ReconRun:
    """The run a check fills: the queued run a worker claimed (recon.services.runs.run_execute),
    refused when it is another kind's or topic's, or else one started now (run_start's
    `start`, `end`, `load`, `trigger` and `requested_by`)."""
    if run is None:
        return run_start(kind=kind, topic=topic, **started)
    if run.kind != kind or run.topic_id != topic.pk:
        raise ValueError(f"run {run.pk} is a {run.kind} run of topic {run.topic_id}, not a {kind} run of this topic")
    return run


@contextmanager
def run_finish(run: ReconRun) -> Iterator[dict]:
    """Yield the run's report to fill; store it DONE, or FAILED with the error."""
    report: dict = {
        "kind": run.kind,
        "topic": run.topic.name,
        "start": run.range_start.isoformat(),
        "end": run.range_end.isoformat(),
        "load": str(run.load_id) if run.load_id else None,
    }
    # No transaction around the run: each window commits on its own, so a long run
    # never holds window rows the ledger writers need.
    try:
        yield report
    except Exception as exc:
        logger.exception("%s run %s of %s failed", run.kind, run.pk, run.topic.name)
        try:
            job_finish(ReconRun, run.pk, status=ReconRun.Status.FAILED, report={**report, "error": str(exc)})
        except (DatabaseError, TransactionManagementError):  # inside a broken outer transaction
            logger.exception("run %s could not be marked failed", run.pk)
        raise
    if not job_finish(ReconRun, run.pk, status=ReconRun.Status.DONE, report=report):
        logger.warning("run %s was no longer running: its report is not stored", run.pk)
    run.refresh_from_db(fields=["status", "report", "finished_at"])
