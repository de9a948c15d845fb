"""Tags behind the governance partials (_ageing.html, _finding_lifecycle.html, _lag_status.html).

They read through the same selectors and access checks as the pages, with the
user from the request, so a page includes a partial with one line.
"""

from django import template
from django.utils import timezone

from core.masking import mask_text
from monitoring.selectors import lag_statuses
from recon import access
from recon.models import FindingComment, FindingTransition, ReasonCode
from recon.selectors.findings import findings_ageing
from recon.services.finding_lifecycle import allowed

register = template.Library()


@register.simple_tag(takes_context=True)
def ageing_for(context) -> list[dict]:
    user = context["request"].user
    return findings_ageing(topics=access.topics_visible(user), now=timezone.now())


@register.simple_tag(takes_context=True)
def break_of(context, finding) -> dict:
    """A finding's owner, history and thread as the user may see them, and what they may do."""
    user = context["request"].user
    clear = access.can_view_payload(user, finding.topic)
    comments = list(FindingComment.objects.filter(finding=finding).select_related("user"))
    for c in comments:
        c.shown = c.text if clear else mask_text(c.text)  # type: ignore[attr-defined]
    history = list(FindingTransition.objects.filter(finding=finding).select_related("user", "reason_code"))
    status = finding.status
    return {
        "can_operate": access.can_operate(user, finding.topic),
        "next": next_step(finding, context.get("replayable", ())),
        # What else the transition table allows from here (the page shows it as secondary).
        "may": {
            action: allowed(action, status) for action in ("acknowledge", "investigate", "fix", "accept", "reopen")
        },
        "mine": finding.assigned_user_id is not None and finding.assigned_user_id == user.pk,
        "comments": comments,
        "history": history,
        "reason_codes": list(ReasonCode.objects.filter(enabled=True)),
    }


SECONDARY = ("acknowledge", "investigate", "fix", "accept", "reopen")
NEXT_TRANSITION = {
    "open": "acknowledge",
    "reopened": "acknowledge",
    "acknowledged": "investigate",
    "investigating": "fix",
}


def next_step(finding, replayable) -> str:
    """The one primary action of the finding page for the finding's state: the repair while
    it is not in hand (a replay or reprocess resolves it, verified), else the lifecycle's next
    transition; "" when the next step is a check's (fixed: the next reconcile verifies it)."""
    status, category = finding.status, finding.category
    if status in ("open", "reopened", "acknowledged", "investigating"):
        if category == "dead-lettered":
            return "reprocess"
        if finding.uuid and category in replayable:
            return "replay"
    return {
        "open": "acknowledge",
        "reopened": "acknowledge",
        "acknowledged": "investigate",
        "investigating": "fix",
    }.get(status, "")


@register.simple_tag(takes_context=True)
def lag_status_for(context) -> list:
    user = context["request"].user
    return lag_statuses(topics=access.topics_visible(user), now=timezone.now())
