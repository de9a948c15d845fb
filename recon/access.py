"""Who may see and act on which topic: the one place that asks django-guardian.

Per topic (object permissions):
- recon.view_topic          see the topic, its windows, findings and ledgers
- recon.operate_topic       replay, reprocess, start loads, reconcile, acknowledge
- recon.view_topic_payload  see audit payloads and decrypted cache records
- recon.export_topic_evidence  download the topic's evidence pack (operators, auditors)

An outsider gets 404 (the topic's existence is not disclosed); a viewer who
tries to act gets 403. Pages hide buttons with the same `can_*` functions.

Only per-topic grants count (and superusers): a global "Can view topic" given in
the admin grants no topic, in lists as on object pages (Django's ModelBackend
ignores global permissions for an object check, so lists must ignore them too, or
lists, CSV and the API would show what the object pages answer 404 for).
"""

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from recon.models import Topic

VIEW = "recon.view_topic"
OPERATE = "recon.operate_topic"
VIEW_PAYLOAD = "recon.view_topic_payload"
EXPORT_EVIDENCE = "recon.export_topic_evidence"

ROLE_PERMS = {
    "viewer": (VIEW,),
    "operator": (VIEW, OPERATE, VIEW_PAYLOAD, EXPORT_EVIDENCE),
    "auditor": (VIEW, EXPORT_EVIDENCE),  # reads everything of the topic and takes the evidence away
}


def topics_visible(user) -> QuerySet[Topic]:
    if not user.is_authenticated:
        return Topic.objects.none()
    return get_objects_for_user(user, VIEW, klass=Topic, accept_global_perms=False)


def topics_operable(user) -> QuerySet[Topic]:
    if not user.is_authenticated:
        return Topic.objects.none()
    return get_objects_for_user(user, OPERATE, klass=Topic, accept_global_perms=False)


def topics_payload(user) -> QuerySet[Topic]:
    """Topics whose payloads (decrypted records, audit payloads, retrieval keys) the user may read."""
    if not user.is_authenticated:
        return Topic.objects.none()
    return get_objects_for_user(user, VIEW_PAYLOAD, klass=Topic, accept_global_perms=False)


def partitions_visible(user, partitions: list[dict]) -> list[dict]:
    """The entries of a rebalance's partition list ({"topic": ...}) of topics the user may see:
    a consumer group can hold other topics' partitions too."""
    names = set(topics_visible(user).values_list("name", flat=True))
    return [p for p in partitions if isinstance(p, dict) and p.get("topic") in names]


def topics_with_payload(user) -> QuerySet[Topic]:
    """Topics whose decrypted payloads the user may see."""
    if not user.is_authenticated:
        return Topic.objects.none()
    return get_objects_for_user(user, VIEW_PAYLOAD, klass=Topic, accept_global_perms=True)


def can_view(user, topic: Topic) -> bool:
    return user.is_authenticated and user.has_perm(VIEW, topic)


def can_operate(user, topic: Topic) -> bool:
    return user.is_authenticated and user.has_perm(OPERATE, topic)


def can_view_payload(user, topic: Topic) -> bool:
    return user.is_authenticated and user.has_perm(VIEW_PAYLOAD, topic)


def can_export_evidence(user, topic: Topic) -> bool:
    return user.is_authenticated and user.has_perm(EXPORT_EVIDENCE, topic)


def topics_exportable(user) -> QuerySet[Topic]:
    if not user.is_authenticated:
        return Topic.objects.none()
    return get_objects_for_user(user, EXPORT_EVIDENCE, klass=Topic, accept_global_perms=True)


def topic_for_view(user, topic: Topic | None) -> Topic:
    if topic is None or not can_view(user, topic):
        raise Http404("No such topic.")
    return topic


def topic_for_operate(user, topic: Topic | None) -> Topic:
    topic = topic_for_view(user, topic)
    if not can_operate(user, topic):
        raise PermissionDenied("You may not act on this topic.")
    return topic


def topic_for_evidence(user, topic: Topic | None) -> Topic:
    topic = topic_for_view(user, topic)
    if not can_export_evidence(user, topic):
        raise PermissionDenied("You may not export the evidence of this topic.")
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
    for perm in (VIEW, OPERATE, VIEW_PAYLOAD, EXPORT_EVIDENCE):
        if perm in ROLE_PERMS[role]:
            assign_perm(perm, grantee, topic)
        else:
            remove_perm(perm, grantee, topic)
