"""Writes of the dashboard: users and their roles, topic grants."""

from django.contrib.auth.models import Group, User
from django.db import transaction
from knox.models import AuthToken

from config.errors import AppError
from core.usernames import username_normalise
from dashboard.models import DirectoryAccount
from dashboard.roles import ADMIN, OPERATOR, VIEWER
from recon import access
from recon.models import Topic
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
