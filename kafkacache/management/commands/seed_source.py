from django.core.management.base import BaseCommand
from django.db import transaction

from kafkacache.ods import ods_seed
from kafkacache.sources import source_alias


class Command(BaseCommand):
    help = (
        "Recreate the demo system of record: schema 'ods' (clients, account settings, cards, change table "
        "with triggers) with deterministic demo clients. Drops an existing 'ods' schema."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=5000, help="how many clients (default 5000)")

    def handle(self, *args, clients: int, **options):
        alias = source_alias()
        with transaction.atomic(using=alias):
            counts = ods_seed(clients=clients, using=alias)
        self.stdout.write(
            f"schema ods on database '{alias}': {counts['clients']:,} clients, "
            f"{counts['account_settings']:,} account settings, {counts['cards']:,} cards"
        )
