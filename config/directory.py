"""The bank's directory: settings for django-auth-ldap (and, optionally, OIDC) from the environment.

Set AUTH_LDAP_SERVER_URI and people log in with their directory account through
the ordinary login form; local accounts (ModelBackend) stay for break-glass
admins. Which role and which topics a directory user gets comes from their
directory groups (dashboard/directory.py applies it at every login):

  AUTH_LDAP_ROLE_GROUPS   {"viewer": "<group DN>", "operator": "<group DN>", "admin": "<group DN>"}
                          a user in none of them cannot log in (fail closed)
  AUTH_LDAP_TOPIC_GROUPS  {"<group DN>": {"<topic name>": "viewer" | "operator", ...}, ...}
                          the only topic grants a directory user holds; re-read at every login
                          and at every directory check
  AUTH_LDAP_DISABLED_FILTER  an LDAP filter matching disabled entries, e.g. Active Directory's
                          (userAccountControl:1.2.840.113556.1.4.803:=2), 389 DS's (nsAccountLock=true),
                          OpenLDAP ppolicy's (pwdAccountLockedTime=*); empty: the directory has none
                          (removing the entry, or its role groups, is how access ends)

OIDC (optional, mozilla-django-oidc): set OIDC_RP_CLIENT_ID and the provider's endpoints;
OIDC_ROLE_GROUPS / OIDC_TOPIC_GROUPS map the token's OIDC_GROUPS_CLAIM the same way.
"""

import json
from collections.abc import Mapping
from typing import Any

from config.env import EnvError, env_declare, env_declared

ROLE_NAMES = ("viewer", "operator", "admin")

# Every variable read below, declared once (name, how it is written, default, meaning):
# they are read only when a directory or provider is configured, yet always documented.
_LDAP = "Directory (LDAP)"
_OIDC = "OIDC login"
env_declare(
    "AUTH_LDAP_SERVER_URI",
    "URL",
    "",
    doc="`ldaps://ldap.bank:636`, or `ldap://...` with StartTLS; empty: local accounts only",
    area=_LDAP,
)
env_declare(
    "AUTH_LDAP_START_TLS", "boolean", "1", doc="StartTLS on an `ldap://` URI (never needed on `ldaps://`)", area=_LDAP
)
env_declare("AUTH_LDAP_CA_FILE", "file path", "", doc="the directory's CA certificate; empty: the system's", area=_LDAP)
env_declare("AUTH_LDAP_BIND_DN", "DN", "", doc="the service account that searches", area=_LDAP)
env_declare("AUTH_LDAP_BIND_PASSWORD", "string", "", doc="its password", area=_LDAP)
env_declare("AUTH_LDAP_USER_SEARCH_BASE", "DN", "", doc="where people are (required with a directory)", area=_LDAP)
env_declare("AUTH_LDAP_USER_FILTER", "LDAP filter", "(uid=%(user)s)", doc="how a login name is found", area=_LDAP)
env_declare(
    "AUTH_LDAP_GROUP_SEARCH_BASE",
    "DN",
    "",
    doc="where `groupOfNames` groups are (required with a directory)",
    area=_LDAP,
)
env_declare(
    "AUTH_LDAP_ROLE_GROUPS",
    "JSON object",
    "{}",
    doc='`{"viewer": DN, "operator": DN, "admin": DN}`: a person in none of them cannot log in',
    area=_LDAP,
)
env_declare(
    "AUTH_LDAP_TOPIC_GROUPS",
    "JSON object",
    "{}",
    doc='`{group DN: {topic: "viewer" or "operator"}}`: the only topic grants a directory account holds',
    area=_LDAP,
)
env_declare(
    "AUTH_LDAP_DISABLED_FILTER",
    "LDAP filter",
    "",
    doc="matches disabled entries (`(nsAccountLock=true)`); empty: the directory has none",
    area=_LDAP,
)
env_declare(
    "OIDC_RP_CLIENT_ID", "string", "", doc="this application's client id at the provider; empty: no OIDC", area=_OIDC
)
env_declare("OIDC_RP_CLIENT_SECRET", "string", "", doc="its client secret (required with OIDC)", area=_OIDC)
env_declare(
    "OIDC_OP_AUTHORIZATION_ENDPOINT", "URL", "", doc="the provider's authorization endpoint (required)", area=_OIDC
)
env_declare("OIDC_OP_TOKEN_ENDPOINT", "URL", "", doc="its token endpoint (required)", area=_OIDC)
env_declare("OIDC_OP_USER_ENDPOINT", "URL", "", doc="its userinfo endpoint (required)", area=_OIDC)
env_declare("OIDC_OP_JWKS_ENDPOINT", "URL", "", doc="its signing keys (required)", area=_OIDC)
env_declare("OIDC_RP_SIGN_ALGO", "string", "RS256", doc="the ID token's signature algorithm", area=_OIDC)
env_declare("OIDC_RP_SCOPES", "string", "openid email profile", doc="scopes asked for", area=_OIDC)
env_declare("OIDC_GROUPS_CLAIM", "string", "groups", doc="the token claim that lists a person's groups", area=_OIDC)
env_declare("OIDC_ROLE_GROUPS", "JSON object", "{}", doc='`{"viewer": group, ...}` as for the directory', area=_OIDC)
env_declare("OIDC_TOPIC_GROUPS", "JSON object", "{}", doc="`{group: {topic: role}}` as for the directory", area=_OIDC)


def _json(env: Mapping[str, str], name: str) -> dict:
    raw = env_declared(env, name) or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise EnvError(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise EnvError(f"{name} must be a JSON object")
    return value


def _required(env: Mapping[str, str], name: str) -> str:
    if not (value := env_declared(env, name)):
        raise EnvError(f"{name} must be set when AUTH_LDAP_SERVER_URI is")
    return value


def role_groups(env: Mapping[str, str]) -> dict[str, str]:
    groups = _json(env, "AUTH_LDAP_ROLE_GROUPS")
    unknown = set(groups) - set(ROLE_NAMES)
    if unknown:
        raise EnvError(f"AUTH_LDAP_ROLE_GROUPS: unknown roles {sorted(unknown)} (roles: {', '.join(ROLE_NAMES)})")
    if not groups:
        raise EnvError("AUTH_LDAP_ROLE_GROUPS must map at least one role to a directory group")
    return {role: str(dn) for role, dn in groups.items()}


def topic_groups(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    groups = _json(env, "AUTH_LDAP_TOPIC_GROUPS")
    for dn, grants in groups.items():
        if not isinstance(grants, dict) or any(role not in ("viewer", "operator") for role in grants.values()):
            raise EnvError(f"AUTH_LDAP_TOPIC_GROUPS[{dn!r}] must map topic names to 'viewer' or 'operator'")
    return groups


def ldap_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The AUTH_LDAP_* Django settings for this environment (empty when no server is set).

    Imports python-ldap only when a server is set: importing it loads the system's
    libldap into the process, which a deployment without a directory then never does."""
    uri = env_declared(env, "AUTH_LDAP_SERVER_URI")
    if not uri:
        return {}
    import ldap
    from django_auth_ldap.config import GroupOfNamesType, LDAPGroupQuery, LDAPSearch

    roles = role_groups(env)
    required = None
    for dn in roles.values():
        required = LDAPGroupQuery(dn) if required is None else required | LDAPGroupQuery(dn)
    options: dict[Any, Any] = {
        ldap.OPT_NETWORK_TIMEOUT: 5,
        ldap.OPT_TIMEOUT: 10,
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_X_TLS_REQUIRE_CERT: ldap.OPT_X_TLS_DEMAND,
    }
    if ca_file := env_declared(env, "AUTH_LDAP_CA_FILE"):
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
        options[ldap.OPT_X_TLS_NEWCTX] = 0  # must come last: makes the options above take effect
    # ldap:// upgrades with StartTLS unless told not to (a lab directory); ldaps:// is TLS already.
    start_tls = not uri.startswith("ldaps://") and env_declared(env, "AUTH_LDAP_START_TLS").lower() in (
        "1",
        "true",
        "yes",
    )
    user_filter = env_declared(env, "AUTH_LDAP_USER_FILTER") or "(uid=%(user)s)"
    disabled = env_declared(env, "AUTH_LDAP_DISABLED_FILTER")
    for name, value in (("AUTH_LDAP_USER_FILTER", user_filter), ("AUTH_LDAP_DISABLED_FILTER", disabled)):
        if value and not (value.startswith("(") and value.endswith(")")):
            raise EnvError(f"{name} must be an LDAP filter in parentheses, got {value!r}")
    # A disabled entry is not found by the login's search: it cannot log in, whatever its password.
    login_filter = f"(&{user_filter}(!{disabled}))" if disabled else user_filter
    return {
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_BIND_DN": env_declared(env, "AUTH_LDAP_BIND_DN"),
        "AUTH_LDAP_BIND_PASSWORD": env_declared(env, "AUTH_LDAP_BIND_PASSWORD"),
        "AUTH_LDAP_START_TLS": start_tls,
        "AUTH_LDAP_CONNECTION_OPTIONS": options,
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(
            _required(env, "AUTH_LDAP_USER_SEARCH_BASE"), ldap.SCOPE_SUBTREE, login_filter
        ),
        "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(
            _required(env, "AUTH_LDAP_GROUP_SEARCH_BASE"), ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)"
        ),
        "AUTH_LDAP_GROUP_TYPE": GroupOfNamesType(name_attr="cn"),
        "AUTH_LDAP_REQUIRE_GROUP": required,
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CACHE_TIMEOUT": 0,  # group changes in the directory count at the next login
        # dashboard.directory asks again after the login: found (this filter), disabled (that one)?
        "KAFKACACHE_LDAP_USER_FILTER": user_filter,
        "KAFKACACHE_LDAP_DISABLED_FILTER": disabled,
        "KAFKACACHE_LDAP_ROLE_GROUPS": roles,
        "KAFKACACHE_LDAP_TOPIC_GROUPS": topic_groups(env),
    }


def oidc_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """mozilla-django-oidc settings (empty when OIDC_RP_CLIENT_ID is not set)."""
    client_id = env_declared(env, "OIDC_RP_CLIENT_ID")
    if not client_id:
        return {}
    required = [
        "OIDC_RP_CLIENT_SECRET",
        "OIDC_OP_AUTHORIZATION_ENDPOINT",
        "OIDC_OP_TOKEN_ENDPOINT",
        "OIDC_OP_USER_ENDPOINT",
        "OIDC_OP_JWKS_ENDPOINT",
    ]
    missing = [name for name in required if not env_declared(env, name)]
    if missing:
        raise EnvError(f"OIDC_RP_CLIENT_ID is set but {', '.join(missing)} are not")
    roles = {role: str(g) for role, g in _json(env, "OIDC_ROLE_GROUPS").items()}
    if not roles or set(roles) - set(ROLE_NAMES):
        raise EnvError(f"OIDC_ROLE_GROUPS must map roles ({', '.join(ROLE_NAMES)}) to the provider's group names")
    return {
        "OIDC_RP_CLIENT_ID": client_id,
        **{name: env_declared(env, name) for name in required},
        "OIDC_RP_SIGN_ALGO": env_declared(env, "OIDC_RP_SIGN_ALGO"),
        "OIDC_RP_SCOPES": env_declared(env, "OIDC_RP_SCOPES"),
        "OIDC_GROUPS_CLAIM": env_declared(env, "OIDC_GROUPS_CLAIM"),
        "KAFKACACHE_OIDC_ROLE_GROUPS": roles,
        "KAFKACACHE_OIDC_TOPIC_GROUPS": _json(env, "OIDC_TOPIC_GROUPS"),
    }
