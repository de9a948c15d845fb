from django.core.management.base import BaseCommand
from django.db import connections, transaction

from core.ods import ods_seed
from core.sources import source_alias


class Command(BaseCommand):
    help = (
        "Create the demo system of record: schema 'ods' (clients, account settings, cards, and the change "
        "table with its triggers) with deterministic demo clients. An existing 'ods' schema is left alone "
        "unless --reset is given (which drops it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=5000, help="how many clients (default 5000)")
        parser.add_argument("--reset", action="store_true", help="drop and recreate an existing 'ods' schema")

    def handle(self, *args, clients: int, reset: bool, **options):
        alias = source_alias()
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT to_regclass('ods.clients') IS NOT NULL")
            exists = cursor.fetchone()[0]
            if exists and not reset:
                cursor.execute("SELECT count(*) FROM ods.clients")
                self.stdout.write(
                    f"schema ods on database '{alias}' exists ({cursor.fetchone()[0]:,} clients): left alone"
                    " (--reset recreates it)"
                )
                return
        with transaction.atomic(using=alias):
            counts = ods_seed(clients=clients, using=alias)
        self.stdout.write(
            f"schema ods on database '{alias}': {counts['clients']:,} clients, "
            f"{counts['account_settings']:,} account settings, {counts['cards']:,} cards"
        )
