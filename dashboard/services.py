"""Writes of the dashboard: users and their roles, topic grants, acknowledging findings."""

from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from dashboard.roles import ADMIN, OPERATOR, VIEWER
from recon import access
from recon.models import Finding, Topic
from recon.services import operator_action_record


@transaction.atomic
def user_ensure(*, username: str, password: str, role: str) -> User:
    """Create or reset a user in exactly one role group (admins are also staff)."""
    user, _ = User.objects.get_or_create(username=username)
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


def finding_acknowledge(*, finding: Finding, user, comment: str) -> Finding:
    """An operator of the finding's topic takes note of it, with a comment.

    Outsiders get 404, viewers 403 (and the refusal is in the audit trail). Only an
    OPEN finding can be acknowledged; the conditional update makes two people
    acknowledging at once end with one winner and one clear 409.
    """
    target = f"finding:{finding.pk}"
    try:
        access.topic_for_operate(user, finding.topic)
    except PermissionDenied:
        operator_action_record(user=user, action="acknowledge", topic=finding.topic, target=target, outcome="refused")
        raise
    comment = comment.strip()
    with transaction.atomic():
        changed = Finding.objects.filter(pk=finding.pk, status=Finding.Status.OPEN).update(
            status=Finding.Status.ACKNOWLEDGED, acknowledged_by=user, comment=comment, updated_at=timezone.now()
        )
        if changed != 1:
            raise Conflict(f"Finding {finding.pk} is not open.", details={"status": finding.status})
        operator_action_record(
            user=user,
            action="acknowledge",
            topic=finding.topic,
            target=target,
            detail={"category": finding.category, "comment": comment},
        )
    finding.refresh_from_db()
    return finding
