"""Four eyes on replays: which requests wait for a second operator, approval, rejection, expiry; the guard.

A request waits (Replay.Status.PENDING) when its topic says so: `approval_always`,
or more messages than `approval_threshold`, counting with it what the same person asked
for on the topic without a second operator in the last REPLAY_APPROVAL_WINDOW_HOURS
(splitting a request does not avoid the second pair of eyes). A second operator of the topic
approves it (it is queued and runs) or rejects it; the requester can never approve
or reject their own. A pending request expires after REPLAY_APPROVAL_HOURS
(recon.tasks.replay_approvals_expire). Each of these is an operator action naming
both people. Nothing pending can run: replay.services.runs.replay_run claims QUEUED only.

The replay guard: a message already replayed REPLAY_MAX_PER_MESSAGE times is
refused (named in the request's error for a messages scope; skipped, with the
reason, when a wider scope reaches it: replay.ways.common.originals_of).
"""

import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from config.errors import AppError, Conflict
from core.jobs import job_enqueue
from recon import access
from recon.models import Finding, PublishedMessage, Replay, Topic, Window
from recon.services.actions import operator_action_record
from replay.services.runs import REPLAY_RUN

logger = logging.getLogger(__name__)

Scope, Way = Replay.Scope, Replay.Way


def replay_size(*, topic: Topic, way: str, scope: str, target: dict) -> int:
    """How many messages (offsets, keys, dead letters) a clean target names, counted up to the replay limit + 1."""
    cap = settings.REPLAY_MAX_MESSAGES + 1
    if scope == Scope.MESSAGES:
        return len(target["uuids"])
    if scope == Scope.CLIENTS:
        return len(target["keys"])
    if scope == Scope.FINDINGS:
        return len(target["findings"])
    if scope == Scope.OFFSETS:
        return target["end_offset"] - target["start_offset"] + 1
    if way == Way.DEAD_LETTER:  # a range of dead letters
        found = Finding.objects.filter(
            topic=topic,
            category=Finding.Category.DEAD_LETTERED,
            created_at__gte=target["start"],
            created_at__lt=target["end"],
        ).exclude(status=Finding.Status.RESOLVED)
        return found[:cap].count()
    rows = PublishedMessage.objects.filter(topic=topic)
    if scope == Scope.WINDOW:
        window = Window.objects.get(pk=target["window"])
        rows = rows.filter(published_at__gte=window.start, published_at__lt=window.end)
    elif scope == Scope.RANGE:
        rows = rows.filter(published_at__gte=target["start"], published_at__lt=target["end"])
    else:  # LOAD
        rows = rows.filter(load_id=target["load"])
    return rows[:cap].count()


def approval_needed(*, topic: Topic, size: int, requested_by, now: dt.datetime) -> bool:
    """Whether a request of `size` messages waits for a second operator: counted over the
    requester's requests on the topic that ran without one in the last
    REPLAY_APPROVAL_WINDOW_HOURS, so one large replay split into small ones is caught at the
    request that crosses the threshold. The caller holds the topic's row lock (two requests
    at once must not both count without the other)."""
    if topic.approval_always:
        return True
    if topic.approval_threshold is None:
        return False
    earlier = Replay.objects.filter(
        topic=topic,
        needs_approval=False,
        created_at__gte=now - dt.timedelta(hours=settings.REPLAY_APPROVAL_WINDOW_HOURS),
    )
    if requested_by is not None and requested_by.is_authenticated:
        earlier = earlier.filter(requested_by=requested_by)
    else:
        earlier = earlier.filter(requested_by__isnull=True)
    alone = earlier.aggregate(total=Sum("size"))["total"] or 0
    return alone + size > topic.approval_threshold


def _names(replay: Replay, decider) -> dict:
    return {
        "requested_by": replay.requested_by.username if replay.requested_by else None,
        "decided_by": decider.username if decider is not None and decider.is_authenticated else None,
    }


def _decidable(replay: Replay, user, action: str) -> None:
    """Operate permission on the topic (outsider 404, viewer 403), never the requester: all refusals recorded."""
    access.topic_for_view(user, replay.topic)
    refusal = ""
    if not access.can_operate(user, replay.topic):
        refusal = "refused"
    elif replay.requested_by_id is not None and replay.requested_by_id == user.pk:
        refusal = "refused: own request"
    if refusal:
        operator_action_record(
            user=user,
            action=action,
            topic=replay.topic,
            target=f"replay:{replay.pk}",
            detail=_names(replay, user),
            outcome=refusal,
        )
        raise PermissionDenied(
            "A second operator must approve: you asked for this replay."
            if refusal.endswith("own request")
            else "You may not act on this topic."
        )


def replay_approve(*, replay: Replay, user, comment: str = "") -> Replay:
    """A second operator of the topic approves a pending request: it is queued and runs."""
    _decidable(replay, user, "replay.approve")
    if replay.expires_at is not None and replay.expires_at <= timezone.now():
        replay_approvals_expire()
        raise Conflict(f"Replay {replay.pk} expired before it was approved.", details={"status": "expired"})
    now = timezone.now()
    with transaction.atomic():
        changed = Replay.objects.filter(pk=replay.pk, status=Replay.Status.PENDING, expires_at__gt=now).update(
            status=Replay.Status.QUEUED, decided_by=user, decided_at=now, decision_comment=(comment or "")[:2000]
        )
        if changed != 1:
            raise Conflict(f"Replay {replay.pk} is not awaiting approval.", details={"status": replay.status})
        operator_action_record(
            user=user,
            action="replay.approve",
            topic=replay.topic,
            target=f"replay:{replay.pk}",
            detail={**_names(replay, user), "comment": (comment or "")[:500], "size": replay.size},
            outcome="approved: queued",
        )
        job_enqueue(REPLAY_RUN, str(replay.pk))
    replay.refresh_from_db()
    return replay


def replay_reject(*, replay: Replay, user, comment: str) -> Replay:
    comment = (comment or "").strip()
    _decidable(replay, user, "replay.reject")
    if not comment:
        raise AppError("Say why the replay is rejected.", code="comment_required")
    now = timezone.now()
    with transaction.atomic():
        changed = Replay.objects.filter(pk=replay.pk, status=Replay.Status.PENDING).update(
            status=Replay.Status.REJECTED,
            decided_by=user,
            decided_at=now,
            decision_comment=comment[:2000],
            finished_at=now,
        )
        if changed != 1:
            raise Conflict(f"Replay {replay.pk} is not awaiting approval.", details={"status": replay.status})
        operator_action_record(
            user=user,
            action="replay.reject",
            topic=replay.topic,
            target=f"replay:{replay.pk}",
            detail={**_names(replay, user), "comment": comment[:500]},
            outcome="rejected",
        )
    replay.refresh_from_db()
    return replay


def replay_approvals_expire(*, now: dt.datetime | None = None) -> int:
    """Pending requests past their expiry: EXPIRED, each recorded with the requester's name."""
    now = now or timezone.now()
    expired = 0
    for replay in Replay.objects.filter(status=Replay.Status.PENDING, expires_at__lte=now).select_related(
        "topic", "requested_by"
    ):
        with transaction.atomic():
            if not Replay.objects.filter(pk=replay.pk, status=Replay.Status.PENDING).update(
                status=Replay.Status.EXPIRED, finished_at=now
            ):
                continue  # approved or rejected meanwhile
            operator_action_record(
                user=None,
                action="replay.expire",
                topic=replay.topic,
                target=f"replay:{replay.pk}",
                detail={
                    **_names(replay, None),
                    "expires_at": replay.expires_at.isoformat() if replay.expires_at else None,
                },
                outcome="expired: nobody approved it",
            )
        expired += 1
        logger.info("replay %s expired unapproved", replay.pk)
    return expired


def approval_deadline(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(hours=settings.REPLAY_APPROVAL_HOURS)
