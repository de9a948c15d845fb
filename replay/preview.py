"""The dry run of a replay: what each message would publish, and what the cache would make of it.

Read-only: the publish ledger, the audit log and Redis (one pipeline per batch);
nothing is published, processed or written. Stored on the request
(Replay.preview) so the approver sees exactly what the requester saw.

Per message: what would be published (a new message carrying the audit payload,
the original offset re-read, or the client rebuilt from the source); the cache's
entry now (core.cache_records: the record's source version `sv`, message and publish
time, the key's tombstone) and after, field by field with card and account numbers
masked (when the audit log holds the payload); and the verdict:
- apply: the cache would take it;
- same: the cache holds this very version (idempotent, no change);
- refused: the cache already holds something newer (a write or a delete);
- skipped: nothing to replay (not in the ledger, no payload, over the replay guard).

The verdict is `version_verdict` (the cache's ordering rule: a message is applied
only when its version is newer than the key's `sv` and tombstone; equal is
idempotent). A message without a version (published before versions existed) is
judged by publish time, as the cache's older guard does.
"""

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.conf import settings

from core.cache_records import CachedRecord, cache_records_get, tombstones_get
from core.clients import redis_client
from core.records import record_decode, record_mask
from kafkacache.cache import EQUAL, OLDER, UNORDERED, put_verdict
from recon import audit
from recon.models import AuditPayload, Finding, Load, PublishedMessage, Replay, ReplayItem, Topic
from recon.selectors.audit import payloads_of
from replay.guard import replays_per_message
from replay.ways.common import Original, originals_of
from replay.ways_check import ways_check

Way, Scope = Replay.Way, Replay.Scope


class Verdict(NamedTuple):
    verdict: str  # apply | same | refused | skipped
    reason: str


def version_verdict(replayed: int | None, cached_sv: int | None, tombstone: int | None) -> Verdict:
    """Would the cache apply a message of version `replayed`, given the key's `sv` and tombstone version?

    None means absent (no version on the message: unordered; no record; no
    tombstone). The answer is the cache script's own (kafkacache.cache.put_verdict).
    """
    letter = put_verdict(replayed or 0, held=cached_sv, tombstone=tombstone)
    if letter == EQUAL:
        return Verdict("same", f"the cache holds version {replayed} already: written again, no change")
    if letter == UNORDERED:
        return Verdict("refused", f"an unversioned message never replaces the cache's version {cached_sv or tombstone}")
    if letter == OLDER:
        if tombstone and (cached_sv is None or tombstone >= cached_sv):
            return Verdict("refused", f"the key was deleted at version {tombstone}, not older than {replayed}")
        return Verdict("refused", f"the cache holds version {cached_sv}, newer than {replayed}")
    newest = max((v for v in (cached_sv, tombstone) if v), default=None)
    return Verdict("apply", f"version {replayed} is newer than the cache's {newest}" if newest else "the key is absent")


def _before(held: CachedRecord | None, tombstone: int | None) -> dict[str, Any]:
    """What the cache holds for a key now, as a preview shows it (None: nothing there)."""
    return {
        "sv": held.version if held else None,
        "uuid": (held.uuid or None) if held else None,
        "t": held.created_ms if held else None,
        "tombstone": tombstone,
        "present": held is not None,
    }


def _ms(at: dt.datetime) -> int:
    return round(at.timestamp() * 1000)


def _masked(value: bytes | None, schema_version: int) -> dict | None:
    if not value:
        return None
    try:
        return record_mask(record_decode(value, schema_version=schema_version, decrypt=False))
    except Exception as exc:  # a payload that does not decode is shown as such
        return {"error": f"{type(exc).__name__}: {exc}"}


def _flat(record: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(record, dict):
        out: dict[str, Any] = {}
        for k, v in record.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(record, list):
        out = {}
        for i, v in enumerate(record):
            out.update(_flat(v, f"{prefix}[{i}]"))
        return out
    if isinstance(record, bytes):
        return {prefix: f"<{len(record)} encrypted bytes>"}
    return {prefix: record}


def field_changes(before: dict | None, after: dict | None) -> list[dict]:
    """Field-by-field differences of two masked records (paths like cards[0].card_number)."""
    if before is None or after is None:
        return []
    old, new = _flat(before), _flat(after)
    return [
        {"field": path, "from": old.get(path), "to": new.get(path)}
        for path in sorted(set(old) | set(new))
        if old.get(path) != new.get(path)
    ]


def _source_versions(originals: Sequence[Original]) -> dict[uuid.UUID, int | None]:
    """The replayed messages' source versions (None: unordered, or published before versions)."""
    return dict(
        PublishedMessage.objects.filter(uuid__in=[o.uuid for o in originals]).values_list("uuid", "source_version")
    )


def replay_dry_run(*, topic: Topic, way: str, scope: str, target: dict) -> dict:
    """The preview of a (clean) replay request; never raises for a message, only for a bad scope."""
    shown_max = settings.REPLAY_PREVIEW_MAX
    counts: Counter = Counter()
    messages: list[dict] = []
    request = Replay(topic=topic, way=way, scope=scope, target=target)
    if scope == Scope.CLIENTS:
        return _clients(topic, target)
    try:
        originals, unknown = _originals(request)
    except Exception as exc:  # e.g. the scope holds more than REPLAY_MAX_MESSAGES
        return {"error": str(exc), "totals": {}, "messages": []}
    for item in unknown:
        counts["skipped"] += 1
        if len(messages) < shown_max:
            messages.append(_unknown_entry(item))
    replayed_before = replays_per_message(o.uuid for o in originals)
    versions = _source_versions(originals)
    # Each way against what exists now: the chosen way's unreachable messages are skipped, never "same".
    check: dict = {}
    unreachable: dict[str, str] = {}
    if way != Way.DEAD_LETTER:
        check, failing = ways_check(topic=topic, originals=originals, source_name=_source_name(target))
        unreachable = failing[str(way)]
    client = redis_client()
    batch = settings.REPLAY_BATCH_SIZE
    for start in range(0, len(originals), batch):
        chunk = originals[start : start + batch]
        shown = chunk[: max(shown_max - len(messages), 0)]
        payloads = payloads_of(topic=topic, uuids=[o.uuid for o in shown]) if topic.method_audit else {}
        keys = [o.key for o in chunk]
        records, tombstones = cache_records_get(client, keys), tombstones_get(client, keys)
        for n, o in enumerate(chunk):
            held = records.get(o.key)
            entry = _judge(
                topic=topic,
                way=way,
                original=o,
                replayed_version=versions.get(o.uuid),
                before=_before(held, tombstones.get(o.key)),
                times_replayed=replayed_before.get(o.uuid, 0),
                unreachable=unreachable.get(str(o.uuid), ""),
            )
            counts[entry["verdict"]] += 1
            if n < len(shown):
                _fields_show(entry, held, payloads.get(o.uuid, []))
                messages.append(entry)
    preview = {
        "totals": {"messages": len(originals) + len(unknown), **dict(counts)},
        "shown": len(messages),
        "truncated": len(originals) + len(unknown) > len(messages),
        "messages": messages,
        **check,
    }
    return json.loads(json.dumps(preview, default=str))  # stored as JSON: dates as text


def _unknown_entry(item) -> dict:
    """A message the scope names that the ledgers do not know: skipped."""
    return {
        "uuid": str(item.original_uuid) if item.original_uuid else None,
        "key": item.key,
        "partition": item.partition,
        "offset": item.offset,
        "verdict": "skipped",
        "reason": item.detail,
        "cache_before": {},
        "after": {},
        "changes": [],
    }


def _fields_show(entry: dict, held, payloads: list) -> None:
    """A shown message's fields, masked: what the cache holds, what the replay would write
    (its published audit payload), and which fields change."""
    published = [p for p in payloads if p.side == AuditPayload.Side.PUBLISHED]
    after = _after_fields(published[0]) if published else None
    before = _masked(held.value, held.schema_version or 1) if held else None
    entry["cache_before"]["fields"] = before
    entry["after"]["fields"] = after
    entry["changes"] = field_changes(before, after)


def _source_name(target: dict) -> str:
    if "load" in target:
        load = Load.objects.filter(pk=target["load"]).only("source").first()
        if load is not None:
            return load.source
    return str(target.get("source", "ods"))


def _after_fields(row: AuditPayload) -> dict | None:
    try:
        return _masked(audit.unseal(row), row.schema_version or 1)
    except Exception as exc:
        return {"error": f"audit payload unreadable: {type(exc).__name__}"}


def _judge(
    *,
    topic: Topic,
    way: str,
    original: Original,
    replayed_version: int | None,
    before: dict[str, Any],
    times_replayed: int,
    unreachable: str = "",
) -> dict:
    o = original
    ways: dict[str, str] = {
        Way.AUDIT: f"a new message on {topic.name} with the audit payload of {o.uuid} (replay-of it)",
        Way.KAFKA: f"{topic.name}/{o.partition}@{o.offset} re-read and run through the feed into Redis",
        Way.SOURCE: f"{o.key} rebuilt from the source and published as a new message",
        Way.DEAD_LETTER: f"the dead letter of {o.uuid} read back and run through the feed into Redis",
    }
    publishes = ways[way]
    entry: dict[str, Any] = {
        "uuid": str(o.uuid),
        "key": o.key,
        "partition": o.partition,
        "offset": o.offset,
        "event": o.event_type,
        "publishes": publishes,
        "cache_before": before,
        "after": {"version": replayed_version, "event": o.event_type},
        "changes": [],
    }
    if times_replayed >= settings.REPLAY_MAX_PER_MESSAGE:
        verdict = Verdict("skipped", f"replayed {times_replayed} times already (REPLAY_MAX_PER_MESSAGE)")
    elif unreachable:
        verdict = Verdict("skipped", f"the {way} way cannot reach it: {unreachable}")
    elif way == Way.SOURCE:
        verdict = Verdict("apply", "rebuilt now from the system of record: the newest state of the key")
    else:
        verdict = version_verdict(replayed_version, before["sv"] if before["present"] else None, before["tombstone"])
    entry["verdict"], entry["reason"] = verdict
    return entry


def _as_original(row: PublishedMessage) -> Original:
    return Original(
        row.uuid,
        row.key,
        row.partition,
        row.offset,
        row.event_type,
        row.published_at,
        row.load_id,
        bytes(row.content_hash),
    )


def _originals(request: Replay) -> tuple[list[Original], list[ReplayItem]]:
    """The published messages a request would replay, found in the publish ledger, and what it cannot name."""
    topic, target = request.topic, request.target
    limit = settings.REPLAY_MAX_MESSAGES
    if request.scope == Scope.OFFSETS:
        start, end, partition = target["start_offset"], target["end_offset"], target["partition"]
        rows = list(
            PublishedMessage.objects.filter(
                topic=topic, partition=partition, offset__gte=start, offset__lte=end
            ).order_by("offset")[: limit + 1]
        )
        known = {r.offset for r in rows}
        unknown = [
            ReplayItem(
                partition=partition,
                offset=offset,
                outcome=ReplayItem.Outcome.SKIPPED,
                detail="not in the publish ledger: what Kafka holds there is known only when the replay reads it",
            )
            for offset in range(start, end + 1)
            if offset not in known
        ]
        return [_as_original(r) for r in rows], unknown
    if request.way == Way.DEAD_LETTER:
        findings = Finding.objects.filter(topic=topic, category=Finding.Category.DEAD_LETTERED)
        if request.scope == Scope.FINDINGS:
            findings = findings.filter(pk__in=target["findings"])
        else:
            findings = findings.filter(created_at__gte=target["start"], created_at__lt=target["end"]).exclude(
                status=Finding.Status.RESOLVED
            )
        named = list(findings.values_list("uuid", "key")[: limit + 1])
        by_uuid = {r.uuid: r for r in PublishedMessage.objects.filter(topic=topic, uuid__in=[u for u, _ in named if u])}
        unknown = [
            ReplayItem(original_uuid=u, key=k, outcome=ReplayItem.Outcome.SKIPPED, detail="not in the publish ledger")
            for u, k in named
            if u not in by_uuid
        ]
        return sorted((_as_original(r) for r in by_uuid.values()), key=lambda o: o.published_at), unknown
    return originals_of(request, guard=False)


def _clients(topic: Topic, target: dict) -> dict:
    """Client rebuilds: the source's newest state, per key, against what the cache holds now."""
    keys = target["keys"]
    shown = keys[: settings.REPLAY_PREVIEW_MAX]
    client = redis_client()
    records, tombstones = cache_records_get(client, shown), tombstones_get(client, shown)
    messages = []
    for key in shown:
        messages.append(
            {
                "uuid": None,
                "key": key,
                "publishes": f"{key} rebuilt from {target.get('source', 'ods')} and published as a new message",
                "cache_before": _before(records.get(key), tombstones.get(key)),
                "after": {"version": None, "event": "bulk" if topic.kind == Topic.Kind.BULK else "add"},
                "changes": [],
                "verdict": "apply",
                "reason": "rebuilt now from the system of record: the newest state of the key (absent there: skipped)",
            }
        )
    preview = {"totals": {"messages": len(keys), "apply": len(keys)}, "shown": len(messages)}
    preview.update({"truncated": len(keys) > len(messages), "messages": messages})
    return json.loads(json.dumps(preview, default=str))


def preview_shown(preview: dict, *, clear: bool) -> dict:
    """A stored preview as a user may see it: record fields only with payload permission on the topic
    (they are masked either way; without the permission the verdicts, versions and keys remain)."""
    if clear or not preview.get("messages"):
        return preview
    messages = []
    for m in preview["messages"]:
        m = {**m, "changes": [{"field": c["field"]} for c in m.get("changes", [])]}
        for side in ("cache_before", "after"):
            if isinstance(m.get(side), dict):
                m[side] = {k: v for k, v in m[side].items() if k != "fields"}
        messages.append(m)
    return {**preview, "messages": messages, "fields_hidden": True}
