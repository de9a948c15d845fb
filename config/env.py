"""Typed reads of environment variables.

Every setting of the project comes through here, so a malformed value fails at
start-up with the variable's name instead of deep inside a request.
"""

import ipaddress
import json
import os
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class EnvError(ValueError):
    pass


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EnvError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise EnvError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise EnvError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int_map(name: str, default: str, *, keys: tuple[str, ...], minimum: int = 0) -> dict[str, int]:
    """'critical=4,warning=24' -> {"critical": 4, "warning": 24}; every key of `keys` must be given."""
    raw = os.environ.get(name) or default
    out: dict[str, int] = {}
    for part in raw.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or key.strip() not in keys:
            raise EnvError(f"{name} must be like {default!r} (keys {', '.join(keys)}), got {raw!r}")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            raise EnvError(f"{name}: {key.strip()} must be an integer, got {value!r}") from None
        if out[key.strip()] < minimum:
            raise EnvError(f"{name}: {key.strip()} must be >= {minimum}")
    if set(out) != set(keys):
        raise EnvError(f"{name} must give every one of {', '.join(keys)}, got {raw!r}")
    return out


def env_choice_map(name: str, default: str, *, keys: tuple[str, ...], choices: tuple[str, ...]) -> dict[str, str]:
    """'a=x,b=y' -> {"a": "x", "b": "y"}: any of `keys` (each once), each one of `choices`."""
    raw = os.environ.get(name, default)
    out: dict[str, str] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        key, sep, value = (item.strip() for item in part.partition("="))
        if not sep or key not in keys or key in out:
            raise EnvError(f"{name}: {part!r} must be <field>=<mode> with a field of {', '.join(keys)}, once each")
        if value not in choices:
            raise EnvError(f"{name}: {key} must be one of {', '.join(choices)}, got {value!r}")
        out[key] = value
    return out


def env_pair(name: str, default: str) -> tuple[str, str] | None:
    """ "NAME=value" as a pair (SECURE_PROXY_SSL_HEADER's shape); empty means None."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return None
    first, sep, second = raw.partition("=")
    if not sep or not first.strip() or not second.strip():
        raise EnvError(f"{name} must look like HTTP_X_FORWARDED_PROTO=https, got {raw!r}")
    return first.strip(), second.strip()


def env_networks(name: str, default: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """ "10.0.0.5,10.1.0.0/24,fd00::/8" as networks (an address is a network of one)."""
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in env_list(name, default))
    except ValueError as exc:
        raise EnvError(f"{name} must list IP addresses or networks: {exc}") from None


def env_json_object(name: str, default: str = "{}") -> dict:
    raw = os.environ.get(name, default) or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise EnvError(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise EnvError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


# libpq connection parameters a DATABASE_URL may carry in its query string (TLS above
# all: ?sslmode=verify-full&sslrootcert=/etc/kafkacache/ca.pem); anything else is refused.
DATABASE_URL_OPTIONS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword", "target_session_attrs", "application_name"}
)


def source_url_check(name: str, url: str) -> None:
    """A SQLAlchemy database URL (dialect+driver://user:password@host:port/database)."""
    try:
        make_url(url)
    except ArgumentError:
        raise EnvError(f"{name} must be a database URL like mysql+mysqldb://user:password@host/db") from None


def database_from_url(name: str, default: str) -> dict:
    """A Django DATABASES entry from postgres://user:password@host:port/dbname[?sslmode=...]."""
    url = os.environ.get(name, default)
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
        raise EnvError(f"{name} must look like postgres://user:password@host:port/dbname, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise EnvError(f"{name} has a bad port: {url!r}") from None
    options: dict[str, str | int] = {"connect_timeout": 5}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in DATABASE_URL_OPTIONS:
            known = ", ".join(sorted(DATABASE_URL_OPTIONS))
            raise EnvError(f"{name} has an unknown parameter {key!r} (known: {known})")
        options[key] = value
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or 5432),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }
