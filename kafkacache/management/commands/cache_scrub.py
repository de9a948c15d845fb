from django.core.management.base import BaseCommand

from core.cache_records import SLOTS
from kafkacache.services.cache_scrub import cache_scrub_slice


class Command(BaseCommand):
    help = (
        "Run the rolling scrub now: rebuild the cache's bucket digests from what Redis holds and check every"
        " value against its published bytes. One slice (as beat does), or with --pass the rest of the current"
        " pass at once (after cache_relayout, after Redis was restored from a snapshot, or to turn the digest"
        " leg on over a cache written before digests)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--pass", dest="whole", action="store_true", help="every slot left in this pass")

    def handle(self, *args, whole: bool, **options):
        scrub = cache_scrub_slice(slots=SLOTS if whole else None)
        while whole and scrub.finished_at is None:  # slots a write raced: tried again
            scrub = cache_scrub_slice(slots=SLOTS)
        state = f"finished {scrub.finished_at:%Y-%m-%d %H:%M:%S} UTC" if scrub.finished_at else "under way"
        self.stdout.write(
            f"cache scrub pass from {scrub.started_at:%Y-%m-%d %H:%M:%S} UTC {state}: at slot {scrub.next_slot} of"
            f" {SLOTS}, {scrub.keys_read} records read, {scrub.buckets_repaired} bucket digests rebuilt,"
            f" {scrub.values_differ} values that differ from their published bytes"
        )
