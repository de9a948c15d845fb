import os

from django.core.management.base import BaseCommand

from dashboard.roles import ROLES
from dashboard.services import user_ensure


class Command(BaseCommand):
    help = "Demo users for each role (viewer, operator, admin)."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "kafkacache-demo")
        for role in ROLES:
            user_ensure(username=role, password=password, role=role)
        self.stdout.write("Demo users (username / password):")
        for role in ROLES:
            self.stdout.write(f"  {role:9s} / {password}")
