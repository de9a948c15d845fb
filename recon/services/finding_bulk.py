"""One action on many findings at once (the findings list's bulk form): each finding goes
through its own lifecycle service (recon.services.finding_lifecycle), so each is
permission-checked, conditionally updated and audited on its own, exactly as if it were
clicked on its page; what one finding refuses never stops the others. The answer counts
what was done and, by reason, what was refused."""

from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404

from config.errors import AppError, Conflict
from recon import access
from recon.models import Finding
from recon.services import finding_lifecycle
from recon.services.actions import operator_action_record

BULK_MAX = 500  # findings per click: each is its own transaction and audit row
ACTIONS = ("assign", "accept", "comment", "acknowledge")
NOT_FOUND = "no such finding"


@dataclass
class BulkOutcome:
    done: int = 0
    refused: Counter = field(default_factory=Counter)  # reason -> findings

    def summary(self) -> str:
        """ "3 done, 2 refused: you may not act on its topic (2)" """
        text = f"{self.done} done"
        if self.refused:
            why = "; ".join(f"{reason} ({n})" for reason, n in self.refused.most_common())
            text += f", {sum(self.refused.values())} refused: {why}"
        return text


def _one(finding: Finding, *, user, action: str, assignee, reason_code: str, comment: str) -> None:
    if action == "assign":
        # A person is given; the team the finding has stays.
        finding_lifecycle.finding_assign(
            finding=finding, user=user, assignee=assignee, group=finding.assigned_group, comment=comment
        )
    elif action == "accept":
        finding_lifecycle.finding_accept(finding=finding, user=user, reason_code=reason_code, comment=comment)
    elif action == "comment":
        finding_lifecycle.finding_comment(finding=finding, user=user, text=comment)
    else:
        finding_lifecycle.finding_acknowledge(finding=finding, user=user, comment=comment)


def findings_bulk_check(*, user) -> None:
    """Someone who operates no topic at all may not use the bulk form (403, recorded), before
    anything of the post is read: their ticks could only ever be refused."""
    if not access.topics_operable(user).exists():
        operator_action_record(user=user, action="finding.bulk", outcome="refused")
        raise PermissionDenied("You may not act on any topic's findings.")


def findings_bulk_act(
    *,
    user,
    ids: list[int],
    action: str,
    assignee: User | None = None,
    reason_code: str = "",
    comment: str = "",
) -> BulkOutcome:
    """`action` (one of ACTIONS) on each of `ids` (at most BULK_MAX) through its own service.
    A finding the user may not see counts as "no such finding" (its existence is not disclosed)."""
    findings_bulk_check(user=user)
    if action not in ACTIONS:
        raise AppError(f"No bulk action {action!r}: one of {', '.join(ACTIONS)}.", code="bad_action")
    ids = list(dict.fromkeys(ids))
    if len(ids) > BULK_MAX:
        raise AppError(f"At most {BULK_MAX} findings at once ({len(ids)} selected).", code="too_many")
    found = {
        f.pk: f
        for f in Finding.objects.filter(pk__in=ids, topic__in=access.topics_visible(user)).select_related(
            "topic", "assigned_user", "assigned_group"
        )
    }
    outcome = BulkOutcome()
    for pk in ids:
        finding = found.get(pk)
        if finding is None:
            outcome.refused[NOT_FOUND] += 1
            continue
        try:
            _one(finding, user=user, action=action, assignee=assignee, reason_code=reason_code, comment=comment)
        except Http404:
            outcome.refused[NOT_FOUND] += 1
        except PermissionDenied:
            outcome.refused["you may not act on its topic"] += 1
        except Conflict:
            outcome.refused["its status does not allow it"] += 1
        except AppError as exc:
            outcome.refused[exc.message.rstrip(".")] += 1
        else:
            outcome.done += 1
    return outcome
