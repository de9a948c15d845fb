from django.core.management.base import BaseCommand

from core.progress import Progress
from kafkacache.services.relayout import TopicCounts, cache_topics_set


class Command(BaseCommand):
    help = (
        "Give every cached record written before records kept their topic the topic of the message "
        "that wrote it, from the publish ledger. Until then such a record decrypts for nobody. Idempotent; "
        "cache_relayout runs it too."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=1000, help="keys per SCAN page")

    def handle(self, *args, batch: int, **options):
        bar = Progress(self.stdout, label="set")

        def progress(counts: TopicCounts) -> None:
            bar.update(counts.set, f"unknown {counts.unknown}")

        counts = cache_topics_set(batch=batch, progress=progress)
        bar.finish()
        self.stdout.write(
            f"cache topics set: {counts.set} set, {counts.unknown} unknown to the publish ledger"
            f" (they stay topic-less), {counts.checked} records checked"
        )
