import sys

from django.core.management.base import BaseCommand

from config.preflight import PreflightError, preflight_run


class Command(BaseCommand):
    help = (
        "Start-up connectivity check: PostgreSQL, Redis, the Celery broker and Kafka, each with a bounded "
        "timeout. Exit 1 naming each service that failed and why (password, certificate, unreachable)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--only", action="append", help="check only this service (postgresql, redis, celery broker, kafka)"
        )

    def handle(self, *args, only, **options):
        try:
            for line in preflight_run(only=set(only) if only else None):
                self.stdout.write(line)
        except PreflightError as exc:
            for failure in exc.failures:
                self.stderr.write(f"preflight: {failure}")
            sys.exit(1)
