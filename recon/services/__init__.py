"""Writes of the reconciliation app. Each state change has one function here."""

import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from config.errors import AppError
from core.jobs import job_finish
from recon import audit
from recon.engine import ENGINE_CATEGORIES, Comparison, Draft, draft_identity, window_compare, window_republished
from recon.models import Finding, OperatorAction, RebalanceEvent, ReconRun, Topic, Window
from recon.rules import Verdict, classify, rules_for
from recon.selectors import replays_delivered, run_report, windows_due
from recon.services.lifecycle import finding_mark_reopened, finding_mark_resolved, transitions_save

logger = logging.getLogger(__name__)


def feed_topics_ensure() -> dict[str, Topic]:
    """The Topic rows of the feed's bulk and change topics (KAFKA_TOPIC_BULK, KAFKA_TOPIC_CHANGE),
    created when missing, by kind ("bulk", "change")."""
    out = {}
    for kind, name in ((Topic.Kind.BULK, settings.KAFKA_TOPIC_BULK), (Topic.Kind.CHANGE, settings.KAFKA_TOPIC_CHANGE)):
        topic, created = Topic.objects.get_or_create(
            name=name, defaults={"kind": kind, "consumer_group": settings.KAFKA_CONSUMER_GROUP}
        )
        if created:
            logger.info("topic row %s created (%s, group %s)", name, kind, settings.KAFKA_CONSUMER_GROUP)
        out[str(kind)] = topic
    return out


def finding_record(
    *,
    topic: Topic,
    category: str,
    uuid: uuid.UUID | None = None,
    key: str = "",
    detail: dict | None = None,
    load_id: uuid.UUID | None = None,
) -> Finding:
    """Record one finding, classified by the topic's rules (recon.rules).

    A message dead-lettered again (a reprocess that failed) is the same problem: its
    standing dead-lettered finding (same topic and place) counts the attempt and keeps
    the last error instead of a new finding being added.
    """
    if category == Finding.Category.DEAD_LETTERED and detail and "offset" in detail:
        again = _dead_letter_again(topic=topic, message_uuid=uuid, detail=detail)
        if again is not None:
            return again
    verdict = classify(rules_for(topic), category=category, detail=detail or {})
    finding = Finding.objects.create(
        topic=topic,
        category=category,
        classification=verdict.classification,
        severity=verdict.severity,
        rule_id=verdict.rule_id,
        uuid=uuid,
        key=key[:512],
        detail=detail or {},
        load_id=load_id,
    )
    # %r: the key and the detail come from Kafka (a key starting with a newline must not forge a line)
    logger.warning("finding %s on %s: uuid=%s key=%r %r", category, topic.name, uuid, key, detail or "")
    return finding


def _dead_letter_again(*, topic: Topic, message_uuid: uuid.UUID | None, detail: dict) -> Finding | None:
    standing = (
        Finding.objects.select_for_update()
        .filter(
            topic=topic,
            category=Finding.Category.DEAD_LETTERED,
            detail__partition=detail.get("partition"),
            detail__offset=detail.get("offset"),
            status__in=(Finding.Status.OPEN, Finding.Status.ACKNOWLEDGED),
        )
        .order_by("created_at")
        .first()
    )
    if standing is None:
        return None
    attempts = int(standing.detail.get("attempts", 1)) + 1
    standing.detail = {**standing.detail, "attempts": attempts, "last_error": detail.get("reason", "")}
    standing.uuid = standing.uuid or message_uuid
    standing.save(update_fields=["detail", "uuid", "updated_at"])
    logger.warning("dead-lettered again (attempt %s) on %s: %s", attempts, topic.name, detail.get("reason", ""))
    return standing


@transaction.atomic
def rebalance_record(
    *, group: str, member: str, kind: str, partitions: list[dict], error: str = "", topic: Topic | None = None
) -> RebalanceEvent:
    """Record a rebalance callback; an error during one is also a finding on its topic."""
    event = RebalanceEvent.objects.create(group=group, member=member, kind=kind, partitions=partitions, error=error)
    if error and topic is not None:
        finding_record(
            topic=topic,
            category=Finding.Category.REBALANCE_ERROR,
            detail={"group": group, "member": member, "kind": kind, "error": error, "partitions": partitions},
        )
    return event


def operator_action_record(
    *,
    user,
    action: str,
    topic: Topic | None = None,
    target: str = "",
    detail: dict | None = None,
    outcome: str = "accepted",
) -> OperatorAction:
    """Every operator action goes through here: who, when, what, outcome."""
    return OperatorAction.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        action=action,
        topic=topic,
        target=target,
        detail=detail or {},
        outcome=outcome,
    )


# --- reconciliation -----------------------------------------------------------------

_WINDOW_LOCK = 0x5EC0  # advisory lock class: one reconcile per window at a time
# What a replay can fix: the subscriber lacks the published bytes.
REPLAY_FIXES = (Finding.Category.MISSING, Finding.Category.ALTERED)


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
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_WINDOW_LOCK, window_id])
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_WINDOW_LOCK, window_id])
            if not cursor.fetchone()[0]:
                return None
        window = Window.objects.select_related("topic").get(pk=window_id)
        if window.ledger_dropped_at is not None:
            return window  # its ledger is gone; counts, digests and findings are all that remain
        topic = window.topic
        closed = now >= window.end + dt.timedelta(seconds=topic.grace_seconds)
        fast = (
            window.published_count == window.consumed_count
            and window.published_digest == window.consumed_digest
            and window.consumed_max_latency_ms <= topic.latency_limit_seconds * 1000
        )
        if fast:
            comparison = Comparison([], 0, False)
        else:
            comparison = window_compare(window=window, topic=topic, now=now, cap=settings.RECON_WINDOW_MAX_FINDINGS)
        # Clean counts and digests cannot show a version published twice: always looked for.
        republished, cut = window_republished(window=window, topic=topic, cap=settings.RECON_WINDOW_MAX_FINDINGS)
        comparison = comparison._replace(drafts=comparison.drafts + republished, truncated=comparison.truncated or cut)
        verdicts = _findings_sync(window=window, topic=topic, comparison=comparison, run=run, now=now)
        by_category: dict[str, int] = defaultdict(int)
        by_classification: dict[str, int] = defaultdict(int)
        for draft, verdict in verdicts:
            by_category[str(draft.category)] += 1
            by_classification[str(verdict.classification)] += 1
        if not closed:
            status = Window.Status.OPEN
        elif any(v.classification != Finding.Classification.MATCH for _, v in verdicts):
            status = Window.Status.DISCREPANT
        else:
            status = Window.Status.MATCHED
        summary = {
            "as_of": now.isoformat(),
            "closed": closed,
            "fast_path": fast,
            "published": window.published_count,
            "consumed": window.consumed_count,
            "pending": comparison.pending,
            "redelivered": comparison.redelivered,
            "findings": dict(by_category),
            "classification": dict(by_classification),
            "truncated": comparison.truncated,
            "methods": _methods(topic),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        # Only if no batch landed meanwhile: a late row reopened the window and the
        # next scheduler tick must see it again.
        changed = Window.objects.filter(
            pk=window.pk,
            published_count=window.published_count,
            consumed_count=window.consumed_count,
            published_digest=window.published_digest,
            consumed_digest=window.consumed_digest,
        ).update(status=status, summary=summary, reconciled_at=now, redelivered=comparison.redelivered)
        if changed:
            window.status, window.summary, window.reconciled_at = status, summary, now
            window.redelivered = comparison.redelivered
        else:
            logger.info("window %s changed while being reconciled; left open for the next pass", window.pk)
    log = logger.warning if status == Window.Status.DISCREPANT else logger.info
    log("window %s of %s %s: %s", window.pk, topic.name, status, summary["findings"] or "clean")
    return window


def _methods(topic: Topic) -> dict[str, bool]:
    return {
        "counts": topic.method_counts,
        "uuid": topic.method_uuid,
        "hash": topic.method_hash,
        "audit": topic.method_audit,
    }


def _findings_sync(
    *, window: Window, topic: Topic, comparison: Comparison, run: ReconRun | None, now: dt.datetime
) -> list[tuple[Draft, Verdict]]:
    """Make the window's engine findings be exactly the compare's drafts (see window_reconcile)."""
    rules = rules_for(topic)
    drafts = comparison.drafts
    if topic.method_audit:
        drafts = audit.altered_with_field_diff(topic=topic, drafts=drafts)
    existing = {
        draft_identity(f.category, f.uuid, f.detail): f
        for f in Finding.objects.filter(window=window, category__in=ENGINE_CATEGORIES)
    }
    # A missing or altered message that a replay delivered counts as delivered: its draft
    # goes, and its finding is resolved below naming the replay (replay.requests).
    delivered = replays_delivered(
        {d.uuid for d in drafts if d.category in REPLAY_FIXES}
        | {f.uuid for f in existing.values() if f.category in REPLAY_FIXES and f.status != Finding.Status.RESOLVED}
    )
    drafts = [d for d in drafts if not (d.category in REPLAY_FIXES and d.uuid in delivered)]
    verdicts, new, changed = [], [], []
    transitions: list = []
    for draft in drafts:
        verdict = classify(rules, category=draft.category, detail=draft.detail)
        verdicts.append((draft, verdict))
        finding = existing.pop(draft.identity, None)
        if finding is None:
            new.append(
                Finding(
                    topic=topic,
                    window=window,
                    run=run,
                    load_id=draft.load_id,
                    uuid=draft.uuid,
                    key=draft.key[:512],
                    category=draft.category,
                    classification=verdict.classification,
                    severity=verdict.severity,
                    rule_id=verdict.rule_id,
                    detail=draft.detail,
                )
            )
            continue
        # Found again after a person said it was fixed, or after a reconcile resolved it: it recurs.
        recurs = finding.status == Finding.Status.FIXED or (
            finding.status == Finding.Status.RESOLVED and finding.detail.get("resolved_by") == "reconcile"
        )
        status = Finding.Status.REOPENED if recurs else finding.status
        resolution = {
            k: finding.detail[k]
            for k in ("resolved_by", "resolved_at", "replay", "replay_uuid", "verified_by_run")
            if k in finding.detail
        }
        detail = {**draft.detail, **(resolution if status == Finding.Status.RESOLVED else {})}
        same = (finding.status, finding.detail, finding.classification, finding.severity, finding.rule_id) == (
            status,
            detail,
            *verdict,
        )
        if same:
            continue  # found again as it was: leave the row (and the run that found it) alone
        if recurs:  # the only status change here, through the lifecycle's own transition
            transitions.append(finding_mark_reopened(finding, by="reconcile", now=now))
        finding.detail = detail
        finding.classification, finding.severity, finding.rule_id = verdict
        finding.run = run or finding.run
        finding.updated_at = now
        changed.append(finding)
    if not comparison.truncated:  # beyond the cap we do not know, so resolve nothing
        for finding in existing.values():
            if finding.status != Finding.Status.RESOLVED:
                by = delivered.get(finding.uuid) if finding.category in REPLAY_FIXES else None
                resolution = {"replay": str(by.replay_id), "replay_uuid": str(by.uuid)} if by else {}
                if run is not None:  # "fixed by replay N, verified by run M"
                    resolution["verified_by_run"] = str(run.pk)
                transitions.append(
                    finding_mark_resolved(
                        finding, by="replay" if by else "reconcile", now=now, detail=resolution or None
                    )
                )
                changed.append(finding)
    Finding.objects.bulk_create(new, batch_size=2000)
    Finding.objects.bulk_update(
        changed,
        ["status", "detail", "classification", "severity", "rule", "run", "updated_at", "status_changed_at"],
        batch_size=2000,
    )
    transitions_save(transitions)
    return verdicts


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


@transaction.atomic
def key_findings_sync(
    *,
    topic: Topic,
    category: str,
    source: str,
    checked: Sequence[str] | None,
    problems: dict[str, tuple[uuid.UUID | None, dict]],
    run: ReconRun | None = None,
    load_id: uuid.UUID | None = None,
    keep: Collection[str] = (),
    resolutions: dict[str, dict] | None = None,
) -> dict[str, int]:
    """Per-record findings of a check (cache leg, validation): one standing finding per key.

    A key with a problem gets its open finding updated or a new one; a checked key
    without a problem has its open finding of this source resolved, with
    `resolutions[key]` (who or what fixed it) or resolved_by the source. Keys not
    checked are left alone: `checked` None means every key (a full check) but
    those in `keep` (not judged this time).
    """
    rules = rules_for(topic)
    now = timezone.now()
    open_findings = Finding.objects.filter(
        topic=topic,
        category=category,
        status__in=Finding.STANDING,
        detail__source=source,
    )
    if checked is not None:
        open_findings = open_findings.filter(key__in=list(checked))
    kept = set(keep)
    standing = {f.key: f for f in open_findings if f.key not in kept}
    new, changed, transitions = [], [], []
    for key, (message_uuid, detail) in problems.items():
        detail = {**detail, "source": source}
        verdict = classify(rules, category=category, detail=detail)
        finding = standing.pop(key, None)
        if finding is None:
            new.append(
                Finding(
                    topic=topic,
                    run=run,
                    load_id=load_id,
                    uuid=message_uuid,
                    key=key[:512],
                    category=category,
                    classification=verdict.classification,
                    severity=verdict.severity,
                    rule_id=verdict.rule_id,
                    detail=detail,
                )
            )
        else:
            if finding.status == Finding.Status.FIXED:  # said fixed, found again
                transitions.append(finding_mark_reopened(finding, by=source, now=now))
            finding.uuid, finding.detail, finding.run = message_uuid, detail, run or finding.run
            finding.classification, finding.severity, finding.rule_id = verdict
            finding.updated_at = now
            changed.append(finding)
    for finding in standing.values():
        resolution = dict((resolutions or {}).get(finding.key) or {})
        by = str(resolution.pop("resolved_by", source))
        transitions.append(finding_mark_resolved(finding, by=by, now=now, detail=resolution))
        changed.append(finding)
    Finding.objects.bulk_create(new, batch_size=2000)
    Finding.objects.bulk_update(
        changed,
        ["uuid", "status", "detail", "classification", "severity", "rule", "run", "updated_at", "status_changed_at"],
        batch_size=2000,
    )
    transitions_save(transitions)
    resolved = sum(1 for f in changed if f.status == Finding.Status.RESOLVED)
    return {"new": len(new), "updated": len(changed) - resolved, "resolved": resolved}


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
    RUNNING by the caller that runs it now (a queued run is claimed instead: recon.runs)."""
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
