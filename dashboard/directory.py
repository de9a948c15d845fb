"""Directory users: their role and topic grants follow their directory groups at every login.

django-auth-ldap authenticates (config/directory.py has its settings) and sends
`populate_user`; this applies the product's mapping:
- role: the highest of viewer < operator < admin whose directory group the user is
  in becomes their one role group (admin also makes them staff, as for local admins);
- topics: exactly the grants AUTH_LDAP_TOPIC_GROUPS gives their groups; a topic the
  directory no longer grants them is revoked at the next login.
Local accounts (no directory entry) are never touched: they are the break-glass admins.
"""

import logging

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from dashboard.roles import ADMIN, OPERATOR, ROLES, VIEWER
from recon import access
from recon.models import Topic

logger = logging.getLogger(__name__)

_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}
_TOPIC_RANK = {VIEWER: 1, OPERATOR: 2}


def _dn(value: str) -> str:
    return value.strip().lower()


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
    roles = [role for role, dn in role_groups.items() if _dn(dn) in groups]
    role = max(roles, key=_RANK.__getitem__) if roles else None
    user.is_staff = user.is_superuser = role == ADMIN
    user.set_unusable_password()  # the directory decides: no local password to fall back on
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
    logger.info("directory login %s: role %s, topics %s", user.username, role, wanted)
    return {"role": role, "topics": wanted}


def on_populate_user(sender, user: User, ldap_user, **kwargs) -> None:
    if user.pk is None:
        user.save()  # a first login: the row must exist before groups and grants
    directory_user_sync(user=user, group_dns=set(ldap_user.group_dns))
