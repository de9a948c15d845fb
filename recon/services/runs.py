"""The loop that closes by itself: on-demand runs queued and executed, and what a
replay or a load touched judged again.

- `run_queue` records a run QUEUED (an operator's "Reconcile now", "Check cache
  now", a validation, or the verification of a replay or a load) and queues
  RUN_EXECUTE on commit (core.jobs.job_enqueue); the request answers at once
  (202 + status URL).
- `run_execute` claims it (core.jobs.job_claim, so a redelivered task does nothing)
  and runs it: the transport reconcile window by window with progress, the cache
  leg and validation through their own entry points (recon.services.cache_check,
  recon.services.validation), which fill this run (`run=`) instead of starting their own.
- `replay_verify` / `load_verify`: when a replay or a load is done, the windows of
  the messages it touched (the originals' windows too, not only open ones) are
  reconciled again and the cache leg checks the keys it touched (one cache run,
  recon.services.cache_check.replay_cache_check), so a fixed finding closes
  as "fixed by replay N, verified by run M". They wait (the task retries) until
  the feed has consumed what the replay or load published.
- Resuming (beat, recon.tasks.runs_resume through core.jobs.jobs_resume): a run
  queued whose task was lost (a broker restart), or a transport run whose worker
  went silent (it beats each window: BEATING), is queued again and the claim takes
  it over. Cache and validation runs do not beat: they are only taken over while
  queued.

The task names below are those recon.tasks registers; services queue them by name.
"""

import datetime as dt
import logging
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from config.errors import AppError
from core.jobs import job_beat, job_claim, job_enqueue
from recon.models import ConsumedMessage, Finding, Load, PublishedMessage, ReconRun, Replay, ReplayItem, Topic, Window
from recon.selectors.runs import run_report
from recon.services.cache_check import cache_check, replay_cache_check
from recon.services.run_lifecycle import run_finish
from recon.services.validation import validation_run
from recon.services.windows import window_reconcile

logger = logging.getLogger(__name__)

Kind = ReconRun.Kind

RUN_EXECUTE = "recon.tasks.run_execute"  # runs a queued run (run_execute)
LOAD_VERIFY = "recon.tasks.load_verify"  # judges a finished load, once consumed (load_verify)
REPLAY_VERIFY = "recon.tasks.replay_verify"  # re-judges what a finished replay touched (replay_verify)


def run_queue(
    *,
    kind: str,
    topic: Topic,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    load: Load | None = None,
    window_ids: Iterable[int] | None = None,
    trigger: str,
    requested_by=None,
    replay: Replay | None = None,
    params: dict | None = None,
) -> ReconRun:
    """Record a run QUEUED and queue its execution once the caller's transaction commits."""
    windows = sorted(set(window_ids or ()))
    if windows:
        bounds = list(Window.objects.filter(pk__in=windows, topic=topic).values_list("start", "end"))
        if len(bounds) != len(windows):
            raise AppError(f"not windows of {topic.name}", code="bad_target")
        start, end = min(b[0] for b in bounds), max(b[1] for b in bounds)
    elif load is not None:
        start, end = load.created_at, load.finished_at or timezone.now()
    elif kind == Kind.CACHE and start is None and end is None:
        # The whole topic against its system of record (recon.services.cache_check without a range).
        params = {**(params or {}), "whole": True}
        start, end = min(topic.created_at, timezone.now() - dt.timedelta(seconds=1)), timezone.now()
    if start is None or end is None:
        raise AppError("Give a load, a window, or both start and end.", code="invalid_range")
    if start >= end:
        raise AppError("start must be before end.", code="invalid_range", details={"start": start, "end": end})
    whole = bool(params and params.get("whole"))
    if not windows and not whole and end - start > dt.timedelta(days=settings.RECON_RANGE_MAX_DAYS):
        raise AppError(f"A range may span at most {settings.RECON_RANGE_MAX_DAYS} days.", code="range_too_long")
    run = ReconRun.objects.create(
        kind=kind,
        topic=topic,
        load=load,
        range_start=start,
        range_end=end,
        trigger=trigger,
        requested_by=requested_by if requested_by is not None and requested_by.is_authenticated else None,
        status=ReconRun.Status.QUEUED,
        params={**({"windows": windows} if windows else {}), **(params or {})},
        replay=replay,
    )
    job_enqueue(RUN_EXECUTE, str(run.pk))
    return run


# Only transport runs beat (every window): only they can be found silent and taken over.
BEATING = Q(kind=Kind.TRANSPORT)


def run_execute(*, run_id: uuid.UUID | str) -> ReconRun:
    """Run a queued (or stalled) run; one held by a live worker, or finished, is left alone."""
    claimed = job_claim(ReconRun, run_id, stale_seconds=settings.RECON_RUN_STALE_SECONDS, beating=BEATING, processed=0)
    run = ReconRun.objects.select_related("topic", "load", "requested_by", "replay__topic").get(pk=run_id)
    if not claimed:
        logger.info("run %s is %s: left alone", run_id, run.status)
        return run
    if run.kind == Kind.TRANSPORT:
        _transport(run)
    elif run.kind == Kind.CACHE and run.replay is not None and run.params.get("keys") == "replay":
        replay_cache_check(replay=run.replay, run=run)
    elif run.kind == Kind.CACHE and isinstance(run.params.get("keys"), list):
        # named keys (those an unsealed producer wrote: kafkacache.consumer), against the source
        source = run.params.get("keys_source")
        cache_check(topic=run.topic, keys=run.params["keys"], keys_source=source, run=run)
    else:
        ranged = run.load is None and not run.params.get("whole")
        start, end = (run.range_start, run.range_end) if ranged else (None, None)
        if run.kind == Kind.CACHE:
            cache_check(topic=run.topic, start=start, end=end, load=run.load, run=run, method=run.params.get("method"))
        else:
            validation_run(topic=run.topic, start=start, end=end, load=run.load, run=run)
    run.refresh_from_db()
    if run.replay_id:
        _replay_findings_verified(run)
    return run


def _transport(run: ReconRun) -> None:
    windows = run.params.get("windows")
    if not windows:
        windows = list(
            Window.objects.filter(topic=run.topic, start__lt=run.range_end, end__gt=run.range_start)
            .order_by("start")
            .values_list("pk", flat=True)
        )
    ReconRun.objects.filter(pk=run.pk).update(total=len(windows))
    now = timezone.now()
    with run_finish(run) as report:
        for n, window_id in enumerate(windows, 1):
            window_reconcile(window_id=window_id, now=now, run=run)
            job_beat(ReconRun, run.pk, processed=n)
        report.update(
            run_report(topic=run.topic, start=run.range_start, end=run.range_end, window_ids=windows, now=now)
        )
        if run.replay_id:
            report["replay"] = str(run.replay_id)
    run.processed, run.total = len(windows), len(windows)


def _replay_findings_verified(run: ReconRun) -> None:
    """Findings the replay fixed (dead letters resolved as it went, cache keys now right): verified by this run."""
    replay_id = str(run.replay_id)
    now = timezone.now()
    fixed = Finding.objects.filter(topic=run.topic, status=Finding.Status.RESOLVED, detail__replay=replay_id).exclude(
        detail__has_key="verified_by_run"
    )
    if run.kind == Kind.CACHE:
        keys = set(ReplayItem.objects.filter(replay=run.replay).exclude(key="").values_list("key", flat=True))
        repaired = Finding.objects.filter(
            topic=run.topic,
            category=Finding.Category.CACHE,
            status=Finding.Status.RESOLVED,
            key__in=list(keys),
            detail__resolved_by="cache-check",
            updated_at__gte=run.started_at,
        ).exclude(detail__has_key="verified_by_run")
        fixed = fixed | repaired
    changed = []
    for finding in fixed:
        finding.detail = {
            **finding.detail,
            "resolved_by": "replay",
            "replay": replay_id,
            "verified_by_run": str(run.pk),
        }
        finding.updated_at = now
        changed.append(finding)
    Finding.objects.bulk_update(changed, ["detail", "updated_at"])


# --- what a replay or a load touched ----------------------------------------------------------

_WINDOWS_OF_SQL = """
SELECT DISTINCT w.id FROM recon_window w
JOIN (
    SELECT topic_id, published_at FROM recon_publishedmessage WHERE uuid = ANY(%(uuids)s)
    UNION
    SELECT topic_id, published_at FROM recon_consumedmessage WHERE uuid = ANY(%(uuids)s)
) m ON m.topic_id = w.topic_id AND m.published_at >= w.start AND m.published_at < w."end"
WHERE w.topic_id = %(topic)s AND w.ledger_dropped_at IS NULL
ORDER BY w.id
"""


def windows_touched(*, topic: Topic, uuids: Iterable[uuid.UUID]) -> list[int]:
    """The topic's windows that hold any of these messages, on either ledger."""
    wanted = list({u for u in uuids if u is not None})
    if not wanted:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_WINDOWS_OF_SQL, {"uuids": wanted, "topic": topic.pk})
        return [row[0] for row in cursor.fetchall()]


def _unconsumed(uuids: list[uuid.UUID]) -> int:
    """How many of these published messages the feed has not consumed yet."""
    if not uuids:
        return 0
    seen = ConsumedMessage.objects.filter(uuid__in=uuids).values("uuid").distinct().count()
    return len(uuids) - seen


def replay_verify(*, replay_id: uuid.UUID | str, force: bool = False) -> list[ReconRun] | None:
    """Queue the runs that re-judge what a finished replay touched; None while the feed is still
    consuming what it published (ask again later, or with `force` to judge it as it stands)."""
    replay = Replay.objects.select_related("topic", "requested_by").get(pk=replay_id)
    if replay.status not in (Replay.Status.DONE, Replay.Status.PROBLEMS, Replay.Status.FAILED):
        return None
    if ReconRun.objects.filter(replay=replay).exists():
        return []  # verified already (a redelivered task)
    items = list(ReplayItem.objects.filter(replay=replay).values_list("original_uuid", "uuid", "outcome"))
    published = [new for _, new, outcome in items if outcome == ReplayItem.Outcome.PUBLISHED and new]
    if not force and _unconsumed(published):
        return None
    touched = {u for original, new, _ in items for u in (original, new) if u}
    if replay.scope == Replay.Scope.WINDOW:
        touched_windows = set(windows_touched(topic=replay.topic, uuids=touched)) | {replay.target["window"]}
    else:
        touched_windows = set(windows_touched(topic=replay.topic, uuids=touched))
    keys = ReplayItem.objects.filter(replay=replay).exclude(key="").exists()
    if not touched_windows and not keys:
        logger.info("replay %s touched no window and no key: nothing to verify", replay.pk)
        return []
    return _verification_runs(replay=replay, window_ids=sorted(touched_windows), keys=keys)


def load_verify(*, load_id: uuid.UUID | str, force: bool = False) -> list[ReconRun] | None:
    """Queue the runs that judge a finished load in both legs; None while the feed is still consuming it."""
    load = Load.objects.select_related("topic").get(pk=load_id)
    if load.finished_at is None:
        return None
    if ReconRun.objects.filter(load=load, trigger="load").exists():
        return []
    published = PublishedMessage.objects.filter(load=load).count()
    consumed = (
        ConsumedMessage.objects.filter(uuid__in=PublishedMessage.objects.filter(load=load).values("uuid"))
        .values("uuid")
        .distinct()
        .count()
    )
    if not force and consumed < published:
        return None
    topic = load.topic
    windows = list(
        Window.objects.filter(topic=topic, start__lt=load.finished_at, end__gt=load.created_at).values_list(
            "pk", flat=True
        )
    )
    runs = []
    with transaction.atomic():
        if windows:
            runs.append(run_queue(kind=Kind.TRANSPORT, topic=topic, window_ids=windows, load=load, trigger="load"))
        runs.append(run_queue(kind=Kind.CACHE, topic=topic, load=load, trigger="load"))
    return runs


def _verification_runs(*, replay: Replay, window_ids: list[int], keys: bool) -> list[ReconRun]:
    """A transport run over the windows the replay touched, and one cache run over its keys."""
    topic = replay.topic
    runs = []
    with transaction.atomic():
        if window_ids:
            runs.append(
                run_queue(kind=Kind.TRANSPORT, topic=topic, window_ids=window_ids, trigger="replay", replay=replay)
            )
        if keys:
            runs.append(
                run_queue(
                    kind=Kind.CACHE,
                    topic=topic,
                    start=min(replay.created_at, timezone.now() - dt.timedelta(seconds=1)),
                    end=timezone.now(),
                    trigger="replay",
                    replay=replay,
                    params={"keys": "replay"},
                )
            )
    return runs
