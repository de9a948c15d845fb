"""How people log in: local accounts and directory accounts, kept apart, and the lockout.

- `LocalBackend`: accounts of this application (no dashboard.models.DirectoryAccount),
  their own password. A directory account never logs in here, whatever password it
  may have been given.
- `DirectoryBackend` (django-auth-ldap): directory accounts only. A name a local
  account holds is refused before the directory is asked (the local password is never
  sent to the directory); if the directory has an entry of that name too, the refusal
  is recorded (dashboard.directory.directory_login_refuse), since someone made a
  directory entry named like a local account. Nothing is merged.
- Every name is compared as core.usernames.username_normalise spells it: the login,
  the lockout (django-axes' username: `axes_username`), both lookups, the stored name.
- The lockout (`lockout_parameters`): LOGIN_FAILURE_LIMIT failures lock a username, and
  an address, for LOGIN_LOCKOUT_MINUTES. The break-glass accounts (local superusers)
  are locked per (username, address) and per address instead: failures from elsewhere
  cannot lock the admin out; the cost is that guessing their password from many
  addresses is slowed per address only (docs/security.md).
"""

from axes.models import AccessBase
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.db.models.signals import pre_save
from django_auth_ldap.backend import LDAPBackend
from rest_framework.exceptions import APIException, AuthenticationFailed

from config.auth import token_user_checked
from core.usernames import username_normalise
from dashboard.directory import (
    REVOKED,
    UNAVAILABLE,
    DirectoryUnavailable,
    directory_account_admit,
    directory_login_refuse,
    ldap_connect,
    ldap_entry,
)
from dashboard.models import DirectoryAccount

BREAK_GLASS_LOCKOUT = [["username", "ip_address"], "ip_address"]
LOCKOUT = ["username", "ip_address"]


def is_directory_account(user: User) -> bool:
    return DirectoryAccount.objects.filter(user=user).exists()


def _local(username: str) -> User | None:
    return User.objects.filter(username=username, directory_account__isnull=True).first()


def _directory_has(username: str) -> bool:
    try:
        return ldap_entry(ldap_connect(), username) is not None
    except DirectoryUnavailable:
        return False  # refused either way; only the record of who collides is missing


class LocalBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        username = kwargs.get(User.USERNAME_FIELD, username)
        if username is None or password is None:
            return None
        user = _local(username_normalise(username))
        if user is None:
            User().set_password(password)  # as long as a wrong password takes (ModelBackend does the same)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


class DirectoryBackend(LDAPBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        username = kwargs.pop(User.USERNAME_FIELD, username)
        if username is None:
            return None
        name = username_normalise(username)
        if _local(name) is not None:
            if _directory_has(name):  # found by the service account: this password is never sent
                directory_login_refuse(username=name, source="ldap", reason="a local account has this name")
            return None
        return super().authenticate(request, username=name, password=password, **kwargs)

    def ldap_to_django_username(self, username: str) -> str:
        return username_normalise(username)

    def get_or_build_user(self, username, ldap_user):
        user = User.objects.filter(username=username).first()
        if user is None:
            return User(username=username), True
        account = DirectoryAccount.objects.filter(user=user).first()
        if account is None or account.source != DirectoryAccount.Source.LDAP:
            # A local account made since the check in authenticate, or another directory's account.
            directory_login_refuse(username=username, source="ldap", reason="another account has this name")
            raise ldap_user.AuthenticationFailed("the name belongs to another account")
        return user, False

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None  # a revoked account has no session


def axes_username(request, credentials: dict | None) -> str | None:
    """The lockout's key: the name as every lookup spells it (AXES_USERNAME_CALLABLE)."""
    raw = (credentials or {}).get("username")
    if raw is None and request is not None:
        raw = getattr(request, "POST", {}).get("username")
    return username_normalise(raw) if raw else raw


def lockout_parameters(request_or_attempt, credentials: dict | None = None) -> list:
    """AXES_LOCKOUT_PARAMETERS: the break-glass policy for local superusers, the usual otherwise."""
    if isinstance(request_or_attempt, AccessBase):
        username = request_or_attempt.username
    else:
        username = axes_username(request_or_attempt, credentials)
    if username and User.objects.filter(username=username, is_superuser=True, directory_account__isnull=True).exists():
        return BREAK_GLASS_LOCKOUT
    return LOCKOUT


def _username_normalised(sender, instance: User, **kwargs) -> None:
    instance.username = username_normalise(instance.username)


def usernames_normalise_connect() -> None:
    """Every save of a user stores the one spelling (the admin, createsuperuser, the backends)."""
    pre_save.connect(_username_normalised, sender=User, dispatch_uid="kafkacache-username-normalise")


class DirectoryUnavailableError(APIException):
    status_code = 503
    default_code = "directory_unavailable"
    default_detail = "The directory cannot confirm your account right now; try again shortly."


def _token_user_admitted(sender, user: User, request, **kwargs) -> None:
    """config.auth.token_user_checked: an API token of an account the directory lost is refused."""
    verdict = directory_account_admit(user)
    if verdict == REVOKED:
        raise AuthenticationFailed("This account is no longer in the directory.")
    if verdict == UNAVAILABLE:
        raise DirectoryUnavailableError()


def token_check_connect() -> None:
    token_user_checked.connect(_token_user_admitted, dispatch_uid="kafkacache-directory-token")
