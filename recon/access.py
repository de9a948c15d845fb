"""Who may see and act on which topic: the one place that asks django-guardian.

Per topic (object permissions):
- recon.view_topic          see the topic, its windows, findings and ledgers
- recon.operate_topic       replay, reprocess, start loads, reconcile, acknowledge
- recon.view_topic_payload  see audit payloads and decrypted cache records

An outsider gets 404 (the topic's existence is not disclosed); a viewer who
tries to act gets 403. Pages hide buttons with the same `can_*` functions.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from recon.models import Topic

VIEW = "recon.view_topic"
OPERATE = "recon.operate_topic"
VIEW_PAYLOAD = "recon.view_topic_payload"

ROLE_PERMS = {
    "viewer": (VIEW,),
    "operator": (VIEW, OPERATE, VIEW_PAYLOAD),
}


def topics_visible(user) -> QuerySet[Topic]:
    if not user.is_authenticated:
        return Topic.objects.none()
    return get_objects_for_user(user, VIEW, klass=Topic, accept_global_perms=True)


def topics_operable(user) -> QuerySet[Topic]:
    if not user.is_authenticated:
        return Topic.objects.none()
    return get_objects_for_user(user, OPERATE, klass=Topic, accept_global_perms=True)


def can_view(user, topic: Topic) -> bool:
    return user.is_authenticated and user.has_perm(VIEW, topic)


def can_operate(user, topic: Topic) -> bool:
    return user.is_authenticated and user.has_perm(OPERATE, topic)


def can_view_payload(user, topic: Topic) -> bool:
    return user.is_authenticated and user.has_perm(VIEW_PAYLOAD, topic)


def topic_for_view(user, topic: Topic | None) -> Topic:
    if topic is None or not can_view(user, topic):
        raise Http404("No such topic.")
    return topic


def topic_for_operate(user, topic: Topic | None) -> Topic:
    topic = topic_for_view(user, topic)
    if not can_operate(user, topic):
        raise PermissionDenied("You may not act on this topic.")
    return topic


def topic_for_payload(user, topic: Topic | None) -> Topic:
    topic = topic_for_view(user, topic)
    if not can_view_payload(user, topic):
        raise PermissionDenied("You may not see payloads of this topic.")
    return topic


def topic_revoke(grantee, topic: Topic) -> None:
    """Take every permission on one topic away from a user or group."""
    for perm in (VIEW, OPERATE, VIEW_PAYLOAD):
        remove_perm(perm, grantee, topic)


def topic_grant(grantee, topic: Topic, role: str) -> None:
    """Give a user or group a role's permissions on one topic (and only those)."""
    for perm in (VIEW, OPERATE, VIEW_PAYLOAD):
        if perm in ROLE_PERMS[role]:
            assign_perm(perm, grantee, topic)
        else:
            remove_perm(perm, grantee, topic)
