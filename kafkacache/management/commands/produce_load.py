from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.errors import AppError
from core.progress import Progress
from kafkacache.services.loads import BatchCounts, load_run, load_start
from recon.models import Load, Topic
from recon.services.feed import feed_topics_ensure


class Command(BaseCommand):
    help = "Run a bulk load in this process (outside Celery): source -> Avro -> Kafka, with the publish ledger."

    def add_arguments(self, parser):
        parser.add_argument("--source", default="ods", help="'ods' or 'file:<name in SOURCE_FILE_DIR>'")
        parser.add_argument("--clients", default="", help="comma-separated client ids (default: all)")
        parser.add_argument("--topic", default="", help="topic name (default: KAFKA_TOPIC_BULK)")

    def handle(self, *args, source: str, clients: str, topic: str, **options):
        try:
            client_ids = [int(part) for part in clients.split(",") if part.strip()]
        except ValueError:
            raise CommandError("--clients must be comma-separated integers") from None
        feed_topics_ensure()
        row = Topic.objects.filter(name=topic or settings.KAFKA_TOPIC_BULK).first()
        if row is None:
            raise CommandError(f"no topic {topic!r}; run kafka_topics first")
        try:
            load = load_start(topic=row, source=source, client_ids=client_ids, requested_by=None, queue=False)
        except AppError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"load {load.id}  retrieval key {load.retrieval_key}")
        bar = Progress(self.stdout, label="published")

        def progress(current: Load, counts: BatchCounts) -> None:
            bar.total = current.total
            extra = f"exceptions {current.exceptions}" if current.exceptions else ""
            bar.update(current.published + current.failed + current.exceptions, extra)

        load = load_run(load_id=load.id, progress=progress)
        seconds = bar.finish()
        self.stdout.write(
            f"load {load.status} in {seconds:.1f} s: total {load.total}, built {load.built}, "
            f"published {load.published}, failed {load.failed}, exceptions {load.exceptions}"
            + (f"\n  {load.error}" if load.error else "")
        )
        if load.status != Load.Status.DONE:
            raise CommandError(f"load {load.status}")
