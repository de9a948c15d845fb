import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken

from core.usernames import username_normalise
from recon.services.actions import operator_action_record


class Command(BaseCommand):
    help = "Issue an API token for a user (printed once: only its hash is kept), or revoke all of theirs."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=None, help="lifetime (default: API_TOKEN_TTL_DAYS)")
        parser.add_argument("--revoke", action="store_true", help="revoke every token of the user")

    def handle(self, *args, username: str, days: int | None, revoke: bool, **options):
        username = username_normalise(username)
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        if revoke:
            count, _ = AuthToken.objects.filter(user=user).delete()
            operator_action_record(
                user=None, action="token-revoke", target=f"user:{username}", detail={"tokens": count}
            )
            self.stdout.write(f"revoked {count} token(s) of {username}")
            return
        kwargs = {} if days is None else {"expiry": dt.timedelta(days=days)}
        row, token = AuthToken.objects.create(user=user, **kwargs)
        operator_action_record(
            user=None, action="token-issue", target=f"user:{username}", detail={"expiry": str(row.expiry)}
        )
        self.stdout.write(token)
