"""Who may see and act on which topic: the one place that asks django-guardian.

Per topic (object permissions):
- recon.view_topic          see the topic, its windows, findings and ledgers
- recon.operate_topic       replay, reprocess, start loads, reconcile, acknowledge
- recon.view_topic_payload  see audit payloads and decrypted cache records
- recon.export_topic_evidence  download the topic's evidence pack (operators, auditors)
- recon.manage_topic_people    give people their role on the topic (the topic's admins)

An outsider gets 404 (the topic's existence is not disclosed); a viewer who
tries to act gets 403. Pages hide buttons with the same `can_*` functions.

Only per-topic grants count (and active superusers): a global permission given in
the admin ("Can view topic", "Can see audit payloads", ...) grants no topic,
anywhere: lists, object pages, the cache API, exports, the admin site
(recon.admin_access). Each question has one function for one topic (`can_*`) and
one for the list (`topics_*`), and they answer alike: guardian's object check
reads object permissions only (never a backend's global ones), the lists ask
guardian with accept_global_perms=False. Every permission but view counts only
together with view, as the object pages require (`topic_for_*`). An inactive
user holds nothing (a session of a backend that does not check it included).
"""

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from recon.models import Topic

VIEW = "recon.view_topic"
OPERATE = "recon.operate_topic"
VIEW_PAYLOAD = "recon.view_topic_payload"
EXPORT_EVIDENCE = "recon.export_topic_evidence"
MANAGE_PEOPLE = "recon.manage_topic_people"
TOPIC_PERMS = (VIEW, OPERATE, VIEW_PAYLOAD, EXPORT_EVIDENCE, MANAGE_PEOPLE)

ROLE_PERMS = {
    "viewer": (VIEW,),
    "operator": (VIEW, OPERATE, VIEW_PAYLOAD, EXPORT_EVIDENCE),
    "auditor": (VIEW, EXPORT_EVIDENCE),  # reads everything of the topic and takes the evidence away
    "admin": (VIEW, OPERATE, VIEW_PAYLOAD, EXPORT_EVIDENCE, MANAGE_PEOPLE),  # an operator who also gives roles
}
TOPIC_ROLES = tuple(ROLE_PERMS)


def role_of(perms) -> str:
    """The role a set of one topic's permission codenames (with or without "recon.") amounts
    to, or "" when it is none of them (permissions given one by one in the admin)."""
    held = {p if "." in p else f"recon.{p}" for p in perms}
    return next((role for role, granted in ROLE_PERMS.items() if held == set(granted)), "")


def _active(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _topics(user, perm: str) -> QuerySet[Topic]:
    if not _active(user):
        return Topic.objects.none()
    granted = get_objects_for_user(user, perm, klass=Topic, accept_global_perms=False)
    if perm == VIEW or user.is_superuser:
        return granted
    return granted.filter(pk__in=get_objects_for_user(user, VIEW, klass=Topic, accept_global_perms=False))


def _can(user, perm: str, topic: Topic) -> bool:
    if not _active(user):
        return False
    checker = ObjectPermissionChecker(user)  # caches the topic's permissions: one query for both checks
    return checker.has_perm(VIEW, topic) and checker.has_perm(perm, topic)


def topics_visible(user) -> QuerySet[Topic]:
    return _topics(user, VIEW)


def topics_operable(user) -> QuerySet[Topic]:
    return _topics(user, OPERATE)


def topics_payload(user) -> QuerySet[Topic]:
    """Topics whose payloads (decrypted records, audit payloads, retrieval keys) the user may read."""
    return _topics(user, VIEW_PAYLOAD)


def topics_exportable(user) -> QuerySet[Topic]:
    return _topics(user, EXPORT_EVIDENCE)


def partitions_visible(user, partitions: list[dict]) -> list[dict]:
    """The entries of a rebalance's partition list ({"topic": ...}) of topics the user may see:
    a consumer group can hold other topics' partitions too."""
    names = set(topics_visible(user).values_list("name", flat=True))
    return [p for p in partitions if isinstance(p, dict) and p.get("topic") in names]


def can_view(user, topic: Topic) -> bool:
    return _can(user, VIEW, topic)


def can_operate(user, topic: Topic) -> bool:
    return _can(user, OPERATE, topic)


def can_view_payload(user, topic: Topic) -> bool:
    return _can(user, VIEW_PAYLOAD, topic)


def can_export_evidence(user, topic: Topic) -> bool:
    return _can(user, EXPORT_EVIDENCE, topic)


def can_manage_people(user, topic: Topic) -> bool:
    return _can(user, MANAGE_PEOPLE, topic)


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


def topic_revoke(grantee, topic: Topic) -> int:
    """Take every object permission on one topic away from a user or group: the four of
    TOPIC_PERMS and any other the admin's object-permission page may have given. Answers
    how many were taken."""
    group = not hasattr(grantee, "username")
    model = get_group_obj_perms_model(topic) if group else get_user_obj_perms_model(topic)
    # A queryset delete sends post_delete per row: recon.services.grants records each revoke with who made it.
    deleted, _ = model._default_manager.filter(
        **{"group" if group else "user": grantee},
        content_type=ContentType.objects.get_for_model(Topic),
        object_pk=str(topic.pk),
    ).delete()
    return deleted


def topic_grant(grantee, topic: Topic, role: str) -> None:
    """Give a user or group a role's permissions on one topic (and only those)."""
    for perm in TOPIC_PERMS:
        if perm in ROLE_PERMS[role]:
            assign_perm(perm, grantee, topic)
        else:
            remove_perm(perm, grantee, topic)
