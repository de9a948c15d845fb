"""One message's timeline: everything the record knows of it (its publish and deliveries, findings,
operator actions, replays, rebalances around it), the cache's entry for its key and, with
payload permission, its kept payloads; 404 for a message on a topic the user may not see."""

import datetime as dt
import uuid as uuid_lib
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from core.cache_records import cache_records_get, tombstones_get
from core.clients import redis_client
from core.hashing import content_hash
from core.masking import mask_sensitive
from core.records import record_decode, record_mask
from recon import access, audit
from recon.models import (
    ConsumedMessage,
    Finding,
    Load,
    OperatorAction,
    PublishedMessage,
    RebalanceEvent,
    ReplayItem,
    Topic,
)
from recon.selectors.audit import message_diff, payloads_of
from recon.services.ledger import window_start

REBALANCE_MARGIN = dt.timedelta(minutes=15)


@dataclass
class CacheState:
    record_key: str
    present: bool = False
    uuid: str = ""  # the message uuid the cache entry came from
    holds_this_message: bool = False
    hash_matches: bool | None = None  # cached bytes hash == published hash
    schema_version: str = ""
    created_ms: str = ""
    source_version: str = ""  # the version the cache holds for the key ("" or "0": unordered)
    topic: str = ""  # the topic that wrote the cached record
    tombstone: str = ""  # the version of the key's last delete, while the cache remembers it
    error: str = ""


@dataclass
class TimelineEvent:
    at: dt.datetime
    kind: str  # published | consumed | finding | action
    summary: str
    ok: bool = True


@dataclass
class MessageTimeline:
    uuid: uuid_lib.UUID
    topic: Topic
    published: PublishedMessage | None
    deliveries: list[ConsumedMessage]
    findings: list[Finding]
    actions: list[OperatorAction]
    rebalances: list[RebalanceEvent]
    cache: CacheState | None
    headers: dict[str, str]
    load: Load | None
    events: list[TimelineEvent] = field(default_factory=list)
    can_operate: bool = False
    can_view_payload: bool = False
    finding_details: dict[int, Any] = field(default_factory=dict)
    audit_payload: Any = None  # recon's AuditPayload, decoded and masked, when the topic keeps payloads
    replays: list[ReplayItem] = field(default_factory=list)  # replays of this message, and the one it came from


def message_timeline(*, user, uuid: uuid_lib.UUID) -> MessageTimeline:
    """Everything known about one message. 404 when it is unknown or on a topic the user may not see."""
    published = PublishedMessage.objects.filter(uuid=uuid).select_related("topic").order_by("published_at").first()
    deliveries = list(ConsumedMessage.objects.filter(uuid=uuid).order_by("consumed_at", "id"))
    findings = list(Finding.objects.filter(uuid=uuid).order_by("created_at"))
    # An orphan (consumed, never published) or a finding alone still has a topic.
    source: PublishedMessage | ConsumedMessage | Finding | None = (
        published or next(iter(deliveries), None) or next(iter(findings), None)
    )
    topic = access.topic_for_view(user, Topic.objects.filter(pk=source.topic_id).first() if source else None)
    actions = list(OperatorAction.objects.filter(target=f"message:{uuid}").select_related("user").order_by("at"))

    can_payload = access.can_view_payload(user, topic)
    load = Load.objects.filter(pk=published.load_id).first() if published and published.load_id else None
    timeline = MessageTimeline(
        uuid=uuid,
        topic=topic,
        published=published,
        deliveries=deliveries,
        findings=findings,
        actions=actions,
        rebalances=_rebalances_around(topic, published, deliveries),
        cache=_cache_state(topic, published, uuid) if published else None,
        headers=_ledger_headers(topic, published, load, can_payload) if published else {},
        load=load,
        can_operate=access.can_operate(user, topic),
        can_view_payload=can_payload,
        finding_details={f.pk: f.detail if can_payload else mask_sensitive(f.detail) for f in findings},
        audit_payload=_audit_payload(topic, uuid) if can_payload and topic.method_audit else None,
    )
    timeline.replays = list(
        ReplayItem.objects.filter(Q(original_uuid=uuid) | Q(uuid=uuid))
        .select_related("replay", "replay__requested_by")
        .order_by("at")[:50]
    )
    timeline.events = _events(timeline)
    return timeline


def message_judged_at(topic: Topic, published_at: dt.datetime) -> dt.datetime:
    """When the transport leg judges a message: its window's end plus the topic's grace."""
    return window_start(topic, published_at) + dt.timedelta(seconds=topic.window_seconds + topic.grace_seconds)


def message_fate(topic: Topic, published_at: dt.datetime, outcomes: list[str], *, now: dt.datetime) -> str:
    """What became of a published message: its last outcome, "dead" when only dead-lettered, and with no
    delivery "lost" once its window has been judged, "pending" before."""
    if outcomes:
        if ConsumedMessage.Outcome.STORED in outcomes or ConsumedMessage.Outcome.DELETED in outcomes:
            return outcomes[-1]
        return (
            ConsumedMessage.Outcome.DEAD_LETTERED if ConsumedMessage.Outcome.DEAD_LETTERED in outcomes else outcomes[-1]
        )
    return "lost" if now >= message_judged_at(topic, published_at) else "pending"


def _ledger_headers(topic: Topic, published: PublishedMessage, load: Load | None, can_payload: bool) -> dict[str, str]:
    """The Kafka headers the ledger can vouch for (the shared-record contract's names)."""
    headers = {
        "uuid": str(published.uuid),
        "event": published.event_type,
        "created": str(int(published.published_at.timestamp() * 1000)),
        "hash": bytes(published.content_hash).hex(),
        "hash-alg": topic.hash_algorithm,
    }
    if load is not None:
        headers["source"] = load.source
        # The retrieval key reads the load's records back: shown only with payload permission.
        headers["load"] = load.retrieval_key if can_payload else "•" * 8
    if published.replay_of:
        headers["replay-of"] = str(published.replay_of)
    return headers


def _cache_state(topic: Topic, published: PublishedMessage, uuid: uuid_lib.UUID) -> CacheState:
    state = CacheState(record_key=published.key)
    try:
        client = redis_client()
        held = cache_records_get(client, [published.key]).get(published.key)
        deleted = tombstones_get(client, [published.key]).get(published.key)
    except Exception as exc:  # Redis down: the page says so instead of failing
        state.error = f"{type(exc).__name__}: {exc}"
        return state
    state.tombstone = "" if deleted is None else str(deleted)
    if held is None:
        return state
    state.source_version = str(held.version)
    state.topic = held.topic
    state.present = True
    state.uuid = held.uuid
    state.holds_this_message = state.uuid == str(uuid)
    state.schema_version = str(held.schema_version)
    state.created_ms = str(held.created_ms)
    if state.holds_this_message:
        state.hash_matches = content_hash(held.value, topic.hash_algorithm) == bytes(published.content_hash)
    return state


def _audit_payload(topic: Topic, uuid: uuid_lib.UUID) -> dict | None:
    """The kept payloads of one message, decoded with card and account numbers masked.

    Nothing is decrypted for display: the feed's record_mask shows the last four
    digits it keeps in the clear, and mask_sensitive catches anything else.
    """
    rows = payloads_of(topic=topic, uuids=[uuid]).get(uuid, [])
    if not rows:
        return None
    out: dict[str, Any] = {"published": [], "consumed": [], "hashes": []}
    for row in rows:
        try:
            value = audit.unseal(row)
            out["hashes"].append(audit.payload_evidence(row, value, topic.hash_algorithm))
            record = record_mask(record_decode(value, schema_version=row.schema_version or 1, decrypt=False))
        except Exception as exc:  # a payload that no longer decodes is shown as such, not as a page error
            record = {"error": f"{type(exc).__name__}: {exc}"}
        out[row.side].append(mask_sensitive(record))
    diff = message_diff(topic=topic, message_uuid=uuid)
    out["changed_fields"] = [d["path"] for d in diff.get("fields") or []]
    return out


def _rebalances_around(
    topic: Topic, published: PublishedMessage | None, deliveries: list[ConsumedMessage]
) -> list[RebalanceEvent]:
    moments = [d.consumed_at for d in deliveries] + ([published.published_at] if published else [])
    if not moments:
        return []
    groups = {topic.consumer_group} | {d.group for d in deliveries}
    return list(
        RebalanceEvent.objects.filter(
            group__in=groups, at__gte=min(moments) - REBALANCE_MARGIN, at__lte=max(moments) + REBALANCE_MARGIN
        ).order_by("at")[:50]
    )


def _events(t: MessageTimeline) -> list[TimelineEvent]:
    events = []
    if t.published:
        p = t.published
        events.append(
            TimelineEvent(p.published_at, "published", f"{p.event_type} to {t.topic.name}/{p.partition}@{p.offset}")
        )
        if not t.deliveries:
            judged = message_judged_at(t.topic, p.published_at)
            if dt.datetime.now(dt.UTC) >= judged:
                events.append(TimelineEvent(judged, "lost", "lost: published, never consumed", ok=False))
            else:
                events.append(TimelineEvent(judged, "pending", f"not consumed yet; judged at {judged:%H:%M:%S} UTC"))
    for number, d in enumerate(t.deliveries, 1):
        same = bytes(d.content_hash) == bytes(t.published.content_hash) if t.published else None
        note = "" if same is None else (", hash matches" if same else ", HASH DIFFERS")
        summary = f"delivery {number} to {d.group} ({d.get_outcome_display()}), {d.partition}@{d.offset}{note}"
        events.append(TimelineEvent(d.consumed_at, "consumed", summary, ok=same is not False))
    for f in t.findings:
        events.append(TimelineEvent(f.created_at, "finding", f"{f.get_category_display()} ({f.status})", ok=False))
    for a in t.actions:
        who = a.user.username if a.user else "system"
        events.append(TimelineEvent(a.at, "action", f"{a.action} by {who}: {a.outcome}"))
    for item in t.replays:
        replay = item.replay
        verb = "reprocess" if replay.way == replay.Way.DEAD_LETTER else f"replay ({replay.way})"
        who = replay.requested_by.username if replay.requested_by else "system"
        if item.original_uuid == t.uuid and item.uuid and item.uuid != t.uuid:
            summary = f"{verb} {replay.pk} by {who}: {item.get_outcome_display()} as {item.uuid}"
        elif item.original_uuid == t.uuid:
            summary = f"{verb} {replay.pk} by {who}: {item.get_outcome_display()}"
        else:
            summary = f"published by {verb} {replay.pk} in place of {item.original_uuid or 'an unknown message'}"
        ok = item.outcome not in (item.Outcome.DEAD, item.Outcome.FAILED)
        events.append(TimelineEvent(item.at, "replay", summary, ok=ok))
    for f in t.findings:
        if f.status == Finding.Status.RESOLVED and f.detail.get("resolved_at"):
            try:
                at = dt.datetime.fromisoformat(f.detail["resolved_at"])
            except ValueError:
                continue
            at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
            how = f"fixed by replay {f.detail['replay']}" if f.detail.get("replay") else "no longer found"
            if f.detail.get("verified_by_run"):
                how += f", verified by run {f.detail['verified_by_run']}"
            events.append(TimelineEvent(at, "resolved", f"{f.get_category_display()}: {how}"))
    return sorted(events, key=lambda e: e.at)
