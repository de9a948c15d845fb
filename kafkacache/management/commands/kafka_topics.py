from django.core.management.base import BaseCommand

from kafkacache.services.topics import topics_ensure
from recon.services.feed import feed_topics_ensure


class Command(BaseCommand):
    help = (
        "Create the feed's Kafka topics with their partition count (auto-create is off) "
        "and the reconciliation rows (recon.Topic) of the bulk and change topics."
    )

    def handle(self, *args, **options):
        for name, state in topics_ensure().items():
            self.stdout.write(f"  {name}: {state}")
        for kind, topic in feed_topics_ensure().items():
            self.stdout.write(f"  recon topic {topic.name}: {kind}, consumer group {topic.consumer_group}")
