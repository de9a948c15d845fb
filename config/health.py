"""/healthz: for probes, each dependency checked for real, with its latency; 503 if any is down.

Per role (docs/deploy.md), for load balancers, systemd and container probes:
  /healthz/web            database, Redis, Kafka (what a web process needs; no workers)
  /healthz/beat           the active beat's heartbeat is fresh (config/beat.py)
  /healthz/queue/<queue>  at least one worker consumes that queue and answers
`manage.py healthcheck <role>` runs the same checks from a shell (exit status 0/1).

Who gets what: the live checks (a database query, a Redis ping, a Kafka metadata
request, a Celery ping) run for a probe holding HEALTH_TOKEN ("Authorization: Bearer
<token>") or a logged-in person; error details are for staff only. Anyone else gets
the liveness of this process only ({"status": "up"}, nothing asked of any service), so
an anonymous flood costs the services nothing. Every caller is throttled per address
(HEALTH_THROTTLE_PER_MINUTE; 429 beyond it); when the throttle's own store (Redis)
cannot count, the call is answered (the probe must not fail for the throttle's sake).
"""

import hmac
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from config.beat import HEARTBEAT_KEY
from config.celery import QUEUES
from config.celery import app as celery_app
from config.throttles import HealthThrottle
from core.clients import make_admin, redis_client

TIMEOUT_S = 3.0
logger = logging.getLogger(__name__)


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def check_redis() -> str:
    client = redis_client()
    client.ping()
    return "ok"


def check_kafka() -> str:
    metadata = make_admin(**{"socket.connection.setup.timeout.ms": 2000}).list_topics(timeout=TIMEOUT_S)
    if not metadata.brokers:
        raise RuntimeError("no brokers in metadata")
    return f"{len(metadata.brokers)} broker(s)"


def check_celery() -> str:
    # limit=1: answer as soon as one worker replies instead of waiting out the timeout
    replies = celery_app.control.ping(timeout=1.0, limit=1)
    if not replies:
        raise RuntimeError("no Celery worker answered ping")
    return "a worker answered"


def check_beat() -> str:
    raw = redis_client().get(HEARTBEAT_KEY)
    if raw is None:
        raise RuntimeError("no beat heartbeat: no beat holds the lock")
    age = time.time() - float(raw)
    if age > settings.BEAT_LOCK_SECONDS:
        raise RuntimeError(f"beat heartbeat is {age:.0f} s old")
    return f"heartbeat {age:.1f} s ago"


def check_queue(queue: str) -> str:
    """Workers that consume `queue` and answered within the timeout."""
    replies = celery_app.control.inspect(timeout=1.0).active_queues() or {}
    workers = sorted(name for name, queues in replies.items() if any(q.get("name") == queue for q in queues))
    if not workers:
        raise RuntimeError(f"no worker consumes queue {queue!r}")
    return ", ".join(workers)


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "redis": check_redis,
    "kafka": check_kafka,
    "celery": check_celery,
}


def role_checks(role: str) -> dict[str, Callable[[], str]]:
    """The checks of one role: web, beat, or queue:<name>; KeyError for anything else."""
    if role == "web":
        return {name: CHECKS[name] for name in ("database", "redis", "kafka")}
    if role == "beat":
        return {"redis": check_redis, "beat": check_beat}
    if role.startswith("queue:") and role.removeprefix("queue:") in QUEUES:
        queue = role.removeprefix("queue:")
        return {f"queue:{queue}": lambda: check_queue(queue)}
    raise KeyError(role)


def run_checks(checks: dict[str, Callable[[], str]] | None = None) -> dict[str, dict]:
    results = {}
    for name, check in (checks or CHECKS).items():
        started = time.perf_counter()
        try:
            detail, ok = check(), True
        except Exception as exc:  # a health check reports every failure, whatever its type
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results[name] = {
            "status": "up" if ok else "down",
            "detail": detail,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }
    return results


def _prober(request: HttpRequest) -> bool:
    """A probe with the health token, or a person logged in: they get the live checks."""
    if request.user.is_authenticated:
        return True
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    expected = settings.HEALTH_TOKEN.encode()
    # Bytes, not str: compare_digest refuses non-ASCII str (a 500 on a crafted header).
    given = credential.encode("utf-8", "replace")
    return scheme == "Bearer" and bool(expected) and hmac.compare_digest(given, expected)


def _throttled(request: HttpRequest) -> JsonResponse | None:
    throttle = HealthThrottle()
    try:
        allowed = throttle.allow_request(request, None)
    except Exception:  # the counter's store is down: answer anyway, and say so in the log
        logger.warning("healthz throttle could not count (cache unreachable)", exc_info=True)
        return None
    if allowed:
        return None
    response = JsonResponse({"status": "throttled"}, status=429)
    response["Retry-After"] = str(int(throttle.wait() or 60))
    return response


def _probe(request: HttpRequest, checks: Callable[[], dict[str, Callable[[], str]]]) -> JsonResponse:
    refused = _throttled(request)
    if refused is not None:
        return refused
    if not _prober(request):
        return JsonResponse({"status": "up"})  # liveness: this process answers
    return _answer(request, run_checks(checks()))


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return _probe(request, lambda: CHECKS)


@never_cache
def healthz_role(request: HttpRequest, role: str) -> JsonResponse:
    try:
        checks = role_checks(role)
    except KeyError:
        raise Http404("no such role") from None
    return _probe(request, lambda: checks)


@never_cache
def healthz_queue(request: HttpRequest, queue: str) -> JsonResponse:
    return healthz_role(request, f"queue:{queue}")


def _answer(request: HttpRequest, results: dict[str, dict]) -> JsonResponse:
    healthy = all(r["status"] == "up" for r in results.values())
    # Error details (hosts, messages) only for staff; the token's probes need the statuses.
    if not (request.user.is_authenticated and request.user.is_staff):
        for result in results.values():
            result.pop("detail")
    return JsonResponse({"status": "up" if healthy else "down", "checks": results}, status=200 if healthy else 503)
