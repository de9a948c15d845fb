import json
import sys

from django.core.management.base import BaseCommand

from config.celery import QUEUES
from config.health import role_checks, run_checks


class Command(BaseCommand):
    help = "Health of one role, as /healthz/<role> answers it: web, beat, or queue:<name>. Exit 0 up, 1 down."

    def add_arguments(self, parser):
        parser.add_argument("role", choices=["web", "beat", *(f"queue:{q}" for q in QUEUES)])

    def handle(self, *args, role, **options):
        results = run_checks(role_checks(role))
        self.stdout.write(json.dumps(results, indent=2))
        if any(r["status"] != "up" for r in results.values()):
            sys.exit(1)
