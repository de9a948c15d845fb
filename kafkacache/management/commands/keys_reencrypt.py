from django.core.management.base import BaseCommand

from core.progress import Progress
from kafkacache.services.reencrypt import RekeyCounts, audit_reencrypt, records_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt cached records (field keys) and audit payloads (audit keys) to the newest key, "
        "so an old key can be retired. Resumable: a stopped run goes on where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--only", choices=["records", "audit"], help="one store (default: both)")
        parser.add_argument("--batch", type=int, default=500, help="records or rows per step")
        parser.add_argument("--restart", action="store_true", help="forget the saved position and start over")

    def handle(self, *args, only: str | None, batch: int, restart: bool, **options):
        for name, run in (("records", records_reencrypt), ("audit", audit_reencrypt)):
            if only and only != name:
                continue
            bar = Progress(self.stdout, label=f"{name} seen")

            def progress(counts: RekeyCounts, bar=bar) -> None:
                bar.update(counts.seen, f"rewritten {counts.rewritten} skipped {counts.skipped}")

            counts = run(batch=batch, restart=restart, progress=progress)
            bar.finish()
            self.stdout.write(
                f"{name}: seen {counts.seen}, rewritten {counts.rewritten}, already current {counts.current}, "
                f"skipped {counts.skipped} (named in the log)"
            )
