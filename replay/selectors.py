"""Reads about replays: what the pages and the API list. (Which replay delivered a message
the reconcile asks recon.selectors.replays.replays_delivered: it is part of the verdict.)"""

from django.db.models import QuerySet
from django.utils import timezone

from recon import access
from recon.models import Replay, ReplayItem, Topic


def replays_visible(topics: QuerySet[Topic]) -> QuerySet[Replay]:
    return Replay.objects.filter(topic__in=topics).select_related("topic", "requested_by")


def replay_items(replay: Replay) -> QuerySet[ReplayItem]:
    return ReplayItem.objects.filter(replay=replay).order_by("id")


def replay_for_view(user, replay_id) -> Replay:
    """The one rule for showing a replay (pages and API alike): its topic's view
    permission (an outsider gets 404, as for an unknown id; recon.access)."""
    replay = Replay.objects.select_related("topic", "requested_by").filter(pk=replay_id).first()
    access.topic_for_view(user, replay.topic if replay else None)
    assert replay is not None  # topic_for_view raised Http404 otherwise
    return replay


def replays_awaiting(user) -> QuerySet[Replay]:
    """The requests waiting for an approval this user may give, oldest first: pending, not
    expired, on a topic they operate (replay.services.approval's rule), never their own.
    One query with the topics as a subquery (the header counts it on every page)."""
    pending = Replay.objects.filter(
        status=Replay.Status.PENDING,
        expires_at__gt=timezone.now(),
        topic__in=access.topics_operable(user),
    )
    if user.pk is not None:
        pending = pending.exclude(requested_by_id=user.pk)
    return pending.select_related("topic", "requested_by").order_by("created_at", "pk")
