"""The break lifecycle's transition table, and the transitions the checks make in bulk.

recon.breaks holds the people's transitions (one function each); the checks
(reconcile, cache leg, validation, replays: recon.services, replay.requests) change
many breaks per batch and call `finding_mark_resolved` / `finding_mark_reopened`
here, which apply the same table in memory and answer the history row to insert
with the caller's bulk update. Below recon.services, so both can use it.
"""

import datetime as dt

from recon.models import Finding, FindingTransition

S = Finding.Status

# action -> (from which statuses, to which)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": ((S.OPEN, S.REOPENED), S.ACKNOWLEDGED),
    "investigate": ((S.OPEN, S.ACKNOWLEDGED, S.REOPENED), S.INVESTIGATING),
    "fix": ((S.OPEN, S.ACKNOWLEDGED, S.INVESTIGATING, S.REOPENED), S.FIXED),
    "accept": ((*Finding.UNRESOLVED, S.FIXED), S.ACCEPTED),
    "reopen": ((S.ACKNOWLEDGED, S.INVESTIGATING, S.FIXED, S.ACCEPTED, S.RESOLVED), S.REOPENED),
    # the checks
    "resolve": (Finding.STANDING, S.RESOLVED),
    "recur": ((S.FIXED, S.RESOLVED), S.REOPENED),
}


def allowed(action: str, status: str) -> bool:
    return status in TRANSITIONS[action][0]


def finding_mark_resolved(
    finding: Finding, *, by: str, now: dt.datetime, detail: dict | None = None
) -> FindingTransition:
    """A check no longer finds the break (or a replay delivered it): RESOLVED, i.e. verified.

    Sets the fields on `finding` (the caller bulk-updates status, detail, updated_at,
    status_changed_at) and answers the unsaved history row (the caller bulk-inserts it)."""
    if not allowed("resolve", finding.status):
        raise ValueError(f"finding {finding.pk} is {finding.status}: cannot be resolved")
    before = finding.status
    finding.status = S.RESOLVED
    finding.detail = {**finding.detail, "resolved_by": by, **(detail or {}), "resolved_at": now.isoformat()}
    finding.updated_at = finding.status_changed_at = now
    return FindingTransition(
        finding=finding,
        action="resolve",
        from_status=before,
        to_status=S.RESOLVED,
        detail={"by": by, **(detail or {})},
        at=now,
    )


def finding_mark_reopened(finding: Finding, *, by: str, now: dt.datetime) -> FindingTransition:
    """A check finds again a break that was fixed or resolved by a check: REOPENED."""
    if not allowed("recur", finding.status):
        raise ValueError(f"finding {finding.pk} is {finding.status}: cannot recur")
    before = finding.status
    finding.status = S.REOPENED
    finding.detail = {k: v for k, v in finding.detail.items() if k not in ("resolved_by", "resolved_at")}
    finding.updated_at = finding.status_changed_at = now
    return FindingTransition(
        finding=finding, action="recur", from_status=before, to_status=S.REOPENED, detail={"by": by}, at=now
    )


def transitions_save(transitions: list[FindingTransition]) -> None:
    FindingTransition.objects.bulk_create(transitions, batch_size=2000)
