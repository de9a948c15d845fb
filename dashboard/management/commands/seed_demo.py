from django.conf import settings
from django.core.management.base import BaseCommand

from dashboard.roles import ADMIN, OPERATOR, ROLES, VIEWER
from dashboard.services import demo_grants_ensure, user_ensure
from recon.models import Topic
from recon.services.feed import feed_topics_ensure


class Command(BaseCommand):
    help = "Demo users for each role (viewer, operator, admin) and their topic grants."

    def handle(self, *args, **options):
        password = settings.DEMO_PASSWORD
        users = {role: user_ensure(username=role, password=password, role=role) for role in ROLES}
        # `kafka_topics` usually made these rows already; get_or_create either way.
        rows = feed_topics_ensure()
        bulk, change = rows[Topic.Kind.BULK], rows[Topic.Kind.CHANGE]
        demo_grants_ensure(viewer=users[VIEWER], operator=users[OPERATOR], bulk=bulk, change=change)
        self.stdout.write("Demo users (username / password):")
        for role in ROLES:
            self.stdout.write(f"  {role:9s} / {password}")
        self.stdout.write(
            f"  {VIEWER} sees every topic; {OPERATOR} operates {bulk.name} and views {change.name}; "
            f"{ADMIN} is a superuser."
        )
