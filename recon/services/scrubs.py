"""The record of the rolling scrub's passes (recon.models.CacheScrub): one function per state change.

The scrub itself reads and rebuilds the cache (kafkacache.services.cache_scrub, the
feed's: it writes the digests); this keeps where a pass is and what it found."""

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from recon.models import CacheScrub


def scrub_pass_current() -> CacheScrub:
    """The pass under way, or a new one from slot 0."""
    current = CacheScrub.objects.filter(finished_at__isnull=True).order_by("-started_at").first()
    return current or CacheScrub.objects.create()


@transaction.atomic
def scrub_slice_record(
    scrub: CacheScrub,
    *,
    next_slot: int,
    retry: Sequence[int],
    keys_read: int,
    buckets_repaired: int,
    values_differ: int,
    seconds: float,
    finished: bool,
) -> CacheScrub:
    """One slice done: the pass moves on (finished: every slot rebuilt, none left to retry)."""
    scrub = CacheScrub.objects.select_for_update().get(pk=scrub.pk)
    scrub.next_slot = next_slot
    scrub.retry = sorted(set(retry))
    scrub.slices += 1
    scrub.keys_read += keys_read
    scrub.buckets_repaired += buckets_repaired
    scrub.values_differ += values_differ
    scrub.seconds += seconds
    if finished:
        scrub.finished_at = timezone.now()
    scrub.save()
    return scrub
