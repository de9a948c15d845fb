"""OIDC login (optional; config/directory.py): mozilla-django-oidc's backend with the directory mapping.

The token's OIDC_GROUPS_CLAIM names the person's groups as the provider does;
OIDC_ROLE_GROUPS / OIDC_TOPIC_GROUPS map them to a role and topic grants exactly
as the LDAP mapping does (dashboard/directory.py), at every login.
"""

from django.conf import settings
from django.contrib.auth.models import User
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from dashboard.directory import directory_user_sync


def claims_groups(claims: dict) -> set[str]:
    value = claims.get(getattr(settings, "OIDC_GROUPS_CLAIM", "groups")) or []
    return {str(g) for g in (value if isinstance(value, list) else [value])}


class OidcBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims: dict) -> bool:
        # Fail closed: someone the provider knows but in no mapped role group does not get in.
        mapped = {g.lower() for g in getattr(settings, "KAFKACACHE_OIDC_ROLE_GROUPS", {}).values()}
        return bool(super().verify_claims(claims)) and bool(mapped & {g.lower() for g in claims_groups(claims)})

    def _sync(self, user: User, claims: dict) -> User:
        directory_user_sync(
            user=user,
            group_dns=claims_groups(claims),
            role_groups=getattr(settings, "KAFKACACHE_OIDC_ROLE_GROUPS", {}),
            topic_groups=getattr(settings, "KAFKACACHE_OIDC_TOPIC_GROUPS", {}),
        )
        return user

    def create_user(self, claims: dict) -> User:
        return self._sync(super().create_user(claims), claims)

    def update_user(self, user: User, claims: dict) -> User:
        return self._sync(super().update_user(user, claims), claims)
