"""Replays and reprocessing: an operator's request, its run, and what it fixed.

Why here, above the feed (kafkacache), and not in it: a replay is an action on a
reconciliation exception. The state it owns is recon's (the Replay request, its
per-message items, the findings it resolves); the Kafka and Redis work goes
through the feed's own functions (kafkacache.services.publishing.messages_publish /
items_publish, FeedConsumer.process_batch), so a replayed message is published,
consumed, ledgered and reconciled exactly like any other.

Flow: `replay_request` validates what/how/who/why, records the operator action
and queues replay.services.runs.REPLAY_RUN on commit (core.jobs.job_enqueue); the task
(replay.tasks.replay_run_task) calls `replay.services.runs.replay_run`,
which claims the request with a conditional update (a redelivered task, or a
second run of a finished request, does nothing), runs its way
(replay.ways) batch by batch with progress, and ends DONE or FAILED.

What it fixed: the next reconcile of the original's window counts a missing or
altered message as delivered when a replay of it was consumed, and resolves its
finding naming the replay (recon.services.findings.window_findings_sync asks
recon.selectors.replays.replays_delivered). The Kafka and dead-letter ways know
their outcome at once; they resolve the message's dead-lettered findings here.
"""

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import AppError
from core.jobs import job_enqueue
from core.records import client_id_of, record_key
from recon import access
from recon.models import Finding, Load, Replay, Topic, Window
from recon.services.actions import operator_action_record
from replay.guard import replay_guard_check
from replay.preview import replay_dry_run
from replay.services.approval import approval_deadline, approval_needed, replay_size
from replay.services.runs import REPLAY_RUN

logger = logging.getLogger(__name__)

Way, Scope = Replay.Way, Replay.Scope

# Which scopes each way understands.
SCOPES: dict[str, tuple[str, ...]] = {
    Way.AUDIT: (Scope.MESSAGES, Scope.WINDOW, Scope.RANGE, Scope.LOAD),
    Way.KAFKA: (Scope.MESSAGES, Scope.WINDOW, Scope.RANGE, Scope.LOAD, Scope.OFFSETS),
    Way.SOURCE: (Scope.MESSAGES, Scope.WINDOW, Scope.RANGE, Scope.LOAD, Scope.CLIENTS),
    Way.DEAD_LETTER: (Scope.FINDINGS, Scope.RANGE),
    Way.RESTORE: (Scope.CLIENTS,),
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
    (replay.services.approval); every request stores its dry run (replay.preview).
    """
    reason = (reason or "").strip()
    if not reason:
        raise AppError("Say why: a replay needs a reason.", code="reason_required")
    target = target_clean(topic=topic, way=way, scope=scope, target=target)
    fingerprint = hashlib.sha256(json.dumps([topic.pk, way, scope, target], sort_keys=True).encode()).hexdigest()
    size = replay_size(topic=topic, way=way, scope=scope, target=target)
    _guard_check(topic=topic, way=way, scope=scope, target=target, user=requested_by)
    # Before the transaction: the dry run reads Redis. The approver sees this same preview.
    preview = replay_dry_run(topic=topic, way=way, scope=scope, target=target)
    now = timezone.now()
    with transaction.atomic():
        # The topic's row lock: requests of one topic are counted for four eyes one at a time.
        Topic.objects.select_for_update().filter(pk=topic.pk).first()
        # A restore writes over any version or delete: always a second operator's decision.
        needs = way == Way.RESTORE or approval_needed(topic=topic, size=size, requested_by=requested_by, now=now)
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
            action="reprocess" if way == Way.DEAD_LETTER else "replay",
            topic=topic,
            target=f"replay:{replay.pk}",
            detail=detail,
            outcome=("awaiting approval" if needs else "queued") if created else f"already {replay.status}",
        )
        if created and queue and not needs:
            job_enqueue(REPLAY_RUN, str(replay.pk))
    return replay, created


def _guard_check(*, topic: Topic, way: str, scope: str, target: dict, user) -> None:
    """The replay guard (replay.guard) on the messages a request names, by uuid or by finding."""
    if scope == Scope.MESSAGES:
        replay_guard_check(topic=topic, uuids=target["uuids"], user=user, way=way)
    elif scope == Scope.FINDINGS:
        named = Finding.objects.filter(pk__in=target["findings"], uuid__isnull=False).values_list("uuid", flat=True)
        replay_guard_check(topic=topic, uuids=[u for u in named if u], user=user, way=way)


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
    clean = _TARGET_CLEANERS[scope](topic, scope, target)
    source = target.get("source")
    if way == Way.SOURCE and source and scope != Scope.LOAD:  # a load is rebuilt from its own source
        clean["source"] = str(source)[:128]
    return clean


# --- one cleaner per scope: (topic, scope, target) -> the target's canonical form ----------


def _many(target: dict, scope: str, name: str, convert) -> list:
    """target[name]: a non-empty list of at most REPLAY_MAX_MESSAGES values, converted, sorted, once each."""
    limit = settings.REPLAY_MAX_MESSAGES
    values = target.get(name)
    if not isinstance(values, list) or not values:
        raise AppError(f"{scope}: give a non-empty list '{name}'", code="bad_target")
    if len(values) > limit:
        raise AppError(f"{scope}: at most {limit} per request", code="bad_target")
    try:
        return sorted({convert(v) for v in values}, key=str)
    except (TypeError, ValueError, AttributeError):
        raise AppError(f"{scope}: '{name}' holds a malformed value", code="bad_target") from None


def _number(target: dict, scope: str, name: str, minimum: int = 0) -> int:
    value = target.get(name)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise AppError(f"{scope}: '{name}' must be a whole number >= {minimum}", code="bad_target")
    if int(value) < minimum:
        raise AppError(f"{scope}: '{name}' must be >= {minimum}", code="bad_target")
    return int(value)


def _messages_clean(topic: Topic, scope: str, target: dict) -> dict:
    return {"uuids": [str(u) for u in _many(target, scope, "uuids", lambda v: uuid.UUID(str(v)))]}


def _window_clean(topic: Topic, scope: str, target: dict) -> dict:
    window_id = _number(target, scope, "window", 1)
    if not Window.objects.filter(pk=window_id, topic=topic).exists():
        raise AppError(f"no window {window_id} on {topic.name}", code="bad_target")
    return {"window": window_id}


def _range_clean(topic: Topic, scope: str, target: dict) -> dict:
    start, end = _when(target.get("start"), "start"), _when(target.get("end"), "end")
    if start >= end:
        raise AppError("start must be before end", code="bad_target")
    if end - start > dt.timedelta(days=settings.RECON_RANGE_MAX_DAYS):
        raise AppError(f"a range may span at most {settings.RECON_RANGE_MAX_DAYS} days", code="bad_target")
    return {"start": start.isoformat(), "end": end.isoformat()}


def _load_clean(topic: Topic, scope: str, target: dict) -> dict:
    try:
        load_id = uuid.UUID(str(target.get("load")))
    except ValueError:
        raise AppError("load: give the load's id", code="bad_target") from None
    if not Load.objects.filter(pk=load_id, topic=topic).exists():
        raise AppError(f"no load {load_id} on {topic.name}", code="bad_target")
    return {"load": str(load_id)}


def _offsets_clean(topic: Topic, scope: str, target: dict) -> dict:
    limit = settings.REPLAY_MAX_MESSAGES
    partition = _number(target, scope, "partition")
    start_offset, end_offset = _number(target, scope, "start_offset"), _number(target, scope, "end_offset")
    if end_offset < start_offset:
        raise AppError("end_offset must not be before start_offset", code="bad_target")
    if end_offset - start_offset + 1 > limit:
        raise AppError(f"at most {limit} offsets per request", code="bad_target")
    return {"partition": partition, "start_offset": start_offset, "end_offset": end_offset}


def _clients_clean(topic: Topic, scope: str, target: dict) -> dict:
    return {"keys": _many(target, scope, "keys", _client_key)}


def _findings_clean(topic: Topic, scope: str, target: dict) -> dict:
    ids = _many(target, scope, "findings", int)
    found = set(
        Finding.objects.filter(pk__in=ids, topic=topic, category=Finding.Category.DEAD_LETTERED).values_list(
            "pk", flat=True
        )
    )
    if found != set(ids):
        raise AppError(
            f"not dead-lettered findings of {topic.name}: {sorted(set(ids) - found)[:20]}", code="bad_target"
        )
    return {"findings": sorted(ids)}


_TARGET_CLEANERS: dict[str, Callable[[Topic, str, dict], dict]] = {
    Scope.MESSAGES: _messages_clean,
    Scope.WINDOW: _window_clean,
    Scope.RANGE: _range_clean,
    Scope.LOAD: _load_clean,
    Scope.OFFSETS: _offsets_clean,
    Scope.CLIENTS: _clients_clean,
    Scope.FINDINGS: _findings_clean,
}


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


def topic_for_replay(user, topic: Topic | None, *, way: str = "") -> Topic:
    """Operate permission on the topic (outsider 404, viewer 403); a viewer's refusal goes in the audit trail."""
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
