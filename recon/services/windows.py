"""Windows and their reconcile (the transport leg): one window, a range, the windows due."""

import datetime as dt
import logging
import time
from collections import defaultdict

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.errors import AppError
from recon.engine import Comparison, Draft, window_compare, window_republished
from recon.models import Finding, ReconRun, Topic, Window
from recon.rules import Verdict
from recon.selectors.runs import run_report
from recon.selectors.windows import windows_due
from recon.services.findings import window_findings_sync
from recon.services.run_lifecycle import run_finish, run_start

logger = logging.getLogger(__name__)


_WINDOW_LOCK = 0x5EC0  # advisory lock class: one reconcile per window at a time


def window_reconcile(
    *, window_id: int, now: dt.datetime | None = None, run: ReconRun | None = None, wait: bool = True
) -> Window | None:
    """Reconcile one window: MATCHED, DISCREPANT, or still OPEN when it has not closed.

    Equal counts and digests and no delivery over the latency limit prove the
    window clean without looking at a single UUID; otherwise the set-based compare
    (recon.engine) names each discrepant UUID. Findings are synced, not appended:
    a re-run updates what it finds again and resolves what it no longer finds.
    Answers None when `wait` is False and another worker holds the window.
    """
    now = now or timezone.now()
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        if not _window_lock(cursor, window_id, wait=wait):
            return None
        window = Window.objects.select_related("topic").get(pk=window_id)
        if window.ledger_dropped_at is not None:
            return window  # its ledger is gone; counts, digests and findings are all that remain
        topic = window.topic
        closed = now >= window.end + dt.timedelta(seconds=topic.grace_seconds)
        comparison, fast = _comparison(window, topic, now=now)
        # Clean counts and digests cannot show a version published twice: always looked for.
        republished, cut = window_republished(window=window, topic=topic, cap=settings.RECON_WINDOW_MAX_FINDINGS)
        comparison = comparison._replace(drafts=comparison.drafts + republished, truncated=comparison.truncated or cut)
        verdicts = window_findings_sync(window=window, topic=topic, comparison=comparison, run=run, now=now)
        status = _status(closed=closed, verdicts=verdicts)
        # What the gap leaves out: consume rows that delivered no message of this window's producer.
        consumed_other = window.consumed_count - comparison.delivered
        summary = _summary(window, comparison, verdicts, now=now, closed=closed, fast=fast, started=started)
        # Only if no batch landed meanwhile: a late row reopened the window and the
        # next scheduler tick must see it again.
        changed = Window.objects.filter(
            pk=window.pk,
            published_count=window.published_count,
            consumed_count=window.consumed_count,
            published_digest=window.published_digest,
            consumed_digest=window.consumed_digest,
        ).update(
            status=status,
            summary=summary,
            reconciled_at=now,
            redelivered=comparison.redelivered,
            consumed_other=consumed_other,
        )
        if changed:
            window.status, window.summary, window.reconciled_at = status, summary, now
            window.redelivered, window.consumed_other = comparison.redelivered, consumed_other
        else:
            logger.info("window %s changed while being reconciled; left open for the next pass", window.pk)
    log = logger.warning if status == Window.Status.DISCREPANT else logger.info
    log("window %s of %s %s: %s", window.pk, topic.name, status, summary["findings"] or "clean")
    return window


def _comparison(window: Window, topic: Topic, *, now: dt.datetime) -> tuple[Comparison, bool]:
    """The window's comparison, and whether its counts, digests and latency proved it clean
    without reading its rows (the fast path: every published message taken as delivered)."""
    fast = (
        window.published_count == window.consumed_count
        and window.published_digest == window.consumed_digest
        and window.consumed_max_latency_ms <= topic.latency_limit_seconds * 1000
    )
    if fast:
        return Comparison([], 0, False, delivered=window.published_count), True
    return window_compare(window=window, topic=topic, now=now, cap=settings.RECON_WINDOW_MAX_FINDINGS), False


def _status(*, closed: bool, verdicts: list[tuple[Draft, Verdict]]) -> str:
    """Open until its grace has passed; then discrepant if any finding is not a match."""
    if not closed:
        return Window.Status.OPEN
    if any(v.classification != Finding.Classification.MATCH for _, v in verdicts):
        return Window.Status.DISCREPANT
    return Window.Status.MATCHED


def _window_lock(cursor, window_id: int, *, wait: bool) -> bool:
    """The window's lock for this transaction: waited for, or False when `wait` is False and another worker holds it."""
    if wait:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_WINDOW_LOCK, window_id])
        return True
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_WINDOW_LOCK, window_id])
    return bool(cursor.fetchone()[0])


def _summary(
    window: Window,
    comparison: Comparison,
    verdicts: list[tuple[Draft, Verdict]],
    *,
    now: dt.datetime,
    closed: bool,
    fast: bool,
    started: float,
) -> dict:
    """The window's summary: its counts, what the compare found by category and
    classification, and how it was judged (fast path, methods, time taken)."""
    by_category: dict[str, int] = defaultdict(int)
    by_classification: dict[str, int] = defaultdict(int)
    for draft, verdict in verdicts:
        by_category[str(draft.category)] += 1
        by_classification[str(verdict.classification)] += 1
    return {
        "as_of": now.isoformat(),
        "closed": closed,
        "fast_path": fast,
        "published": window.published_count,
        "consumed": window.consumed_count,
        "delivered": comparison.delivered,
        "pending": comparison.pending,
        "redelivered": comparison.redelivered,
        "findings": dict(by_category),
        "classification": dict(by_classification),
        "truncated": comparison.truncated,
        "methods": _methods(window.topic),
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }


def _methods(topic: Topic) -> dict[str, bool]:
    return {
        "counts": topic.method_counts,
        "uuid": topic.method_uuid,
        "hash": topic.method_hash,
        "audit": topic.method_audit,
    }


def range_reconcile(
    *,
    topic: Topic,
    start: dt.datetime,
    end: dt.datetime,
    trigger: str,
    requested_by=None,
    now: dt.datetime | None = None,
) -> ReconRun:
    """Reconcile every window of the topic that overlaps [start, end) and store the run's report."""
    if start >= end:
        raise AppError("start must be before end.", code="invalid_range", details={"start": start, "end": end})
    max_days = settings.RECON_RANGE_MAX_DAYS
    if end - start > dt.timedelta(days=max_days):
        raise AppError(f"A range may span at most {max_days} days.", code="range_too_long")
    windows = list(
        Window.objects.filter(topic=topic, start__lt=end, end__gt=start).order_by("start").values_list("pk", flat=True)
    )
    return _run(
        topic=topic, start=start, end=end, trigger=trigger, requested_by=requested_by, window_ids=windows, now=now
    )


def due_windows_reconcile(*, now: dt.datetime | None = None, limit: int = 500) -> list[ReconRun]:
    """The scheduler: reconcile windows whose end + grace has passed, one run per topic."""
    now = now or timezone.now()
    due = list(windows_due(now=now, limit=limit))
    runs = []
    for topic_id in sorted({w.topic_id for w in due}):
        mine = [w for w in due if w.topic_id == topic_id]
        runs.append(
            _run(
                topic=mine[0].topic,
                start=min(w.start for w in mine),
                end=max(w.end for w in mine),
                trigger="schedule",
                requested_by=None,
                window_ids=[w.pk for w in mine],
                now=now,
                wait=False,
            )
        )
    return runs


def _run(
    *,
    topic: Topic,
    start: dt.datetime,
    end: dt.datetime,
    trigger: str,
    requested_by,
    window_ids: list[int],
    now: dt.datetime | None,
    wait: bool = True,
) -> ReconRun:
    now = now or timezone.now()
    run = run_start(
        kind=ReconRun.Kind.TRANSPORT, topic=topic, start=start, end=end, trigger=trigger, requested_by=requested_by
    )
    with run_finish(run) as report:
        for window_id in window_ids:
            window_reconcile(window_id=window_id, now=now, run=run, wait=wait)
        report.update(run_report(topic=topic, start=start, end=end, window_ids=window_ids, now=now))
    return run
