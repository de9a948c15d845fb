"""Reads of what the feed and people did: the feed's rebalances and the operator action trail,
within what the user may see."""

import datetime as dt

from django.db.models import Q, QuerySet

from recon import access
from recon.models import (
    OperatorAction,
    RebalanceEvent,
    Topic,
)
from recon.selectors.lists import in_range


def rebalances_filtered(
    *,
    user,
    group: str = "",
    kind: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[RebalanceEvent]:
    """Rebalances of the consumer groups of the topics the user may see."""
    groups = access.topics_visible(user).values_list("consumer_group", flat=True)
    qs = RebalanceEvent.objects.filter(group__in=groups)
    if group:
        qs = qs.filter(group=group)
    if kind:
        qs = qs.filter(kind=kind)
    qs = in_range(qs, "at", since, until)
    return qs


def actions_filtered(
    *,
    user,
    topic: Topic | None = None,
    action: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[OperatorAction]:
    """The operator audit trail. Actions on no topic (user administration) are for admins."""
    visible = Q(topic__in=access.topics_visible(user))
    if user.is_superuser:
        visible |= Q(topic__isnull=True)
    qs = OperatorAction.objects.filter(visible).select_related("user", "topic")
    if topic is not None:
        qs = qs.filter(topic=topic)
    if action:
        qs = qs.filter(action=action)
    qs = in_range(qs, "at", since, until)
    return qs
