from django.core.management.base import BaseCommand

from core.progress import Progress
from kafkacache.services.relayout import RelayoutCounts, cache_relayout


class Command(BaseCommand):
    help = (
        "Move a cache of an older layout to the current one: names before hash tags (kc:rec:<key>,"
        " kc:dv:<key>) to the tagged ones, the source version deciding where both exist, and records of"
        " the hash layout made one value. Run once after upgrading, before the consumers start; idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=1000, help="names per SCAN page")

    def handle(self, *args, batch: int, **options):
        bar = Progress(self.stdout, label="moved")

        def progress(counts: RelayoutCounts) -> None:
            bar.update(counts.moved, f"kept newer {counts.kept_newer}")

        counts = cache_relayout(batch=batch, progress=progress)
        bar.finish()
        self.stdout.write(
            f"cache relayout: {counts.moved} moved, {counts.kept_newer} kept (the new layout was newer),"
            f" {counts.restrung} made one value;"
            f" topics set on {counts.topics_set} records, {counts.topics_unknown} unknown to the publish ledger"
        )
