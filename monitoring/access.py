"""Who may see and change alert rules and silences: the rule's topic decides (recon.access).

A rule or silence of one topic is seen by whoever sees the topic and changed by
whoever operates it; one over every topic (topic empty) is seen by everyone
logged in and changed by staff only. An outsider gets 404, a viewer who tries to
change one 403.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from monitoring.models import AlertRule, Silence
from recon import access
from recon.models import Topic


def rules_visible(user) -> QuerySet[AlertRule]:
    if not user.is_authenticated:
        return AlertRule.objects.none()
    return AlertRule.objects.filter(Q(topic__isnull=True) | Q(topic__in=access.topics_visible(user))).select_related(
        "topic"
    )


def silences_visible(user) -> QuerySet[Silence]:
    if not user.is_authenticated:
        return Silence.objects.none()
    return Silence.objects.filter(Q(topic__isnull=True) | Q(topic__in=access.topics_visible(user))).select_related(
        "topic", "rule", "created_by"
    )


def scope_can_change(user, topic: Topic | None) -> bool:
    if topic is None:
        return bool(user.is_authenticated and user.is_staff)
    return access.can_operate(user, topic)


def scope_for_change(user, topic: Topic | None) -> Topic | None:
    """The topic a rule or silence is about, if the user may change things there."""
    if topic is not None:
        return access.topic_for_operate(user, topic)
    if not scope_can_change(user, None):
        raise PermissionDenied("Only staff may change what covers every topic.")
    return None


def rule_for_view(user, rule: AlertRule | None) -> AlertRule:
    if rule is None or not rules_visible(user).filter(pk=rule.pk).exists():
        raise Http404("No such alert rule.")
    return rule


def rule_for_change(user, rule: AlertRule | None) -> AlertRule:
    rule = rule_for_view(user, rule)
    scope_for_change(user, rule.topic)
    return rule


def silence_for_change(user, silence: Silence | None) -> Silence:
    if silence is None or not silences_visible(user).filter(pk=silence.pk).exists():
        raise Http404("No such silence.")
    scope_for_change(user, silence.topic)
    return silence
