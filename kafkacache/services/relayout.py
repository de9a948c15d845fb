"""Moving a cache of an older layout to the current one (core.redis_keys), in place: the names
before hash tags (kc:rec:<key>, kc:dv:<key>, standalone Redis only), records of the hash layout.

Run once after upgrading, before the consumers start (docs/deploy.md). Each key moves
in one script call of the writer (kafkacache.cache.relayout_moves) with the same rule
as every write: the source version decides. A tagged record or tombstone the new code
already wrote at an equal or newer version wins, and the old name is dropped; otherwise
the old entry is renamed (its fields, its tombstone's expiry and a re-encryption's rx/rn
come along). Idempotent: a run that stopped leaves only old names still to move, and the
next run finds just those.

The untagged layout never ran on Redis Cluster (its batch write could not), so that step is
skipped on one: an old name and its new one would sit in different slots anyway.

A record of the hash layout before one-value records (core.redis_keys) is made one value
by `records_restring`, which cache_relayout runs after moving (the consumer also rewrites
each such record as one value when it next writes the key; until then every reader reads
it). Run the command once after upgrading; on Redis Cluster it does this step only.

A record written before records kept their topic (`tp`) decrypts for nobody (whose
payload it is cannot be told: kafkacache.selectors.load_records): `cache_topics_set`
sets it from the publish ledger (the topic of the message that wrote it), and
cache_relayout runs it after moving. A record whose message the ledger no longer holds
stays topic-less, counted, until a load or change writes the key again.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from core.cache_records import cache_read, legacy_records_scan, record_keys_scan, untagged_scan
from core.clients import is_cluster, redis_client
from kafkacache.cache import record_topics_set, records_restring, relayout_moves
from recon.models import PublishedMessage

logger = logging.getLogger(__name__)


@dataclass
class RelayoutCounts:
    moved: int = 0
    kept_newer: int = 0  # the tagged layout already held an equal or newer version
    restrung: int = 0  # records of the hash layout made one value
    topics_set: int = 0  # records without a topic given theirs from the publish ledger
    topics_unknown: int = 0  # records without a topic whose message the ledger does not hold


@dataclass
class TopicCounts:
    checked: int = 0
    set: int = 0
    unknown: int = 0  # the publish ledger does not hold the message that wrote it: stays topic-less


def cache_relayout(*, batch: int = 1000, progress: Callable[[RelayoutCounts], None] | None = None) -> RelayoutCounts:
    """Move every record and tombstone of the untagged layout to its tagged name (standalone
    Redis only: that layout never ran on a cluster), then make every record of the hash
    layout one value, then give records without a topic theirs."""
    client = redis_client()
    counts = RelayoutCounts()
    if not is_cluster(client):
        for page in untagged_scan(client, count=batch):
            for moved in relayout_moves(client, page):
                if moved:
                    counts.moved += 1
                else:
                    counts.kept_newer += 1
            if progress:
                progress(counts)
    for keys in legacy_records_scan(client, count=batch):
        counts.restrung += records_restring(client, keys)
        if progress:
            progress(counts)
    topics = cache_topics_set(batch=batch)
    counts.topics_set, counts.topics_unknown = topics.set, topics.unknown
    logger.info(
        "cache relayout: %d moved, %d kept newer, %d made one value", counts.moved, counts.kept_newer, counts.restrung
    )
    return counts


def cache_topics_set(*, batch: int = 1000, progress: Callable[[TopicCounts], None] | None = None) -> TopicCounts:
    """Give every record without its topic the topic of the message that wrote it, from the
    publish ledger (one query and one pipelined write per SCAN page). Idempotent."""
    client = redis_client()
    counts = TopicCounts()
    for _position, keys in record_keys_scan(client, count=batch):
        held = [(key, c) for key, c in zip(keys, cache_read(client, keys), strict=True) if c.value is not None]
        counts.checked += len(held)
        bare = {key: c.uuid for key, c in held if not c.topic}
        if not bare:
            continue
        uuids = {u for u in bare.values() if _is_uuid(u)}
        topics = {
            str(u): name
            for u, name in PublishedMessage.objects.filter(uuid__in=uuids).values_list("uuid", "topic__name")
        }
        todo = [(key, u, topics[u]) for key, u in bare.items() if u in topics]
        counts.unknown += len(bare) - len(todo)
        counts.set += sum(record_topics_set(client, todo))
        if progress:
            progress(counts)
    logger.info("cache topics set: %d set, %d unknown to the publish ledger", counts.set, counts.unknown)
    return counts


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
