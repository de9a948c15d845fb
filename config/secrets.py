"""Fail closed on secrets: a production process refuses to start on a development default.

Every secret the project reads has a default that makes a laptop work (`make run`,
the tests). Those defaults are in this public repository, so a production process
(DJANGO_DEBUG=0) that still uses one of them is running with a public key: the
settings module raises at import, naming every such variable, so the web server,
`manage.py` and the Celery workers (same settings module) all stop before they
serve or consume anything.

KAFKACACHE_ALLOW_DEV_SECRETS=1 lets a benchmark on a laptop run with DEBUG off and
the development keys; `manage.py check --deploy` reports it as an error
(config.checks), so it cannot reach a production run unnoticed.

No Django import here: this runs while the settings module is being built.
"""

from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

# The development defaults, kept here so the settings and the check read one list.
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-in-production-0123456789"  # noqa: S105 (the public dev default this module refuses)
DEV_FIELD_ENCRYPTION_KEYS = "dev1:ZGV2LW9ubHkta2V5LTMyLWJ5dGVzLWxvbmctLS0tLS0="
DEV_AUDIT_ENCRYPTION_KEYS = "audit1:ZGV2LW9ubHktYXVkaXQta2V5LTMyLWJ5dGVzLWxvbmc="
# Ed25519: the private seed (producers only) and its public key (what verifies).
DEV_SEAL_SIGNING_KEYS = "seal-dev1:ZGV2LW9ubHktc2VhbC1zZWVkLTMyLWJ5dGVzLWxvbmc="
DEV_SEAL_VERIFY_KEYS = "seal-dev1:YWiI2fdHrvnbbozGJoHgkZZoYDnf8d/Tmn2AyTCvXzs="
DEV_DATABASE_PASSWORD = "kafkacache"  # noqa: S105

_DEV_KEY_MATERIAL = {
    "FIELD_ENCRYPTION_KEYS": DEV_FIELD_ENCRYPTION_KEYS,
    "AUDIT_ENCRYPTION_KEYS": DEV_AUDIT_ENCRYPTION_KEYS,
    "SEAL_SIGNING_KEYS": DEV_SEAL_SIGNING_KEYS,
    "SEAL_VERIFY_KEYS": DEV_SEAL_VERIFY_KEYS,
}


class InsecureSettings(RuntimeError):
    """A production process configured with a development secret."""


def _key_material(spec: str) -> set[str]:
    return {item.partition(":")[2].strip() for item in spec.split(",") if item.strip()}


def dev_defaults_in_use(values: Mapping[str, str]) -> list[str]:
    """The variables among `values` (name -> configured value) that hold a development default.

    A keyring counts when any of its keys is a development key (under any id): one
    public key in a ring is enough to forge or read.
    """
    found = []
    if values.get("DJANGO_SECRET_KEY", "") == DEV_SECRET_KEY:
        found.append("DJANGO_SECRET_KEY")
    for name, dev in _DEV_KEY_MATERIAL.items():
        if name in values and _key_material(values[name]) & _key_material(dev):
            found.append(name)
    for name in ("DATABASE_URL", "SOURCE_DATABASE_URL"):
        url = values.get(name, "")
        if url and unquote(urlsplit(url).password or "") == DEV_DATABASE_PASSWORD:
            found.append(name)
    return found


def dev_defaults_refuse(values: Mapping[str, str], *, debug: bool, allowed: bool) -> None:
    """Raise InsecureSettings in production (debug False) while a development default is in use."""
    if debug or allowed:
        return
    found = dev_defaults_in_use(values)
    if found:
        raise InsecureSettings(
            "DJANGO_DEBUG=0 with development secrets: set "
            + ", ".join(found)
            + " to this deployment's own values (see README, Security: production checklist)"
        )
