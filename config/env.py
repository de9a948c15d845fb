"""Typed reads of environment variables, and the register of every setting read.

Every setting of the project comes through here, so a malformed value fails at
start-up with the variable's name instead of deep inside a request. Each read also
records the setting (name, how it is written, its default, one line on what it
does, its area) in SETTINGS: docs/configuration.md is written from that register
(scripts/docs_generate.py), so the documented list is the list the code reads.
"""

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class EnvError(ValueError):
    pass


@dataclass(frozen=True)
class Setting:
    """One environment variable the project reads, as the docs show it."""

    name: str
    kind: str  # how the value is written ("integer, at least 1", "boolean", "comma-separated list")
    default: str  # the default as it would be written in the environment ("" is empty)
    doc: str  # one line: what it does
    area: str
    doc_default: str = ""  # the default in words, when it follows from other settings
    read_by: str = ""  # the file that reads it, when that is not Python settings (a shell script)
    retired: str = ""  # no longer read (setting it stops the process): what to set instead


# Filled as settings are read, in reading order: config/settings.py, config/directory.py,
# config/gunicorn.conf.py. One process reads each setting once; a second read keeps the first entry.
SETTINGS: dict[str, Setting] = {}
# The areas in the order config/settings.py first names them (the docs' order).
AREAS: list[str] = []
_current_area = [""]


def env_area(name: str) -> None:
    """The settings read after this belong to the area `name` (a section of docs/configuration.md)."""
    if name not in AREAS:
        AREAS.append(name)
    _current_area[0] = name


def _written(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def _register(name: str, kind: str, default: object, doc: str, doc_default: str, **extra: str) -> None:
    if name not in SETTINGS:
        SETTINGS[name] = Setting(
            name=name,
            kind=kind,
            default=_written(default),
            doc=doc,
            area=extra.pop("area", "") or _current_area[0],
            doc_default=doc_default,
            **extra,
        )


def env_declare(
    name: str, kind: str, default: object, *, doc: str, doc_default: str = "", area: str = "", read_by: str = ""
) -> str:
    """Register a setting read elsewhere (a shell script, config.directory's mapping); answers its name."""
    _register(name, kind, default, doc, doc_default, area=area, read_by=read_by)
    return name


def env_declared(env: Mapping[str, str], name: str) -> str:
    """`name` from the mapping `env`, defaulting as declared; a name nobody declared is a bug, not a setting."""
    if name not in SETTINGS:
        raise LookupError(f"{name} is read but not declared (config.env.env_declare)")
    return env.get(name, SETTINGS[name].default)


def env_retired(name: str, *, instead: str) -> None:
    """A setting no longer read: set anyway, it stops the process, saying what replaced it."""
    _register(name, "retired", "", f"no longer read: {instead}", "", retired=instead)
    if os.environ.get(name):
        raise EnvError(f"{name} is no longer read: {instead}")


def env_str(name: str, default: str, *, doc: str = "", doc_default: str = "", kind: str = "string") -> str:
    _register(name, kind, default, doc, doc_default)
    return os.environ.get(name, default)


def env_int(name: str, default: int, *, minimum: int | None = None, doc: str = "", doc_default: str = "") -> int:
    _register(name, "integer" if minimum is None else f"integer, at least {minimum}", default, doc, doc_default)
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


def env_bool(name: str, default: bool, *, doc: str = "", doc_default: str = "") -> bool:
    _register(name, "boolean", default, doc, doc_default)
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise EnvError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_list(name: str, default: str, *, doc: str = "", doc_default: str = "") -> list[str]:
    _register(name, "comma-separated list", default, doc, doc_default)
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int_map(
    name: str, default: str, *, keys: tuple[str, ...], minimum: int = 0, doc: str = "", doc_default: str = ""
) -> dict[str, int]:
    """'critical=4,warning=24' -> {"critical": 4, "warning": 24}; every key of `keys` must be given."""
    _register(name, f"{', '.join(f'{k}=N' for k in keys)} (N at least {minimum})", default, doc, doc_default)
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


def env_choice_map(
    name: str, default: str, *, keys: tuple[str, ...], choices: tuple[str, ...], doc: str = "", doc_default: str = ""
) -> dict[str, str]:
    """'a=x,b=y' -> {"a": "x", "b": "y"}: any of `keys` (each once), each one of `choices`."""
    kind = f"comma-separated field=mode, fields: {', '.join(keys)}; modes: {', '.join(choices)}"
    _register(name, kind, default, doc, doc_default)
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


def env_pair(name: str, default: str, *, doc: str = "", doc_default: str = "") -> tuple[str, str] | None:
    """ "NAME=value" as a pair (SECURE_PROXY_SSL_HEADER's shape); empty means None."""
    _register(name, "HEADER=value", default, doc, doc_default)
    raw = os.environ.get(name, default).strip()
    if not raw:
        return None
    first, sep, second = raw.partition("=")
    if not sep or not first.strip() or not second.strip():
        raise EnvError(f"{name} must look like HTTP_X_FORWARDED_PROTO=https, got {raw!r}")
    return first.strip(), second.strip()


def env_networks(
    name: str, default: str, *, doc: str = "", doc_default: str = ""
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """ "10.0.0.5,10.1.0.0/24,fd00::/8" as networks (an address is a network of one)."""
    _register(name, "comma-separated addresses or networks", default, doc, doc_default)
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in env_list(name, default))
    except ValueError as exc:
        raise EnvError(f"{name} must list IP addresses or networks: {exc}") from None


def env_json_object(name: str, default: str = "{}", *, doc: str = "", doc_default: str = "") -> dict:
    _register(name, "JSON object", default, doc, doc_default)
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


def database_from_url(name: str, default: str, *, doc: str = "", doc_default: str = "") -> dict:
    """A Django DATABASES entry from postgres://user:password@host:port/dbname[?sslmode=...]."""
    _register(name, "postgres:// URL", default, doc, doc_default)
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
