"""Writes of the dashboard: users and their roles, topic grants."""

from django.contrib.auth.models import Group, User
from django.db import transaction

from config.errors import AppError
from core.usernames import username_normalise
from dashboard.models import DirectoryAccount
from dashboard.roles import ADMIN, OPERATOR, VIEWER
from recon import access
from recon.models import Topic


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
