"""The evidence pack's content: what an auditor takes away about one topic over a date range.

Windows with their figures, findings with their full history and comment thread,
replays with their approvals and dry run totals, operator actions, and the
figures of each leg (transport from the windows; cache and validation from the
runs). Card and account numbers masked (mask_sensitive, mask_text); payload fields
only when the caller asks for them (recon.services.evidence decides), masked even then.
"""

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from core.masking import mask_sensitive, mask_text
from core.records import record_decode, record_mask
from recon import audit
from recon.models import (
    AuditPayload,
    Finding,
    FindingComment,
    FindingTransition,
    OperatorAction,
    ReconRun,
    Replay,
    ReplayItem,
    Topic,
    Window,
)
from recon.selectors.audit import payloads_of
from recon.selectors.runs import keys_reproved

SCHEMA = "kafkacache-evidence/1"


def restore_evidence(items: Sequence[ReplayItem]) -> list[dict]:
    """Each restored key's before and after, as the restore recorded them in its items
    (replay.ways.restore): the evidence pack's restore section."""
    out = []
    for item in items:
        try:
            detail = json.loads(item.detail)
        except ValueError:
            detail = {"note": item.detail}
        out.append({"key": item.key, "outcome": item.outcome, "uuid": str(item.uuid or "") or None, **detail})
    return out


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _user(user) -> str | None:
    return user.username if user is not None else None


def evidence_pack(*, topic: Topic, start: dt.datetime, end: dt.datetime, user, with_payloads: bool) -> dict:
    """The pack as a JSON-ready dict (masked). Each section holds at most EVIDENCE_MAX_ROWS rows and says so."""
    cap = settings.EVIDENCE_MAX_ROWS
    truncated: dict[str, bool] = {}

    def capped(name: str, rows: list) -> list:
        truncated[name] = len(rows) > cap
        return rows[:cap]

    windows = capped(
        "windows",
        list(Window.objects.filter(topic=topic, start__lt=end, end__gt=start).order_by("start")[: cap + 1]),
    )
    in_range = Q(created_at__gte=start, created_at__lt=end) | Q(window__in=[w.pk for w in windows])
    findings = capped(
        "findings",
        list(
            Finding.objects.filter(in_range, topic=topic)
            .select_related("acknowledged_by", "assigned_user", "assigned_group", "reason_code")
            .order_by("created_at", "id")[: cap + 1]
        ),
    )
    problems = _problems(findings)
    ids = [f.pk for f, _ in problems]
    history, thread = _histories(ids), _threads(ids)
    replays = capped("replays", _replays_in(topic, start, end, limit=cap + 1))
    items = {
        r["replay_id"]: r["n"]
        for r in ReplayItem.objects.filter(replay__in=replays).values("replay_id").annotate(n=Count("id"))
    }
    restored, verified = _restores(replays)
    actions = capped("operator_actions", _actions_in(topic, start, end, limit=cap + 1))
    runs = _runs_in(topic, start, end, limit=cap)
    pack: dict[str, Any] = {
        "schema": SCHEMA,
        "topic": topic.name,
        "range": {"start": _iso(start), "end": _iso(end)},
        "generated_at": _iso(timezone.now()),
        "generated_by": _user(user),
        "payloads_included": with_payloads,
        "truncated": truncated,
        "legs": _legs(windows, findings, runs),
        "windows": [_window_row(w) for w in windows],
        # One row per problem (recon.problems), worst first: its first finding, with the count
        # and a few member keys; every member is listed by the findings API with ?problem=.
        "findings": [_finding_row(f, members, history.get(f.pk, []), thread.get(f.pk, [])) for f, members in problems],
        "replays": [_replay_row(r, items.get(r.pk, 0), restored, verified) for r in replays],
        "operator_actions": [_action_row(a) for a in actions],
    }
    # Whether every key was compared with its reference within the period before the range's end.
    reproved = keys_reproved(topic, at=min(end, timezone.now()))
    pack["legs"][ReconRun.Kind.CACHE]["keys_reproved"] = {name: _iso(value) for name, value in reproved.items()}
    if with_payloads:
        pack["payloads"] = _payloads(topic, [f.uuid for f in findings if f.uuid][:cap])
    return pack


def _replays_in(topic: Topic, start: dt.datetime, end: dt.datetime, *, limit: int) -> list[Replay]:
    return list(
        Replay.objects.filter(topic=topic, created_at__gte=start, created_at__lt=end)
        .select_related("requested_by", "decided_by")
        .order_by("created_at")[:limit]
    )


def _actions_in(topic: Topic, start: dt.datetime, end: dt.datetime, *, limit: int) -> list[OperatorAction]:
    return list(
        OperatorAction.objects.filter(topic=topic, at__gte=start, at__lt=end)
        .select_related("user")
        .order_by("at", "id")[:limit]
    )


def _runs_in(topic: Topic, start: dt.datetime, end: dt.datetime, *, limit: int) -> list[ReconRun]:
    return list(
        ReconRun.objects.filter(topic=topic, started_at__gte=start, started_at__lt=end)
        .select_related("requested_by")
        .order_by("started_at")[:limit]
    )


def _histories(finding_ids: list[int]) -> dict[int, list[dict]]:
    """Each finding's transitions, oldest first: who moved it, from what to what, and why."""
    history: dict[int, list[dict]] = {}
    for t in FindingTransition.objects.filter(finding_id__in=finding_ids).select_related("user", "reason_code"):
        history.setdefault(t.finding_id, []).append(
            {
                "at": _iso(t.at),
                "action": t.action,
                "from": t.from_status,
                "to": t.to_status,
                "by": _user(t.user) or t.detail.get("by", "system"),
                "reason_code": t.reason_code.code if t.reason_code else None,
                "detail": mask_sensitive(t.detail),
            }
        )
    return history


def _threads(finding_ids: list[int]) -> dict[int, list[dict]]:
    """Each finding's comment thread, masked."""
    thread: dict[int, list[dict]] = {}
    for c in FindingComment.objects.filter(finding_id__in=finding_ids).select_related("user"):
        thread.setdefault(c.finding_id, []).append({"at": _iso(c.at), "by": _user(c.user), "text": mask_text(c.text)})
    return thread


def _restores(replays: list[Replay]) -> tuple[dict, dict]:
    """(items by replay, cache runs by replay) of the restores among `replays`.

    A restore (replay.ways.restore) writes over any version: each key's before and after,
    and the cache leg that verified it, go in the pack."""
    restores = [r.pk for r in replays if r.way == Replay.Way.RESTORE]
    restored: dict = {}
    for item in ReplayItem.objects.filter(replay_id__in=restores).order_by("id"):
        restored.setdefault(item.replay_id, []).append(item)
    verified: dict = {}
    for run in ReconRun.objects.filter(replay_id__in=restores, kind=ReconRun.Kind.CACHE).order_by("started_at"):
        verified.setdefault(run.replay_id, []).append(
            {"run": str(run.pk), "status": run.status, "all_matched": (run.report or {}).get("all_matched")}
        )
    return restored, verified


def _legs(windows: list[Window], findings: list[Finding], runs: list[ReconRun]) -> dict[str, dict]:
    """Per leg: its findings by category and its runs; the transport leg also its windows' figures."""
    totals = Window.objects.filter(pk__in=[w.pk for w in windows]).aggregate(
        published=Sum("published_count"), consumed=Sum("consumed_count")
    )
    transport = {
        "windows": len(windows),
        "windows_by_status": _count(w.status for w in windows),
        "published": totals["published"] or 0,
        "consumed": totals["consumed"] or 0,
        "findings_by_category": _count(f.category for f in findings),
        "findings_by_status": _count(f.status for f in findings),
    }
    return {
        kind: {
            **(transport if kind == ReconRun.Kind.TRANSPORT else {}),
            "findings": _count(f.category for f in findings if _leg_of(f) == kind),
            "runs": [_run_row(r) for r in runs if r.kind == kind],
        }
        for kind in ReconRun.Kind.values
    }


def _run_row(r: ReconRun) -> dict:
    return {
        "id": str(r.pk),
        "started_at": _iso(r.started_at),
        "finished_at": _iso(r.finished_at),
        "status": r.status,
        "trigger": r.trigger,
        "by": _user(r.requested_by),
        "report": mask_sensitive(r.report),
    }


def _window_row(w: Window) -> dict:
    return {
        "id": w.pk,
        "start": _iso(w.start),
        "end": _iso(w.end),
        "status": w.status,
        "published": w.published_count,
        "consumed": w.consumed_count,
        "published_digest": str(w.published_digest),
        "consumed_digest": str(w.consumed_digest),
        "max_latency_ms": w.consumed_max_latency_ms,
        "reconciled_at": _iso(w.reconciled_at),
    }


def _finding_row(f: Finding, members: list[Finding], history: list[dict], comments: list[dict]) -> dict:
    return {
        "id": f.pk,
        "problem": f.problem,
        "members": len(members),
        "member_keys": [m.key or str(m.uuid or "") for m in members[:MEMBER_KEYS_SHOWN]],
        "members_by_status": _count(m.status for m in members),
        "created_at": _iso(f.created_at),
        "window": f.window_id,
        "uuid": str(f.uuid) if f.uuid else None,
        "key": f.key,
        "category": f.category,
        "classification": f.classification,
        "severity": f.severity,
        "status": f.status,
        "owner": _user(f.assigned_user),
        "team": f.assigned_group.name if f.assigned_group else None,
        "reason_code": f.reason_code.code if f.reason_code else None,
        "acknowledged_by": _user(f.acknowledged_by),
        "comment": mask_text(f.comment),
        "detail": mask_sensitive(f.detail),
        "history": history,
        "comments": comments,
    }


def _replay_row(r: Replay, items: int, restored: dict, verified: dict) -> dict:
    return {
        "id": str(r.pk),
        "created_at": _iso(r.created_at),
        "way": r.way,
        "scope": r.scope,
        "target": r.target,
        "reason": mask_text(r.reason),
        "status": r.status,
        "size": r.size,
        "requested_by": _user(r.requested_by),
        "needs_approval": r.needs_approval,
        "decided_by": _user(r.decided_by),
        "decided_at": _iso(r.decided_at),
        "decision_comment": mask_text(r.decision_comment),
        "expires_at": _iso(r.expires_at),
        "outcome": r.outcome,
        "items": items,
        "dry_run": (r.preview or {}).get("totals", {}),
        "finished_at": _iso(r.finished_at),
        **(
            {"restored": restore_evidence(restored.get(r.pk, [])), "verified_by": verified.get(r.pk, [])}
            if r.way == Replay.Way.RESTORE
            else {}
        ),
    }


def _action_row(a: OperatorAction) -> dict:
    return {
        "at": _iso(a.at),
        "user": _user(a.user),
        "action": a.action,
        "target": a.target,
        "outcome": a.outcome,
        "detail": mask_sensitive(a.detail),
    }


MEMBER_KEYS_SHOWN = 20
_RANK: dict[str, int] = {"critical": 3, "warning": 2, "info": 1}


def _problems(findings: list[Finding]) -> list[tuple[Finding, list[Finding]]]:
    """The findings grouped by problem, worst severity first, then oldest: (first finding, members),
    the first carrying the problem's worst severity."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.problem or f"one:{f.pk}", []).append(f)
    out = []
    for members in groups.values():
        first = members[0]
        first.severity = max((m.severity for m in members), key=lambda s: _RANK.get(s, 0))
        out.append((first, members))
    out.sort(key=lambda fm: (-_RANK.get(fm[0].severity, 0), fm[0].created_at, fm[0].pk))
    return out


def _leg_of(finding: Finding) -> str:
    """Which leg found it: the cache check and validation name themselves in the detail's source."""
    if finding.category == Finding.Category.CACHE:
        return ReconRun.Kind.CACHE
    if finding.category == Finding.Category.INVALID_DATA:
        return ReconRun.Kind.VALIDATION
    return ReconRun.Kind.TRANSPORT


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def _payloads(topic: Topic, uuids: list) -> list[dict]:
    out = []
    for message_uuid, rows in payloads_of(topic=topic, uuids=uuids).items():
        for row in rows:
            evidence: dict[str, Any] = {}
            try:
                value = audit.unseal(row)
                evidence = audit.payload_evidence(row, value, topic.hash_algorithm)
                record = record_mask(record_decode(value, schema_version=row.schema_version or 1, decrypt=False))
                shown: Any = mask_sensitive(json.loads(json.dumps(record, default=_bytes)))
            except Exception as exc:  # a payload that no longer decodes is reported, not fatal
                shown = {"error": f"{type(exc).__name__}"}
            entry = {"uuid": str(message_uuid), "side": row.side, "at": _iso(row.at), "record": shown}
            entry.update({k: v for k, v in evidence.items() if k != "side"})
            out.append(entry)
    out.sort(key=lambda p: (p["uuid"], p["side"] != AuditPayload.Side.PUBLISHED))
    return out


def _bytes(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} encrypted bytes>"
    return str(value)
