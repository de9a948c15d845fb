"""Reads of topics: the ones a user may see, by name, and who holds which role on one."""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from guardian.models import UserObjectPermission

from recon import access
from recon.models import Topic


def topics_visible(user) -> QuerySet[Topic]:
    return access.topics_visible(user).order_by("name")


def topic_visible(user, *, name: str) -> Topic:
    """A topic by name, 404 for names the user may not see (or that do not exist)."""
    return access.topic_for_view(user, Topic.objects.filter(name=name).first())


@dataclass(frozen=True)
class Member:
    user: User
    role: str  # one of access.TOPIC_ROLES, or "" when the permissions amount to none of them
    permissions: tuple[str, ...]  # the codenames, for the audit trail (pages show the role)


def topic_members(topic: Topic, *, user: User | None = None) -> list[Member]:
    """Everyone (or one person) with an object permission on the topic, by username, with the
    role it amounts to (one query). Superusers hold every topic without a grant and are not listed."""
    rows = UserObjectPermission.objects.filter(
        content_type=ContentType.objects.get_for_model(Topic), object_pk=str(topic.pk)
    )
    if user is not None:
        rows = rows.filter(user=user)
    rows = rows.select_related("user", "permission").order_by("user__username")
    held: dict[int, tuple[User, list[str]]] = {}
    for row in rows:
        held.setdefault(row.user_id, (row.user, []))[1].append(row.permission.codename)
    return [Member(user=u, role=access.role_of(p), permissions=tuple(sorted(p))) for u, p in held.values()]


def topic_member(topic: Topic, user: User) -> Member | None:
    found = topic_members(topic, user=user)
    return found[0] if found else None


def topic_roles_of(user) -> dict[int, str]:
    """The user's own role on each topic granted to them personally, by topic id (one query);
    "" where the permissions amount to no role."""
    rows = UserObjectPermission.objects.filter(
        user=user, content_type=ContentType.objects.get_for_model(Topic)
    ).values_list("object_pk", "permission__codename")
    held: dict[int, list[str]] = {}
    for object_pk, codename in rows:
        held.setdefault(int(object_pk), []).append(codename)
    return {pk: access.role_of(perms) for pk, perms in held.items()}
