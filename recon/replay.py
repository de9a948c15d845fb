"""Replays and reprocessing: an operator's request, its run, and what it fixed.

Why here (recon) and not in kafkacache: a replay is an action on a
reconciliation exception. The state it owns is recon's (the Replay request, its
per-message items, the findings it resolves); the Kafka and Redis work goes
through the feed's own functions (kafkacache.services.messages_publish /
items_publish, FeedConsumer.process_batch), so a replayed message is published,
consumed, ledgered and reconciled exactly like any other.

Flow: `replay_request` validates what/how/who/why, records the operator action
and queues `recon.tasks.replay_run_task` on commit; the task calls `replay_run`,
which claims the request with a conditional update (a redelivered task, or a
second run of a finished request, does nothing), runs its way
(recon.replay_ways) batch by batch with progress, and ends DONE or FAILED.

What it fixed: the next reconcile of the original's window counts a missing or
altered message as delivered when a replay of it was consumed, and resolves its
finding naming the replay (recon.services._findings_sync asks
recon.replay_selectors.replays_delivered). The Kafka and dead-letter ways know
their outcome at once; they resolve the message's dead-lettered findings here.
"""

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.errors import AppError
from kafkacache.models import Load
from kafkacache.records import client_id_of, record_key
from recon.lifecycle import finding_mark_resolved, transitions_save
from recon.models import Finding, Replay, ReplayItem, Topic, Window
from recon.replay_approval import approval_deadline, approval_needed, replay_guard_check, replay_size
from recon.services import operator_action_record

logger = logging.getLogger(__name__)

Way, Scope = Replay.Way, Replay.Scope

# Which scopes each way understands.
SCOPES: dict[str, tuple[str, ...]] = {
    Way.AUDIT: (Scope.MESSAGES, Scope.WINDOW, Scope.RANGE, Scope.LOAD),
    Way.KAFKA: (Scope.MESSAGES, Scope.WINDOW, Scope.RANGE, Scope.LOAD, Scope.OFFSETS),
    Way.SOURCE: (Scope.MESSAGES, Scope.WINDOW, Scope.RANGE, Scope.LOAD, Scope.CLIENTS),
    Way.DEAD_LETTER: (Scope.FINDINGS, Scope.RANGE),
}


# --- the request --------------------------------------------------------------------------


def replay_request(
    *, topic: Topic, way: str, scope: str, target: dict, reason: str, requested_by, queue: bool = True
) -> tuple[Replay, bool]:
    """Ask for a replay (or a reprocess of dead letters); answers (replay, created).

    The caller has checked operate permission (recon.access.topic_for_operate).
    While the same request (topic, way, scope, target) is pending, queued or running,
    asking again answers that one (created=False) instead of queueing a copy. A
    request the topic's four-eyes settings catch waits PENDING for a second operator
    (recon.replay_approval); every request stores its dry run (recon.replay_preview).
    """
    reason = (reason or "").strip()
    if not reason:
        raise AppError("Say why: a replay needs a reason.", code="reason_required")
    target = target_clean(topic=topic, way=way, scope=scope, target=target)
    fingerprint = hashlib.sha256(json.dumps([topic.pk, way, scope, target], sort_keys=True).encode()).hexdigest()
    action = "reprocess" if way == Way.DEAD_LETTER else "replay"
    from recon.replay_preview import replay_dry_run
    from recon.tasks import replay_run_task

    size = replay_size(topic=topic, way=way, scope=scope, target=target)
    if scope == Scope.MESSAGES:
        replay_guard_check(topic=topic, uuids=target["uuids"], user=requested_by, way=way)
    elif scope == Scope.FINDINGS:
        named = Finding.objects.filter(pk__in=target["findings"], uuid__isnull=False).values_list("uuid", flat=True)
        replay_guard_check(topic=topic, uuids=[u for u in named if u], user=requested_by, way=way)
    needs = approval_needed(topic=topic, size=size)
    # Before the transaction: the dry run reads Redis. The approver sees this same preview.
    preview = replay_dry_run(topic=topic, way=way, scope=scope, target=target)
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                replay = Replay.objects.create(
                    topic=topic,
                    way=way,
                    scope=scope,
                    target=target,
                    fingerprint=fingerprint,
                    reason=reason[:2000],
                    requested_by=requested_by if requested_by is not None and requested_by.is_authenticated else None,
                    status=Replay.Status.PENDING if needs else Replay.Status.QUEUED,
                    size=size,
                    needs_approval=needs,
                    expires_at=approval_deadline(now) if needs else None,
                    preview=preview,
                )
            created = True
        except IntegrityError:
            replay = Replay.objects.get(fingerprint=fingerprint, status__in=Replay.LIVE)
            created = False
        detail = {"way": way, "scope": scope, "target": _target_summary(target), "reason": reason[:500], "size": size}
        if created and needs:
            detail["expires_at"] = replay.expires_at.isoformat() if replay.expires_at else None
        operator_action_record(
            user=requested_by,
            action=action,
            topic=topic,
            target=f"replay:{replay.pk}",
            detail=detail,
            outcome=("awaiting approval" if needs else "queued") if created else f"already {replay.status}",
        )
        if created and queue and not needs:
            replay_id = str(replay.pk)
            transaction.on_commit(lambda: replay_run_task.delay(replay_id))
    return replay, created


def _target_summary(target: dict) -> dict:
    """The target for the audit trail, long lists cut short."""
    return {
        k: ([*v[:20], f"... {len(v)} in all"] if isinstance(v, list) and len(v) > 20 else v) for k, v in target.items()
    }


def target_clean(*, topic: Topic, way: str, scope: str, target: dict) -> dict:
    """The request's target checked and in one canonical form (so equal requests fingerprint alike)."""
    if way not in SCOPES:
        raise AppError(f"way must be one of {', '.join(SCOPES)}", code="bad_way")
    if scope not in SCOPES[way]:
        raise AppError(
            f"a {way} replay takes a scope of {', '.join(SCOPES[way])}", code="bad_scope", details={"scope": scope}
        )
    if way == Way.AUDIT and not topic.method_audit:
        raise AppError(f"{topic.name} keeps no audit payloads (audit method off)", code="no_audit_log")
    target = target or {}
    limit = settings.REPLAY_MAX_MESSAGES

    def many(name: str, convert) -> list:
        values = target.get(name)
        if not isinstance(values, list) or not values:
            raise AppError(f"{scope}: give a non-empty list '{name}'", code="bad_target")
        if len(values) > limit:
            raise AppError(f"{scope}: at most {limit} per request", code="bad_target")
        try:
            return sorted({convert(v) for v in values}, key=str)
        except (TypeError, ValueError, AttributeError):
            raise AppError(f"{scope}: '{name}' holds a malformed value", code="bad_target") from None

    def number(name: str, minimum: int = 0) -> int:
        value = target.get(name)
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise AppError(f"{scope}: '{name}' must be a whole number >= {minimum}", code="bad_target")
        if int(value) < minimum:
            raise AppError(f"{scope}: '{name}' must be >= {minimum}", code="bad_target")
        return int(value)

    clean: dict
    if scope == Scope.MESSAGES:
        clean = {"uuids": [str(u) for u in many("uuids", lambda v: uuid.UUID(str(v)))]}
    elif scope == Scope.WINDOW:
        window_id = number("window", 1)
        if not Window.objects.filter(pk=window_id, topic=topic).exists():
            raise AppError(f"no window {window_id} on {topic.name}", code="bad_target")
        clean = {"window": window_id}
    elif scope == Scope.RANGE:
        start, end = _when(target.get("start"), "start"), _when(target.get("end"), "end")
        if start >= end:
            raise AppError("start must be before end", code="bad_target")
        if end - start > dt.timedelta(days=settings.RECON_RANGE_MAX_DAYS):
            raise AppError(f"a range may span at most {settings.RECON_RANGE_MAX_DAYS} days", code="bad_target")
        clean = {"start": start.isoformat(), "end": end.isoformat()}
    elif scope == Scope.LOAD:
        try:
            load_id = uuid.UUID(str(target.get("load")))
        except ValueError:
            raise AppError("load: give the load's id", code="bad_target") from None
        if not Load.objects.filter(pk=load_id, topic=topic).exists():
            raise AppError(f"no load {load_id} on {topic.name}", code="bad_target")
        clean = {"load": str(load_id)}
    elif scope == Scope.OFFSETS:
        partition, start_offset, end_offset = number("partition"), number("start_offset"), number("end_offset")
        if end_offset < start_offset:
            raise AppError("end_offset must not be before start_offset", code="bad_target")
        if end_offset - start_offset + 1 > limit:
            raise AppError(f"at most {limit} offsets per request", code="bad_target")
        clean = {"partition": partition, "start_offset": start_offset, "end_offset": end_offset}
    elif scope == Scope.CLIENTS:
        clean = {"keys": many("keys", _client_key)}
    else:  # FINDINGS
        ids = many("findings", int)
        found = set(
            Finding.objects.filter(pk__in=ids, topic=topic, category=Finding.Category.DEAD_LETTERED).values_list(
                "pk", flat=True
            )
        )
        if found != set(ids):
            raise AppError(
                f"not dead-lettered findings of {topic.name}: {sorted(set(ids) - found)[:20]}", code="bad_target"
            )
        clean = {"findings": sorted(ids)}
    source = target.get("source")
    if way == Way.SOURCE and source and scope != Scope.LOAD:  # a load is rebuilt from its own source
        clean["source"] = str(source)[:128]
    return clean


def _when(value, name: str) -> dt.datetime:
    at = value if isinstance(value, dt.datetime) else None
    if at is None and isinstance(value, str):
        try:
            at = dt.datetime.fromisoformat(value)
        except ValueError:
            at = None
    if at is None:
        raise AppError(f"range: '{name}' must be an ISO 8601 date and time", code="bad_target")
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _client_key(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return record_key(value)
    key = str(value).strip()
    if key.isdigit():
        return record_key(int(key))
    if client_id_of(key) is None:
        raise ValueError(key)
    return key


# --- the run --------------------------------------------------------------------------------


class Progress:
    """Where a running replay writes its items, counts and heartbeat, a batch at a time."""

    def __init__(self, replay: Replay):
        self.replay = replay
        self.counts: Counter = Counter()

    def total(self, n: int) -> None:
        Replay.objects.filter(pk=self.replay.pk).update(total=n, heartbeat_at=timezone.now())

    def record(self, items: Sequence[ReplayItem]) -> None:
        if not items:
            return
        for item in items:
            item.replay = self.replay
            item.key = (item.key or "")[:512]
            item.detail = (item.detail or "")[:2000]
        self.counts.update(str(i.outcome) for i in items)
        with transaction.atomic():
            ReplayItem.objects.bulk_create(items, batch_size=1000)
            Replay.objects.filter(pk=self.replay.pk, status=Replay.Status.RUNNING).update(
                processed=F("processed") + len(items), outcome=dict(self.counts), heartbeat_at=timezone.now()
            )


def replay_run(*, replay_id: uuid.UUID | str) -> Replay:
    """Run a queued (or stalled) replay; a finished or running one is left alone."""
    from recon.replay_ways import WAYS

    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.REPLAY_STALE_SECONDS)
    claimed = Replay.objects.filter(
        Q(status=Replay.Status.QUEUED) | Q(status=Replay.Status.RUNNING, heartbeat_at__lt=stale), pk=replay_id
    ).update(
        status=Replay.Status.RUNNING, started_at=now, heartbeat_at=now, total=None, processed=0, outcome={}, error=""
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
    return _finish(replay, Replay.Status.DONE, "", progress)


def _finish(replay: Replay, status: str, error: str, progress: Progress) -> Replay:
    Replay.objects.filter(pk=replay.pk, status=Replay.Status.RUNNING).update(
        status=status, error=error[:4000], finished_at=timezone.now(), outcome=dict(progress.counts)
    )
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
    # keys it touched, once the feed has consumed what it published (recon.runs.replay_verify).
    from recon.tasks import replay_verify_task

    replay_id = str(replay.pk)
    transaction.on_commit(lambda: replay_verify_task.delay(replay_id))
    return replay


def dead_letter_findings_resolve(*, replay: Replay, finding_ids: Iterable[int], delivered_uuid=None) -> int:
    """Dead-lettered findings of a message the replay has now stored: resolved, naming the replay."""
    now = timezone.now()
    findings = list(
        Finding.objects.filter(
            pk__in=list(finding_ids),
            category=Finding.Category.DEAD_LETTERED,
            status__in=Finding.STANDING,
        )
    )
    transitions = [
        finding_mark_resolved(
            finding,
            by="replay",
            now=now,
            detail={"replay": str(replay.pk), "replay_uuid": str(delivered_uuid or finding.uuid or "")},
        )
        for finding in findings
    ]
    Finding.objects.bulk_update(findings, ["status", "detail", "updated_at", "status_changed_at"])
    transitions_save(transitions)
    return len(findings)


def topic_for_replay(user, topic: Topic | None, *, way: str = "") -> Topic:
    """Operate permission on the topic (outsider 404, viewer 403); a viewer's refusal goes in the audit trail."""
    from django.core.exceptions import PermissionDenied

    from recon import access

    topic = access.topic_for_view(user, topic)
    try:
        return access.topic_for_operate(user, topic)
    except PermissionDenied:
        operator_action_record(
            user=user,
            action="reprocess" if way == Way.DEAD_LETTER else "replay",
            topic=topic,
            detail={"way": way},
            outcome="refused",
        )
        raise
