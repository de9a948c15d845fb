"""Findings the checks write: one recorded as it happens (the feed's dead letters, oversize,
invalid data, rebalance errors, clock skew), and the synced sets of a check (a window's
engine findings, a cache or validation run's per-key findings)."""

import datetime as dt
import logging
import uuid
from collections.abc import Collection, Sequence

from django.db import transaction
from django.utils import timezone

from recon.engine import ENGINE_CATEGORIES, Comparison, Draft, draft_identity
from recon.models import Finding, ReconRun, Topic, Window
from recon.problems import problem_of
from recon.rules import Verdict, classify, rules_for
from recon.selectors.audit import altered_with_field_diff
from recon.selectors.replays import replays_delivered
from recon.services.finding_lifecycle import finding_mark_reopened, finding_mark_resolved, transitions_save

logger = logging.getLogger(__name__)


def finding_record(
    *,
    topic: Topic,
    category: str,
    uuid: uuid.UUID | str | None = None,
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
        problem=problem_of(category=category, load_id=load_id, detail=detail, key=key, message_uuid=uuid),
    )
    # %r: the key and the detail come from Kafka (a key starting with a newline must not forge a line)
    logger.warning("finding %s on %s: uuid=%s key=%r %r", category, topic.name, uuid, key, detail or "")
    return finding


def _dead_letter_again(*, topic: Topic, message_uuid: uuid.UUID | str | None, detail: dict) -> Finding | None:
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


# What a replay can fix: the subscriber lacks the published bytes.
REPLAY_FIXES = (Finding.Category.MISSING, Finding.Category.ALTERED)
# What a sync changes on a finding it found again or resolved.
SYNCED_FIELDS = ["status", "detail", "classification", "severity", "rule", "run", "updated_at", "status_changed_at"]


def window_findings_sync(
    *, window: Window, topic: Topic, comparison: Comparison, run: ReconRun | None, now: dt.datetime
) -> list[tuple[Draft, Verdict]]:
    """Make the window's engine findings be exactly the compare's drafts (see window_reconcile)."""
    rules = rules_for(topic)
    drafts = comparison.drafts
    if topic.method_audit:
        drafts = altered_with_field_diff(topic=topic, drafts=drafts)
    existing = {
        draft_identity(f.category, f.uuid, f.detail): f
        for f in Finding.objects.filter(window=window, category__in=ENGINE_CATEGORIES)
    }
    # A missing or altered message that a replay delivered counts as delivered: its draft
    # goes, and its finding is resolved below naming the replay (replay.services.requests).
    delivered = _replays_delivered(drafts, existing.values())
    drafts = [d for d in drafts if not (d.category in REPLAY_FIXES and d.uuid in delivered)]
    verdicts, new, changed = [], [], []
    transitions: list = []
    for draft in drafts:
        verdict = classify(rules, category=draft.category, detail=draft.detail)
        verdicts.append((draft, verdict))
        finding = existing.pop(draft.identity, None)
        if finding is None:
            new.append(_engine_finding_new(draft, verdict, topic=topic, window=window, run=run))
        elif _engine_finding_update(finding, draft, verdict, run=run, now=now, transitions=transitions):
            changed.append(finding)
    if not comparison.truncated:  # beyond the cap we do not know, so resolve nothing
        for finding in existing.values():
            if finding.status != Finding.Status.RESOLVED:
                transitions.append(_engine_finding_resolve(finding, delivered, run=run, now=now))
                changed.append(finding)
    _findings_save(new, changed, SYNCED_FIELDS, transitions)
    return verdicts


def _replays_delivered(drafts: list[Draft], existing: Collection[Finding]) -> dict:
    """The replayed messages consumed in place of the drafts' and standing findings' missing or altered ones."""
    return replays_delivered(
        {d.uuid for d in drafts if d.category in REPLAY_FIXES}
        | {f.uuid for f in existing if f.category in REPLAY_FIXES and f.status != Finding.Status.RESOLVED}
    )


def _engine_finding_new(
    draft: Draft, verdict: Verdict, *, topic: Topic, window: Window, run: ReconRun | None
) -> Finding:
    problem = problem_of(
        category=draft.category,
        window_id=window.pk,
        load_id=draft.load_id,
        detail=draft.detail,
        key=draft.key,
        message_uuid=draft.uuid,
    )
    return _finding_new(
        topic=topic,
        category=draft.category,
        verdict=verdict,
        detail=draft.detail,
        key=draft.key,
        message_uuid=draft.uuid,
        run=run,
        load_id=draft.load_id,
        window=window,
        problem=problem,
    )


def _finding_new(
    *,
    topic: Topic,
    category: str,
    verdict: Verdict,
    detail: dict,
    key: str,
    message_uuid: uuid.UUID | None,
    run: ReconRun | None,
    load_id: uuid.UUID | None,
    problem: str,
    window: Window | None = None,
) -> Finding:
    """A finding a check raises (saved by _findings_save, in bulk), classified by `verdict`."""
    return Finding(
        topic=topic,
        window=window,
        run=run,
        load_id=load_id,
        uuid=message_uuid,
        key=key[:512],
        category=category,
        classification=verdict.classification,
        severity=verdict.severity,
        rule_id=verdict.rule_id,
        detail=detail,
        problem=problem,
    )


def _engine_finding_update(
    finding: Finding, draft: Draft, verdict: Verdict, *, run: ReconRun | None, now: dt.datetime, transitions: list
) -> bool:
    """An engine finding found again, brought up to its draft; False when it is as it was (the
    row, and the run that found it, are left alone)."""
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
        return False
    if recurs:  # the only status change here, through the lifecycle's own transition
        transitions.append(finding_mark_reopened(finding, by="reconcile", now=now))
    finding.detail = detail
    finding.classification, finding.severity, finding.rule_id = verdict
    finding.run = run or finding.run
    finding.updated_at = now
    return True


def _engine_finding_resolve(finding: Finding, delivered: dict, *, run: ReconRun | None, now: dt.datetime):
    """An engine finding the compare no longer finds, resolved: by the replay that delivered its
    message when one did, else by the reconcile."""
    by = delivered.get(finding.uuid) if finding.category in REPLAY_FIXES else None
    resolution = {"replay": str(by.replay_id), "replay_uuid": str(by.uuid)} if by else {}
    if run is not None:  # "fixed by replay N, verified by run M"
        resolution["verified_by_run"] = str(run.pk)
    return finding_mark_resolved(finding, by="replay" if by else "reconcile", now=now, detail=resolution or None)


def _findings_save(new: list[Finding], changed: list[Finding], fields: list[str], transitions: list) -> None:
    """A sync's writes, in bulk: the new findings, the changed ones' `fields`, their transitions."""
    Finding.objects.bulk_create(new, batch_size=2000)
    Finding.objects.bulk_update(changed, fields, batch_size=2000)
    transitions_save(transitions)


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
    standing = _standing_by_key(topic=topic, category=category, source=source, checked=checked, keep=keep)
    new, changed, transitions = [], [], []
    for key, (message_uuid, detail) in problems.items():
        detail = {**detail, "source": source}
        verdict = classify(rules, category=category, detail=detail)
        finding = standing.pop(key, None)
        if finding is None:
            run_id = run.pk if run else None
            problem = problem_of(
                category=category, load_id=load_id, run_id=run_id, detail=detail, key=key, message_uuid=message_uuid
            )
            new.append(
                _finding_new(
                    topic=topic,
                    category=category,
                    verdict=verdict,
                    detail=detail,
                    key=key,
                    message_uuid=message_uuid,
                    run=run,
                    load_id=load_id,
                    problem=problem,
                )
            )
            continue
        if finding.status == Finding.Status.FIXED:  # said fixed, found again
            transitions.append(finding_mark_reopened(finding, by=source, now=now))
        _finding_refresh(finding, message_uuid=message_uuid, detail=detail, verdict=verdict, run=run, now=now)
        changed.append(finding)
    for finding in standing.values():  # checked, and no problem now
        resolution = dict((resolutions or {}).get(finding.key) or {})
        by = str(resolution.pop("resolved_by", source))
        transitions.append(finding_mark_resolved(finding, by=by, now=now, detail=resolution))
        changed.append(finding)
    _findings_save(new, changed, ["uuid", *SYNCED_FIELDS], transitions)
    resolved = sum(1 for f in changed if f.status == Finding.Status.RESOLVED)
    return {"new": len(new), "updated": len(changed) - resolved, "resolved": resolved}


def _finding_refresh(
    finding: Finding, *, message_uuid: uuid.UUID | None, detail: dict, verdict: Verdict, run: ReconRun | None, now
) -> None:
    """A per-key finding found again: its latest message, detail, verdict and run."""
    finding.uuid, finding.detail, finding.run = message_uuid, detail, run or finding.run
    finding.classification, finding.severity, finding.rule_id = verdict
    finding.updated_at = now


def _standing_by_key(
    *, topic: Topic, category: str, source: str, checked: Sequence[str] | None, keep: Collection[str]
) -> dict[str, Finding]:
    """The source's standing findings of the checked keys (every key when None) but those in `keep`."""
    open_findings = Finding.objects.filter(
        topic=topic,
        category=category,
        status__in=Finding.STANDING,
        detail__source=source,
    )
    if checked is not None:
        open_findings = open_findings.filter(key__in=list(checked))
    kept = set(keep)
    return {f.key: f for f in open_findings if f.key not in kept}
