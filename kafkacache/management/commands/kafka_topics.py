from django.core.management.base import BaseCommand

from kafkacache.topics import topics_ensure


class Command(BaseCommand):
    help = "Create the feed's Kafka topics with their partition count (auto-create is off)."

    def handle(self, *args, **options):
        for name, state in topics_ensure().items():
            self.stdout.write(f"  {name}: {state}")
