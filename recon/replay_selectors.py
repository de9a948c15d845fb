"""Reads about replays: what the pages and the API list, and which replay delivered a message."""

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection
from django.db.models import QuerySet

from recon.models import Replay, ReplayItem, Topic


class ReplayDelivery(NamedTuple):
    replay_id: uuid.UUID
    uuid: uuid.UUID  # the message that got through: the replay's new one, or the original itself


# A replay delivered the original when its item was processed into Redis here (Kafka and
# dead-letter ways), or when the new message it published (audit and source ways) shows
# in the consume ledger with an outcome other than dead. The first such item wins.
_DELIVERED_SQL = """
SELECT DISTINCT ON (i.original_uuid) i.original_uuid, i.replay_id, i.uuid
FROM recon_replayitem i
WHERE i.original_uuid = ANY(%(uuids)s) AND i.uuid IS NOT NULL AND (
    i.outcome IN ('stored', 'deleted', 'invalid')
    OR (i.outcome = 'published' AND EXISTS (
        SELECT 1 FROM recon_consumedmessage c WHERE c.uuid = i.uuid AND c.outcome <> 'dead'
    ))
)
ORDER BY i.original_uuid, i.id
"""


def replays_delivered(uuids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID | None, ReplayDelivery]:
    """For messages that reconciliation finds missing or altered: the replay that delivered each, if any."""
    wanted = list({u for u in uuids if u is not None})
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_DELIVERED_SQL, {"uuids": wanted})
        return {original: ReplayDelivery(replay_id, new) for original, replay_id, new in cursor.fetchall()}


def replays_visible(topics: QuerySet[Topic]) -> QuerySet[Replay]:
    return Replay.objects.filter(topic__in=topics).select_related("topic", "requested_by")


def replay_items(replay: Replay) -> QuerySet[ReplayItem]:
    return ReplayItem.objects.filter(replay=replay).order_by("id")


def replays_stalled(*, now: dt.datetime, stale_seconds: int) -> list[str]:
    """Running replays whose worker went silent, and queued ones nobody picked up."""
    cutoff = now - dt.timedelta(seconds=stale_seconds)
    running = Replay.objects.filter(status=Replay.Status.RUNNING, heartbeat_at__lt=cutoff)
    queued = Replay.objects.filter(status=Replay.Status.QUEUED, created_at__lt=cutoff)
    return [str(pk) for pk in (running | queued).values_list("pk", flat=True)[:100]]
