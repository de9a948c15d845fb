"""Moving a cache written before hash tags (kc:rec:<key>, kc:dv:<key>) to the tagged
layout (kc:rec:{<key>}, kc:dv:{<key>}; core.redis_keys), in place, on a standalone Redis.

Run once after upgrading, before the consumers start (docs/deploy.md). Each key moves
in one script call with the same rule as every write: the source version decides. A
tagged record or tombstone the new code already wrote at an equal or newer version
wins, and the old name is dropped; otherwise the old entry is renamed (its fields,
its tombstone's expiry and a re-encryption's rx/rn come along). Idempotent: a run
that stopped leaves only old names still to move, and the next run finds just those.

The old layout never ran on Redis Cluster (its batch write could not), so the command
refuses one: an old name and its new one would sit in different slots anyway.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from core.clients import is_cluster, redis_client
from core.redis_keys import REC_PREFIX, TOMBSTONE_PREFIX, rec_key, tombstone_key, untagged_record_key
from core.redis_scan import scan_pages

logger = logging.getLogger(__name__)

# KEYS old record, new record, new tombstone. 'm': moved; 'k': the new layout held an
# equal or newer version (or a newer delete), the old record dropped.
_RECORD = """
local old = tonumber(redis.call('HGET', KEYS[1], 'sv') or '0')
local held = tonumber(redis.call('HGET', KEYS[2], 'sv') or '0')
local present = redis.call('EXISTS', KEYS[2]) == 1
local tomb = tonumber(redis.call('GET', KEYS[3]) or '0')
if (not present or old > held) and (old > tomb or (old == 0 and tomb == 0)) then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return 'm'
end
redis.call('DEL', KEYS[1])
return 'k'
"""
# KEYS old tombstone, new tombstone, new record.
_TOMBSTONE = """
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
local tomb = tonumber(redis.call('GET', KEYS[2]) or '0')
local held = tonumber(redis.call('HGET', KEYS[3], 'sv') or '0')
if old > tomb and old > held then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('DEL', KEYS[3])  -- a record older than the delete
  return 'm'
end
redis.call('DEL', KEYS[1])
return 'k'
"""


@dataclass
class RelayoutCounts:
    moved: int = 0
    kept_newer: int = 0  # the tagged layout already held an equal or newer version


def cache_relayout(*, batch: int = 1000, progress: Callable[[RelayoutCounts], None] | None = None) -> RelayoutCounts:
    """Move every record and tombstone of the untagged layout to its tagged name."""
    client = redis_client()
    if is_cluster(client):
        raise RuntimeError("cache_relayout runs on the standalone Redis the old layout was written to")
    scripts = {REC_PREFIX: client.register_script(_RECORD), TOMBSTONE_PREFIX: client.register_script(_TOMBSTONE)}
    counts = RelayoutCounts()
    for prefix, script in scripts.items():
        for _position, names in scan_pages(client, match=prefix + "*", count=batch):
            pipe = client.pipeline(transaction=False)
            for name in names:
                key = untagged_record_key(name, prefix)
                if key is None:
                    continue
                new = (rec_key(key), tombstone_key(key)) if prefix == REC_PREFIX else (tombstone_key(key), rec_key(key))
                script(keys=[name, *new], client=pipe)
            for verdict in pipe.execute():
                if verdict == b"m":
                    counts.moved += 1
                else:
                    counts.kept_newer += 1
            if progress:
                progress(counts)
    logger.info("cache relayout: %d moved, %d kept newer", counts.moved, counts.kept_newer)
    return counts
