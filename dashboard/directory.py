"""Directory users: their role and topic grants follow their directory groups, and their
access ends when the directory no longer vouches for them.

django-auth-ldap authenticates (config/directory.py has its settings, dashboard.logins
the backend) and sends `populate_user`; this applies the product's mapping:
- role: the highest of viewer < operator < admin whose directory group the user is
  in becomes their one role group (admin also makes them staff, as for local admins);
- topics: exactly the grants AUTH_LDAP_TOPIC_GROUPS gives their groups; a topic the
  directory no longer grants them is revoked.
Local accounts (no dashboard.models.DirectoryAccount) are never touched: the
directory cannot log into them, and nothing here changes them.

The directory is asked again after the login, two ways, with one verdict
(`directory_account_verify`): the entry is found by the login's user search, is not
matched by AUTH_LDAP_DISABLED_FILTER, and is in a role group.
- every DIRECTORY_CHECK_SECONDS (beat: `directory_accounts_check`), for every LDAP account;
  group changes that keep a role are applied then too;
- on the person's requests (`directory_account_admit`: the session middleware and the
  API token check), at most once per DIRECTORY_CHECK_CACHE_SECONDS per person.
An account the directory lost (gone, disabled, in no role group) is revoked at once
(`directory_account_revoke`): its sessions end, its API tokens are deleted, its grants,
groups and staff rights removed, the user made inactive; each revocation is an
operator action with its reason. When the directory cannot be asked, nothing is
revoked and the person's requests are refused (503) until it answers: an identity
nobody could check does not get in (local break-glass accounts still do).
"""

import logging
from dataclasses import dataclass

import ldap
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken
from ldap.filter import escape_filter_chars

from dashboard.models import DirectoryAccount
from dashboard.roles import ADMIN, OPERATOR, ROLES, VIEWER
from recon import access
from recon.models import Topic
from recon.services.actions import operator_action_record

logger = logging.getLogger(__name__)

_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}
_TOPIC_RANK = {VIEWER: 1, OPERATOR: 2}
# What a request may be told about its user: let in, refused (the account was revoked),
# or not checkable now (the directory did not answer).
ADMIT, REVOKED, UNAVAILABLE = "admit", "revoked", "unavailable"
_UNAVAILABLE_CACHE_SECONDS = 5  # retry the directory soon after it failed to answer


def _dn(value: str) -> str:
    return value.strip().lower()


def _role_of(groups: set[str], role_groups: dict[str, str]) -> str | None:
    roles = [role for role, dn in role_groups.items() if _dn(dn) in groups]
    return max(roles, key=_RANK.__getitem__) if roles else None


@transaction.atomic
def directory_user_sync(
    *,
    user: User,
    group_dns: set[str],
    role_groups: dict[str, str] | None = None,
    topic_groups: dict[str, dict[str, str]] | None = None,
) -> dict:
    """Set `user`'s role group and topic grants from their directory groups; answer what was applied.
    The mappings default to the LDAP ones (AUTH_LDAP_ROLE_GROUPS / AUTH_LDAP_TOPIC_GROUPS)."""
    groups = {_dn(dn) for dn in group_dns}
    if role_groups is None:
        role_groups = getattr(settings, "KAFKACACHE_LDAP_ROLE_GROUPS", {})
    if topic_groups is None:
        topic_groups = getattr(settings, "KAFKACACHE_LDAP_TOPIC_GROUPS", {})
    role = _role_of(groups, role_groups)
    user.is_staff = user.is_superuser = role == ADMIN
    if user.has_usable_password():  # the directory decides: no local password to fall back on
        user.set_unusable_password()
    user.save()
    keep = [g for g in user.groups.all() if g.name not in ROLES]
    user.groups.set([*keep, *([Group.objects.get_or_create(name=role)[0]] if role else [])])

    wanted: dict[str, str] = {}
    for dn, grants in topic_groups.items():
        if _dn(dn) in groups:
            for topic_name, topic_role in grants.items():
                if _TOPIC_RANK[topic_role] > _TOPIC_RANK.get(wanted.get(topic_name, ""), 0):
                    wanted[topic_name] = topic_role
    # Every topic, not only those mapped: a grant the mapping no longer names is gone too.
    for topic in Topic.objects.all():
        if topic.name in wanted:
            access.topic_grant(user, topic, wanted[topic.name])
        else:
            access.topic_revoke(user, topic)
    DirectoryAccount.objects.filter(user=user).update(groups=sorted(groups))
    logger.info("directory sync %r: role %s, topics %s", user.username, role, wanted)
    return {"role": role, "topics": wanted}


def directory_account_open(*, user: User, source: str, dn: str) -> DirectoryAccount:
    """A directory login succeeded: the account's origin recorded (first login), a revoked
    account taken back (the directory vouches again), the last confirmation noted."""
    account, _ = DirectoryAccount.objects.get_or_create(user=user, defaults={"source": source})
    if account.revoked_at is not None:
        user.is_active = True
        user.save(update_fields=["is_active"])
        account.revoked_at, account.revoked_reason = None, ""
    account.dn, account.checked_at = dn[:1024], timezone.now()
    account.save()
    _admission_forget(user)
    return account


def on_populate_user(sender, user: User, ldap_user, **kwargs) -> None:
    if user.pk is None:
        user.save()  # a first login: the row must exist before groups and grants
    directory_account_open(user=user, source=DirectoryAccount.Source.LDAP, dn=ldap_user.dn or "")
    directory_user_sync(user=user, group_dns=set(ldap_user.group_dns))


def directory_login_refuse(*, username: str, source: str, reason: str) -> None:
    """A directory login that must not happen (a local account holds the name): refused, never merged."""
    logger.warning("directory login of %r refused: %s", username, reason)
    operator_action_record(
        user=None,
        action="directory-login-refused",
        target=f"user:{username}",
        detail={"source": source, "reason": reason},
        outcome="refused",
    )


# --- asking the directory again ---------------------------------------------------------


class DirectoryUnavailable(Exception):
    """The directory did not answer (or answered an error): nothing may be concluded."""


@dataclass(frozen=True)
class Entry:
    dn: str
    disabled: bool
    groups: frozenset[str]


def ldap_connect():
    """A connection bound as the service account, with the login's TLS options."""
    try:
        connection = ldap.initialize(settings.AUTH_LDAP_SERVER_URI)
        for option, value in settings.AUTH_LDAP_CONNECTION_OPTIONS.items():
            connection.set_option(option, value)
        if settings.AUTH_LDAP_START_TLS:
            connection.start_tls_s()
        connection.simple_bind_s(settings.AUTH_LDAP_BIND_DN, settings.AUTH_LDAP_BIND_PASSWORD)
    except ldap.LDAPError as exc:
        raise DirectoryUnavailable(type(exc).__name__) from None
    return connection


def ldap_entry(connection, username: str) -> Entry | None:
    """The person's entry as the login would find it (None: not there, or not one entry)."""
    search = settings.AUTH_LDAP_USER_SEARCH
    user_filter = settings.KAFKACACHE_LDAP_USER_FILTER % {"user": escape_filter_chars(username)}
    disabled_filter = settings.KAFKACACHE_LDAP_DISABLED_FILTER
    try:
        found = [dn for dn, _ in connection.search_s(search.base_dn, search.scope, user_filter, ["1.1"]) if dn]
        if len(found) != 1:
            return None
        dn = found[0]
        disabled = bool(disabled_filter) and bool(connection.search_s(dn, ldap.SCOPE_BASE, disabled_filter, ["1.1"]))
        member = f"(&(objectClass=groupOfNames)(member={escape_filter_chars(dn)}))"
        groups = connection.search_s(settings.AUTH_LDAP_GROUP_SEARCH.base_dn, ldap.SCOPE_SUBTREE, member, ["1.1"])
    except ldap.LDAPError as exc:
        raise DirectoryUnavailable(type(exc).__name__) from None
    return Entry(dn=dn, disabled=disabled, groups=frozenset(_dn(g) for g, _ in groups if g))


def directory_account_verify(account: DirectoryAccount, connection) -> str:
    """ "" when the directory still vouches for the account (its groups re-applied if they
    changed), else why not: "gone", "disabled", "no role group". DirectoryUnavailable passes up."""
    entry = ldap_entry(connection, account.user.username)
    if entry is None:
        return "gone"
    if entry.disabled:
        return "disabled"
    if _role_of(set(entry.groups), settings.KAFKACACHE_LDAP_ROLE_GROUPS) is None:
        return "no role group"
    if sorted(entry.groups) != account.groups:
        directory_user_sync(user=account.user, group_dns=set(entry.groups))
    DirectoryAccount.objects.filter(pk=account.pk).update(checked_at=timezone.now(), dn=entry.dn[:1024])
    return ""


@transaction.atomic
def directory_account_revoke(*, account: DirectoryAccount, reason: str) -> dict:
    """Everything the account could do, taken away at once, and recorded with the reason."""
    user = User.objects.select_for_update().get(pk=account.user_id)
    tokens, _ = AuthToken.objects.filter(user=user).delete()
    grants = sum(access.topic_revoke(user, topic) for topic in Topic.objects.all())
    user.groups.clear()
    user.is_active = user.is_staff = user.is_superuser = False
    user.set_unusable_password()  # a new session hash: every session of theirs ends at its next request
    user.save()
    DirectoryAccount.objects.filter(pk=account.pk).update(revoked_at=timezone.now(), revoked_reason=reason[:64])
    detail = {"source": account.source, "reason": reason, "tokens": tokens, "grants": grants, "sessions": "ended"}
    operator_action_record(
        user=None, action="directory-revoke", target=f"user:{user.username}", detail=detail, outcome="revoked"
    )
    logger.warning("directory account %r revoked: %s (%d tokens, %d grants)", user.username, reason, tokens, grants)
    transaction.on_commit(lambda: _admission_forget(user))
    return detail


def directory_accounts_check() -> dict:
    """Every LDAP account against the directory (beat). One connection for the pass; when the
    directory cannot answer, the pass stops and revokes nothing."""
    if not settings.AUTH_LDAP_SERVER_URI:
        return {"checked": 0, "revoked": 0}
    accounts = DirectoryAccount.objects.filter(source=DirectoryAccount.Source.LDAP, revoked_at__isnull=True)
    checked = revoked = 0
    try:
        connection = ldap_connect()
        for account in accounts.select_related("user").order_by("pk"):
            reason = directory_account_verify(account, connection)
            checked += 1
            if reason:
                directory_account_revoke(account=account, reason=reason)
                revoked += 1
    except DirectoryUnavailable as exc:
        logger.error("directory check stopped after %d accounts: the directory did not answer (%s)", checked, exc)
        return {"checked": checked, "revoked": revoked, "stopped": str(exc)}
    logger.info("directory check: %d accounts, %d revoked", checked, revoked)
    return {"checked": checked, "revoked": revoked}


def _admission_key(user) -> str:
    # The join time too: a verdict never outlives its user into another row of the same id
    # (a database restored or recreated, as between test runs).
    joined = int(user.date_joined.timestamp() * 1_000_000) if user.date_joined else 0
    return f"directory-admission:{user.pk}:{joined}"


def _admission_forget(user) -> None:
    try:
        cache.delete(_admission_key(user))
    except Exception:  # the cache is a shortcut: without it every request asks again
        logger.warning("directory admission cache unreachable", exc_info=True)


def _admission(user) -> tuple[str, int]:
    account = DirectoryAccount.objects.filter(user=user).select_related("user").first()
    ttl = settings.DIRECTORY_CHECK_CACHE_SECONDS
    if account is None:
        return ADMIT, ttl  # a local account: nothing to ask
    if account.revoked_at is not None:
        return REVOKED, ttl
    if account.source != DirectoryAccount.Source.LDAP or not settings.AUTH_LDAP_SERVER_URI:
        return ADMIT, ttl  # an OIDC account is checked at its logins only (docs/security.md)
    try:
        reason = directory_account_verify(account, ldap_connect())
    except DirectoryUnavailable as exc:
        logger.error("directory did not answer for %r (%s): request refused", user.username, exc)
        return UNAVAILABLE, min(ttl, _UNAVAILABLE_CACHE_SECONDS)
    if reason:
        directory_account_revoke(account=account, reason=reason)
        return REVOKED, ttl
    return ADMIT, ttl


def directory_account_admit(user) -> str:
    """ADMIT, REVOKED or UNAVAILABLE for an authenticated user's request (see the module's doc)."""
    key = _admission_key(user)
    try:
        verdict = cache.get(key)
    except Exception:
        logger.warning("directory admission cache unreachable", exc_info=True)
        verdict = None
    if verdict is not None:
        return verdict
    verdict, ttl = _admission(user)
    if ttl > 0:
        try:
            cache.set(key, verdict, ttl)
        except Exception:
            logger.warning("directory admission cache unreachable", exc_info=True)
    return verdict
