"""Start-up connectivity check: every service this process needs, or a clear reason why not.

A wrong password, an untrusted or expired certificate, or a host that does not
answer must stop a process at start-up with the service's name and the reason,
not leave it hanging in a retry loop. Each check is bounded in time. Run by
`manage.py preflight` (bin/prod and the systemd units run it before a role
starts) and by gunicorn's on_starting hook (config/gunicorn.conf.py).
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections

from config.celery import app
from core.clients import make_admin, redis_client

KAFKA_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Failure:
    service: str
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.service} ({self.target}): {self.reason}"


class PreflightError(RuntimeError):
    def __init__(self, failures: list[Failure]) -> None:
        self.failures = failures
        super().__init__("start-up check failed: " + "; ".join(str(f) for f in failures))


def _database() -> None:
    for alias in connections:
        connection = connections[alias]
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")


# What the cache path does, on a scratch key: a user the ACL does not let write
# kc:* keys (or run scripts) is refused here, at start-up, not at the first batch.
_REDIS_PROBE = (
    "redis.call('HSET', KEYS[1], 'f', '1') redis.call('SADD', KEYS[2], 'x') return redis.call('DEL', KEYS[1], KEYS[2])"
)


def _redis() -> None:
    client = redis_client()
    client.ping()
    probe = f"kc:preflight:{{{uuid.uuid4().hex}}}"  # a hash tag: both keys in one slot on a Redis Cluster too
    client.eval(_REDIS_PROBE, 2, f"{probe}:h", f"{probe}:s")


def _celery_broker() -> None:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=5)


class _KafkaLog:
    """librdkafka's log lines, kept instead of printed: its FAIL line names the reason
    (connection refused, SSL handshake failed: certificate verify failed, ...)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, level: int, msg: str, *args: object) -> None:
        self.lines.append(msg % args if args else msg)


def _kafka() -> None:
    # librdkafka retries for ever and says why only in its log and error_cb: keep
    # what they name (authentication, SSL handshake, refused) as the reason.
    errors: list[str] = []
    log = _KafkaLog()
    admin = make_admin(
        **{
            "socket.connection.setup.timeout.ms": 5000,
            "reconnect.backoff.ms": 500,
            "error_cb": lambda err: errors.append(err.str()),
            "logger": log,
        }
    )
    deadline = time.monotonic() + KAFKA_TIMEOUT_S
    while True:
        try:
            metadata = admin.list_topics(timeout=2.0)
            if metadata.brokers:
                return
        except Exception as exc:  # timeouts and transport errors: the reason is in the log
            admin.poll(0.5)  # serves the queued log lines and error callbacks
            named = [e for e in errors if "brokers are down" not in e] + [
                line.split(": ", 2)[-1] for line in log.lines if "fail" in line.lower()
            ]
            if named or time.monotonic() > deadline:
                raise RuntimeError(named[0] if named else str(exc)) from None
        if time.monotonic() > deadline:
            raise RuntimeError("no broker in metadata")


def _db_target() -> str:
    db = settings.DATABASES["default"]
    return f"{db['HOST']}:{db['PORT']}/{db['NAME']} sslmode={db.get('OPTIONS', {}).get('sslmode', 'prefer')}"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path}"


def checks() -> list[tuple[str, str, Callable[[], None]]]:
    return [
        ("postgresql", _db_target(), _database),
        ("redis", _redact(settings.REDIS_URL), _redis),
        ("celery broker", _redact(settings.CELERY_BROKER_URL), _celery_broker),
        (
            "kafka",
            f"{settings.KAFKA_BOOTSTRAP_SERVERS} {settings.KAFKA_CLIENT_CONFIG.get('security.protocol', 'PLAINTEXT')}",
            _kafka,
        ),
    ]


def preflight_run(*, only: set[str] | None = None) -> list[str]:
    """Run every check (or those named in `only`); raise PreflightError naming each failure."""
    failures, passed = [], []
    for service, target, check in checks():
        if only and service not in only:
            continue
        try:
            check()
        except Exception as exc:  # every failure is reported, whatever its type
            reason = " ".join(str(exc).split()) or type(exc).__name__
            failures.append(Failure(service, target, f"{type(exc).__name__}: {reason}"))
        else:
            passed.append(f"{service} ({target}): ok")
    if failures:
        raise PreflightError(failures)
    return passed
