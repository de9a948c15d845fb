"""The rolling scrub: the cache's bucket digests rebuilt from what Redis holds, and every
record's value checked against the bytes published for it, a slice of hash slots at a time.

The write script keeps each bucket's digest in the same call as each write
(kafkacache.cache), so the digest leg (recon.services.cache_check) can compare the cache
with the source by bucket. What the writer never saw, it cannot have counted: a key
deleted, changed or added behind its back (a hand edit, an eviction, an expiry, a restore
of an old snapshot). The scrub is that periodic rebuild: for each slot of its slice it
reads the slot's digests, every record key Redis holds there (one SCAN of names for the
slice) and each record, sums the records into fresh digests and replaces the slot's
digests with them unless a write moved them meanwhile (that slot is tried again in the
next slice). A bucket it had to repair held a change behind the writer's back: the next
digest leg finds that bucket differing and judges its keys. A record whose value is not
the bytes published for its message (a published hash of the message's UUID that does not
match) is judged at once by the cache leg of those keys, which raises `differs`.

A pass covers all SLOTS in CACHE_SCRUB_SLICES slices, one every CACHE_SCRUB_PERIOD_HOURS /
CACHE_SCRUB_SLICES (beat: kafkacache.tasks.cache_scrub_task), so every record is read once
a period, at ~1/CACHE_SCRUB_SLICES of the records per slice. The first pass that ends with
every slot rebuilt marks the digests complete: from then on whole-topic legs compare by
digest (CACHE_LEG_METHOD).
"""

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from core.cache_records import (
    BUCKETS_PER_SLOT,
    DIGEST_MOD,
    SLOTS,
    bucket_of,
    cache_read,
    digest_share,
    slot_digest_values,
    slot_digests_read,
    slot_record_keys,
)
from core.clients import redis_client
from kafkacache.cache import digests_mark_complete, digests_swap
from recon import cache_compare as cc
from recon.models import CacheScrub, Topic
from recon.services.cache_check import cache_check
from recon.services.scrubs import scrub_pass_current, scrub_slice_record

logger = logging.getLogger(__name__)


@dataclass
class _Slice:
    slots: list[int]
    sums: dict[int, dict[int, int]] = field(default_factory=dict)  # slot -> sub -> sum of shares
    differ: dict[str, list[str]] = field(default_factory=dict)  # topic name -> keys whose value differs
    keys_read: int = 0


def cache_scrub_slice(*, slots: int | None = None) -> CacheScrub:
    """Scrub the current pass's next slice (`slots` slots; default SLOTS / CACHE_SCRUB_SLICES),
    and the slots of earlier slices a write raced. Answers the pass as it now stands."""
    began = time.monotonic()
    client = redis_client()
    scrub = scrub_pass_current()
    size = slots or math.ceil(SLOTS / settings.CACHE_SCRUB_SLICES)
    start = scrub.next_slot
    end = min(start + size, SLOTS)
    work = _Slice(sorted(set(scrub.retry) | set(range(start, end))))
    read = slot_digests_read(client, work.slots)
    by_slot = slot_record_keys(client, set(work.slots), count=settings.CACHE_LEG_BATCH_SIZE)
    keys = [key for held in by_slot.values() for key in held]
    algorithms = dict(Topic.objects.values_list("name", "hash_algorithm"))
    for i in range(0, len(keys), settings.CACHE_LEG_BATCH_SIZE):
        chunk = keys[i : i + settings.CACHE_LEG_BATCH_SIZE]
        _read(work, client, chunk, algorithms)
    repaired, retry = 0, []
    for slot in work.slots:
        fresh = {sub: value % DIGEST_MOD for sub, value in work.sums.get(slot, {}).items() if value % DIGEST_MOD}
        held = slot_digest_values(read[slot])
        if fresh == held:
            continue
        if digests_swap(client, slot, read=read[slot], rebuilt=fresh):
            repaired += sum(1 for sub in fresh.keys() | held.keys() if fresh.get(sub) != held.get(sub))
        else:
            retry.append(slot)
    finished = end >= SLOTS and not retry
    scrub = scrub_slice_record(
        scrub,
        next_slot=end,
        retry=retry,
        keys_read=work.keys_read,
        buckets_repaired=repaired,
        values_differ=sum(len(k) for k in work.differ.values()),
        seconds=time.monotonic() - began,
        finished=finished,
    )
    if finished:
        digests_mark_complete(client)
    if repaired:
        logger.warning("cache scrub: %s bucket digests were not what Redis holds, rebuilt", repaired)
    _judge(work.differ)
    return scrub


def _read(work: _Slice, client, keys: Sequence[str], algorithms: dict[str, str]) -> None:
    """Sum a batch of records into their buckets and check each value against its published hash."""
    cached = cache_read(client, keys)
    present = [(key, c) for key, c in zip(keys, cached, strict=True) if c.value is not None]
    work.keys_read += len(present)
    for key, c in present:
        slot, sub = divmod(bucket_of(key), BUCKETS_PER_SLOT)
        sums = work.sums.setdefault(slot, {})
        sums[sub] = sums.get(sub, 0) + digest_share(key, c.version)
    hashes = cc.published_hashes((c.uuid, c.created_ms) for _, c in present)
    for key, c in present:
        assert c.value is not None
        published = hashes.get(c.uuid)
        if published is not None and cc.hash_matches(c.value, published, algorithms.get(c.topic, "blake2b")):
            continue
        if published is not None and cc.reencrypted(key, c.value, published):
            continue
        work.differ.setdefault(c.topic, []).append(key)


def _judge(differ: dict[str, list[str]]) -> None:
    """The keys whose value is not their published bytes, judged by their topic's cache leg
    (against the publish ledger: it raises `differs` with the fix); a record no topic wrote
    (written by hand) is judged by each bulk topic's."""
    topics = {t.name: t for t in Topic.objects.all()}
    for name, keys in differ.items():
        owners = [topics[name]] if name in topics else [t for t in topics.values() if t.kind == Topic.Kind.BULK]
        for topic in owners:
            cache_check(topic=topic, keys=keys, trigger="scrub")
