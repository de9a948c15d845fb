"""A finding's lifecycle: the one table of its transitions, one function per transition a person
makes, and the transitions the checks make in bulk. Nothing else sets a finding's status.

People (each checks operate permission on the finding's topic: outsider 404, viewer
403 with the refusal in the audit trail; each is a conditional update, so two
people acting at once end with one winner and one clear 409; each writes a
FindingTransition and an operator action in the same transaction):

    finding_assign       owner := a person and/or a team (a Group), in any state but RESOLVED
    finding_acknowledge  OPEN | REOPENED                          -> ACKNOWLEDGED
    finding_investigate  OPEN | ACKNOWLEDGED | REOPENED           -> INVESTIGATING
    finding_fix          OPEN | ACKNOWLEDGED | INVESTIGATING | REOPENED -> FIXED
    finding_accept       any unresolved or FIXED, with a reason code -> ACCEPTED
    finding_reopen       ACKNOWLEDGED | INVESTIGATING | FIXED | ACCEPTED | RESOLVED -> REOPENED
    finding_comment      adds to the thread (no state change)

The checks (reconcile, cache leg, validation, replays) change many findings per batch:
`finding_mark_resolved` / `finding_mark_reopened` apply the same table (TRANSITIONS) in
memory and answer the history row to insert with the caller's bulk update.
"""

import datetime as dt
import logging

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from config.errors import AppError, Conflict
from recon import access
from recon.models import Finding, FindingComment, FindingTransition, ReasonCode
from recon.services.actions import operator_action_record

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
    """A check no longer finds the finding's problem (or a replay delivered it): RESOLVED, i.e. verified.

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
    """A check finds again a finding that was fixed or resolved by a check: REOPENED."""
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


logger = logging.getLogger(__name__)

# The audit trail's action names ("acknowledge" is the name it has always had).
ACTION_NAMES = {"acknowledge": "acknowledge"}


def _audit_name(action: str) -> str:
    return ACTION_NAMES.get(action, f"finding.{action}")


def finding_operate_check(finding: Finding, user, action: str) -> None:
    """Operate permission on the finding's topic (outsider 404, viewer 403); a refusal goes in the audit trail."""
    try:
        access.topic_for_operate(user, finding.topic)
    except PermissionDenied:
        operator_action_record(
            user=user,
            action=_audit_name(action),
            topic=finding.topic,
            target=f"finding:{finding.pk}",
            outcome="refused",
        )
        raise


def _transition(
    *,
    finding: Finding,
    user,
    action: str,
    comment: str = "",
    reason_code: ReasonCode | None = None,
    updates: dict | None = None,
    detail: dict | None = None,
) -> Finding:
    """A person's transition: permission, conditional update, history, thread, audit trail."""
    finding_operate_check(finding, user, action)
    sources, to = TRANSITIONS[action]
    comment = (comment or "").strip()
    now = timezone.now()
    with transaction.atomic():
        current = Finding.objects.select_for_update().filter(pk=finding.pk).values_list("status", flat=True).first()
        changed = Finding.objects.filter(pk=finding.pk, status__in=sources).update(
            status=to, status_changed_at=now, updated_at=now, **(updates or {})
        )
        if changed != 1:
            raise Conflict(
                f"Finding {finding.pk} is {current}: '{action}' is allowed from {', '.join(sources)} only.",
                details={"status": current, "action": action, "allowed_from": list(sources)},
            )
        FindingTransition.objects.create(
            finding=finding,
            action=action,
            from_status=current or "",
            to_status=to,
            user=user,
            reason_code=reason_code,
            detail={**(detail or {}), **({"comment": comment} if comment else {})},
            at=now,
        )
        if comment:
            FindingComment.objects.create(finding=finding, user=user, text=comment[:4000])
        operator_action_record(
            user=user,
            action=_audit_name(action),
            topic=finding.topic,
            target=f"finding:{finding.pk}",
            detail={
                "category": finding.category,
                "from": current,
                "to": str(to),
                **({"comment": comment} if comment else {}),
                **({"reason_code": reason_code.code} if reason_code else {}),
                **(detail or {}),
            },
        )
    finding.refresh_from_db()
    return finding


def finding_acknowledge(*, finding: Finding, user, comment: str) -> Finding:
    """An operator of the finding's topic takes note of it, with a comment."""
    comment = (comment or "").strip()
    return _transition(
        finding=finding,
        user=user,
        action="acknowledge",
        comment=comment,
        updates={"acknowledged_by": user, "comment": comment},
    )


def finding_investigate(*, finding: Finding, user, comment: str = "") -> Finding:
    return _transition(finding=finding, user=user, action="investigate", comment=comment)


def finding_fix(*, finding: Finding, user, comment: str = "") -> Finding:
    """Someone says the cause is fixed; the next check that no longer finds it resolves it (verified)."""
    return _transition(finding=finding, user=user, action="fix", comment=comment)


def finding_accept(*, finding: Finding, user, reason_code: str, comment: str = "") -> Finding:
    """Accepted as-is: the difference stands, for a reason from the configured list."""
    finding_operate_check(finding, user, "accept")
    code = ReasonCode.objects.filter(code=str(reason_code or "").strip(), enabled=True).first()
    if code is None:
        operator_action_record(
            user=user,
            action=_audit_name("accept"),
            topic=finding.topic,
            target=f"finding:{finding.pk}",
            detail={"reason_code": str(reason_code)[:64]},
            outcome="refused: unknown reason code",
        )
        raise AppError(
            "Choose a reason code from the list.",
            code="bad_reason_code",
            details={"reason_code": str(reason_code)[:64], "known": reason_codes_enabled()},
        )
    return _transition(
        finding=finding, user=user, action="accept", comment=comment, reason_code=code, updates={"reason_code": code}
    )


def finding_reopen(*, finding: Finding, user, comment: str) -> Finding:
    if not (comment or "").strip():
        finding_operate_check(finding, user, "reopen")
        raise AppError("Say why the finding is reopened.", code="comment_required")
    return _transition(finding=finding, user=user, action="reopen", comment=comment, updates={"reason_code": None})


def finding_assign(*, finding: Finding, user, assignee=None, group: Group | None = None, comment: str = "") -> Finding:
    """Give the finding an owner: a person who may see its topic, a team, or both (None, None: nobody)."""
    finding_operate_check(finding, user, "assign")
    if assignee is not None and not access.can_view(assignee, finding.topic):
        raise AppError(
            f"{assignee.username} may not see {finding.topic.name}: grant them the topic first.",
            code="bad_assignee",
        )
    if finding.status == S.RESOLVED:
        raise Conflict(f"Finding {finding.pk} is resolved: reopen it first.", details={"status": finding.status})
    comment = (comment or "").strip()
    now = timezone.now()
    with transaction.atomic():
        changed = (
            Finding.objects.filter(pk=finding.pk)
            .exclude(status=S.RESOLVED)
            .update(assigned_user=assignee, assigned_group=group, assigned_at=now, updated_at=now)
        )
        if changed != 1:
            raise Conflict(f"Finding {finding.pk} is resolved: reopen it first.")
        detail = {
            "assignee": assignee.username if assignee is not None else None,
            "group": group.name if group is not None else None,
            "previous_assignee": finding.assigned_user.username if finding.assigned_user else None,
            "previous_group": finding.assigned_group.name if finding.assigned_group else None,
        }
        FindingTransition.objects.create(
            finding=finding,
            action="assign",
            from_status=finding.status,
            to_status=finding.status,
            user=user,
            detail={**detail, **({"comment": comment} if comment else {})},
            at=now,
        )
        if comment:
            FindingComment.objects.create(finding=finding, user=user, text=comment[:4000])
        operator_action_record(
            user=user, action="finding.assign", topic=finding.topic, target=f"finding:{finding.pk}", detail=detail
        )
    finding.refresh_from_db()
    return finding


def finding_comment(*, finding: Finding, user, text: str) -> FindingComment:
    finding_operate_check(finding, user, "comment")
    text = (text or "").strip()
    if not text:
        raise AppError("A comment needs text.", code="comment_required")
    with transaction.atomic():
        comment = FindingComment.objects.create(finding=finding, user=user, text=text[:4000])
        operator_action_record(
            user=user,
            action="finding.comment",
            topic=finding.topic,
            target=f"finding:{finding.pk}",
            detail={"comment": text[:500]},
        )
    return comment


def reason_codes_enabled() -> list[str]:
    return list(ReasonCode.objects.filter(enabled=True).values_list("code", flat=True))
