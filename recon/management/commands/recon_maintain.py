"""Run reconciliation's periodic work once, without Celery beat (cron, deploy hooks, ops).

manage.py recon_maintain [--partitions] [--windows] [--audit]   (default: all three)
"""

from django.core.management.base import BaseCommand

from recon.services import partitions
from recon.services.audit import audit_purge
from recon.services.windows import due_windows_reconcile


class Command(BaseCommand):
    help = "Create/drop ledger partitions, reconcile due windows, purge expired audit payloads."

    def add_arguments(self, parser):
        parser.add_argument("--partitions", action="store_true")
        parser.add_argument("--windows", action="store_true")
        parser.add_argument("--audit", action="store_true")

    def handle(self, *args, **options):
        everything = not (options["partitions"] or options["windows"] or options["audit"])
        if everything or options["partitions"]:
            outcome = partitions.partitions_maintain()
            self.stdout.write(f"partitions: created {len(outcome['created'])}, dropped {len(outcome['dropped'])}")
        if everything or options["windows"]:
            runs = due_windows_reconcile()
            self.stdout.write(f"windows: {len(runs)} scheduled run(s)")
        if everything or options["audit"]:
            self.stdout.write(f"audit: {audit_purge()} payload(s) purged")
