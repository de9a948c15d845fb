"""Writes of the dashboard: users and their roles, topic grants, a topic's people."""

from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from knox.models import AuthToken

from config.errors import AppError
from core.usernames import username_normalise
from dashboard.models import DirectoryAccount
from dashboard.roles import ADMIN, OPERATOR, VIEWER
from recon import access
from recon.models import Topic
from recon.selectors.topics import topic_member
from recon.services.actions import operator_action_record


@transaction.atomic
def user_ensure(*, username: str, password: str, role: str) -> User:
    """Create or reset a local user in exactly one role group (admins are also staff).
    A directory account of that name is refused: local and directory accounts stay apart."""
    user, _ = User.objects.get_or_create(username=username_normalise(username))
    if DirectoryAccount.objects.filter(user=user).exists():
        raise AppError(f"{user.username!r} is a directory account: it gets no local password", code="directory_account")
    user.set_password(password)
    user.is_staff = role == ADMIN
    user.is_superuser = role == ADMIN
    user.save()
    # get_or_create: the roles migration made the groups, but a `flush` empties the table.
    user.groups.set([Group.objects.get_or_create(name=role)[0]])
    return user


@transaction.atomic
def demo_grants_ensure(*, viewer: User, operator: User, bulk: Topic, change: Topic) -> None:
    """The demo's object permissions: the viewer sees every topic; the operator acts on
    the bulk topic only and just looks at the change topic ("an operator of A cannot act on B")."""
    for topic in Topic.objects.all():
        access.topic_grant(viewer, topic, VIEWER)
        access.topic_grant(operator, topic, OPERATOR if topic.pk == bulk.pk else VIEWER)
    access.topic_grant(operator, change, VIEWER)


@transaction.atomic
def api_token_create(*, user: User) -> tuple[AuthToken, str]:
    """A personal API token (the API's knox token, API_TOKEN_TTL_DAYS): the secret is answered once,
    only its hash is kept; audited."""
    row, secret = AuthToken.objects.create(user=user)
    operator_action_record(
        user=user, action="token-issue", target=f"user:{user.username}", detail={"token": row.token_key}
    )
    return row, secret


@transaction.atomic
def api_token_revoke(*, user: User, token_key: str) -> None:
    """Revoke one of the user's own tokens (by its shown prefix); audited. Another's token is not found."""
    count, _ = AuthToken.objects.filter(user=user, token_key=token_key).delete()
    if not count:
        raise AppError("No such token of yours.", code="not_found", status_code=404)
    operator_action_record(
        user=user, action="token-revoke", target=f"user:{user.username}", detail={"token": token_key}
    )


def topic_people_check(*, topic: Topic, actor, action: str, member: User | None = None) -> None:
    """Only the topic's admins (and superusers) change its people (outsider 404, anyone else
    403), never their own role (another admin does: nobody locks a topic out by a slip);
    every refusal is in the audit trail."""
    access.topic_for_view(actor, topic)
    refusal = ""
    if not access.can_manage_people(actor, topic):
        refusal = "refused"
    elif member is not None and member.pk == actor.pk and not actor.is_superuser:
        refusal = "refused: own role"
    if refusal:
        target = f"user:{member.username}" if member is not None else ""
        operator_action_record(user=actor, action=action, topic=topic, target=target, outcome=refusal)
        raise PermissionDenied(
            "Another admin of the topic changes your own role."
            if refusal.endswith("own role")
            else "Only the topic's admins change its people."
        )


def topic_member_set(*, topic: Topic, actor, member: User, role: str) -> str:
    """Give `member` exactly one role on the topic (added, or changed from the one they held),
    through recon.access.topic_grant like every other grant; audited with before and after.
    Answers the role held before ("" for nothing, "custom" for permissions given one by one)."""
    topic_people_check(topic=topic, actor=actor, member=member, action="topic.member_set")
    if role not in access.TOPIC_ROLES:
        raise AppError(f"No role {role!r}: one of {', '.join(access.TOPIC_ROLES)}.", code="bad_role")
    if not member.is_active:
        raise AppError(f"{member.username} is inactive: they hold nothing.", code="inactive_user")
    if member.is_superuser:
        raise AppError(f"{member.username} is a superuser: they hold every topic already.", code="superuser")
    # The refusals above stay recorded; the grant and its record commit together.
    with transaction.atomic():
        before = topic_member(topic, member)
        if before is not None and before.role == role:
            return role
        if before is not None and not before.role:
            access.topic_revoke(member, topic)  # permissions given one by one: one role replaces them all
        access.topic_grant(member, topic, role)
        operator_action_record(
            user=actor,
            action="topic.member_set",
            topic=topic,
            target=f"user:{member.username}",
            detail={
                "member": member.username,
                "before": before.role if before is not None else None,
                "after": role,
                **({"before_permissions": list(before.permissions)} if before is not None and not before.role else {}),
            },
        )
    return (before.role or "custom") if before is not None else ""


def topic_member_remove(*, topic: Topic, actor, member: User) -> str:
    """Take every permission on the topic away from `member` (recon.access.topic_revoke);
    audited with the role they held. Answers it as topic_member_set does."""
    topic_people_check(topic=topic, actor=actor, member=member, action="topic.member_remove")
    with transaction.atomic():
        before = topic_member(topic, member)
        if before is None:
            return ""
        access.topic_revoke(member, topic)
        operator_action_record(
            user=actor,
            action="topic.member_remove",
            topic=topic,
            target=f"user:{member.username}",
            detail={
                "member": member.username,
                "before": before.role or None,
                "after": None,
                **({"before_permissions": list(before.permissions)} if not before.role else {}),
            },
        )
    return before.role or "custom"
