"""Which replay delivered a message the reconcile finds missing or altered: part of the verdict."""

import uuid
from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection


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
