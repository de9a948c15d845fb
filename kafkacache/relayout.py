"""Moving a cache written before hash tags (kc:rec:<key>, kc:dv:<key>) to the tagged
layout (core.redis_keys), in place, on a standalone Redis.

Run once after upgrading, before the consumers start (docs/deploy.md). Each key moves
in one script call of the writer (kafkacache.cache.relayout_moves) with the same rule
as every write: the source version decides. A tagged record or tombstone the new code
already wrote at an equal or newer version wins, and the old name is dropped; otherwise
the old entry is renamed (its fields, its tombstone's expiry and a re-encryption's rx/rn
come along). Idempotent: a run that stopped leaves only old names still to move, and the
next run finds just those.

The old layout never ran on Redis Cluster (its batch write could not), so the command
refuses one: an old name and its new one would sit in different slots anyway.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from core.cache_records import untagged_scan
from core.clients import is_cluster, redis_client
from kafkacache.cache import relayout_moves

logger = logging.getLogger(__name__)


@dataclass
class RelayoutCounts:
    moved: int = 0
    kept_newer: int = 0  # the tagged layout already held an equal or newer version


def cache_relayout(*, batch: int = 1000, progress: Callable[[RelayoutCounts], None] | None = None) -> RelayoutCounts:
    """Move every record and tombstone of the untagged layout to its tagged name."""
    client = redis_client()
    if is_cluster(client):
        raise RuntimeError("cache_relayout runs on the standalone Redis the old layout was written to")
    counts = RelayoutCounts()
    for page in untagged_scan(client, count=batch):
        for moved in relayout_moves(client, page):
            if moved:
                counts.moved += 1
            else:
                counts.kept_newer += 1
        if progress:
            progress(counts)
    logger.info("cache relayout: %d moved, %d kept newer", counts.moved, counts.kept_newer)
    return counts
