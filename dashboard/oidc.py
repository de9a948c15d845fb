"""OIDC login (optional; config/directory.py): mozilla-django-oidc's backend with the directory mapping.

The token's OIDC_GROUPS_CLAIM names the person's groups as the provider does;
OIDC_ROLE_GROUPS / OIDC_TOPIC_GROUPS map them to a role and topic grants exactly
as the LDAP mapping does (dashboard/directory.py), at every login.

Accounts are kept apart as for LDAP (dashboard.logins): a provider's claims find only
accounts this provider made (never a local account with the same email, which
mozilla-django-oidc would otherwise log into), and a new account whose name a local
account holds is refused and recorded.
"""

from django.conf import settings
from django.contrib.auth.models import User
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from core.usernames import username_normalise
from dashboard.directory import directory_account_open, directory_login_refuse, directory_user_sync
from dashboard.models import DirectoryAccount


def claims_groups(claims: dict) -> set[str]:
    value = claims.get(getattr(settings, "OIDC_GROUPS_CLAIM", "groups")) or []
    return {str(g) for g in (value if isinstance(value, list) else [value])}


class OidcBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims: dict) -> bool:
        # Fail closed: someone the provider knows but in no mapped role group does not get in.
        mapped = {g.lower() for g in getattr(settings, "KAFKACACHE_OIDC_ROLE_GROUPS", {}).values()}
        return bool(super().verify_claims(claims)) and bool(mapped & {g.lower() for g in claims_groups(claims)})

    def filter_users_by_claims(self, claims: dict):
        return super().filter_users_by_claims(claims).filter(directory_account__source=DirectoryAccount.Source.OIDC)

    def _sync(self, user: User, claims: dict) -> User:
        directory_account_open(user=user, source=DirectoryAccount.Source.OIDC, dn=str(claims.get("sub", "")))
        directory_user_sync(
            user=user,
            group_dns=claims_groups(claims),
            role_groups=getattr(settings, "KAFKACACHE_OIDC_ROLE_GROUPS", {}),
            topic_groups=getattr(settings, "KAFKACACHE_OIDC_TOPIC_GROUPS", {}),
        )
        return user

    def create_user(self, claims: dict) -> User | None:
        username = username_normalise(self.get_username(claims))
        if User.objects.filter(username=username).exists():
            directory_login_refuse(username=username, source="oidc", reason="another account has this name")
            return None
        return self._sync(super().create_user(claims), claims)

    def update_user(self, user: User, claims: dict) -> User:
        return self._sync(super().update_user(user, claims), claims)

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None  # a revoked account has no session
