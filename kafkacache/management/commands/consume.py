import signal
from collections import Counter

from django.core.management.base import BaseCommand

from core.progress import Progress
from kafkacache.consumer import FeedConsumer, consume_run


class Command(BaseCommand):
    help = (
        "Run the cache consumer in this process (outside Celery) until SIGTERM/SIGINT: bulk and change "
        "topics -> Redis, consume ledger, dead letters. Holds the same per-instance lock as the Celery task."
    )

    def add_arguments(self, parser):
        parser.add_argument("--instance", type=int, default=0, help="instance number (static member id)")
        parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
        parser.add_argument(
            "--idle-exit", type=float, default=None, help="stop after this many seconds without messages"
        )
        parser.add_argument(
            "--drain", action="store_true", help="stop once caught up with the end of every assigned partition"
        )
        parser.add_argument(
            "--lock-wait", type=float, default=60.0, help="wait this long for another run of the instance to end"
        )

    def handle(self, *args, instance, max_seconds, idle_exit, drain, lock_wait, **options):
        bar = Progress(self.stdout, label="consumed")
        seen: Counter = Counter()

        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def hook(consumer: FeedConsumer) -> None:
            for sig in previous:
                signal.signal(sig, consumer.stop)

        def on_batch(outcomes: Counter) -> None:
            seen.update(outcomes)
            extra = " ".join(f"{name} {count}" for name, count in sorted(seen.items()))
            bar.update(sum(seen.values()), extra)

        try:
            result = consume_run(
                instance=instance,
                max_seconds=max_seconds,
                idle_seconds=idle_exit,
                drain=drain,
                lock_wait=lock_wait,
                on_batch=on_batch,
                consumer_hook=hook,
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        bar.finish()
        if result.get("skipped"):
            self.stderr.write(f"not started: {result['reason']}")
            return
        summary = ", ".join(f"{name} {value}" for name, value in sorted(result.items()) if name != "skipped")
        self.stdout.write(f"consumer stopped: {summary}")
