"""/healthz: each dependency checked for real, with its latency; 503 if any is down."""

import time
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from config.celery import app as celery_app
from kafkacache.clients import make_admin, redis_client

TIMEOUT_S = 3.0


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


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "redis": check_redis,
    "kafka": check_kafka,
    "celery": check_celery,
}


def run_checks() -> dict[str, dict]:
    results = {}
    for name, check in CHECKS.items():
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


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    healthy = all(r["status"] == "up" for r in results.values())
    # Probes call this anonymously; error details (hosts, messages) only for staff.
    if not (request.user.is_authenticated and request.user.is_staff):
        for result in results.values():
            result.pop("detail")
    return JsonResponse({"status": "up" if healthy else "down", "checks": results}, status=200 if healthy else 503)
