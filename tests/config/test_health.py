"""/healthz checks each service for real and reports a stopped one as down, for a probe with the
health token or a logged-in person; anyone else gets the process's liveness only, throttled."""

import shutil
import socket
import subprocess
import time

import pytest

from core import clients
from tests.factories import UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


HEALTH_TOKEN = "health-probe-token-5d1c"


@pytest.fixture(autouse=True)
def probe(settings, client):
    settings.HEALTH_TOKEN = HEALTH_TOKEN
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {HEALTH_TOKEN}"
    _throttle_clear()
    yield
    _throttle_clear()


def _throttle_clear() -> None:
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)  # Django's cache store (a test may move REDIS_URL away)
    for key in client.scan_iter("kc-django:*throttle_healthz*", count=1000):
        client.delete(key)


def test_all_green_with_a_worker(client, celery_worker_process):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "up"
    assert set(body["checks"]) == {"database", "redis", "kafka", "celery"}
    for check in body["checks"].values():
        assert check["status"] == "up"
        assert check["latency_ms"] >= 0
        assert "detail" not in check  # the probe's token gets no internals


def test_a_stopped_redis_is_reported_down(client, settings, tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp_path]
    )
    try:
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        clients._redis_pool.cache_clear()
        deadline = time.monotonic() + 10
        while client.get("/healthz").json()["checks"]["redis"]["status"] != "up":
            assert time.monotonic() < deadline, "private redis never came up"
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(10)
    try:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["checks"]["redis"]["status"] == "down"
    finally:
        clients._redis_pool.cache_clear()


def test_kafka_and_celery_down_are_reported_with_details_for_staff(client, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{_free_port()}"
    UserFactory(username="ops-admin", password="x", is_staff=True)
    client.login(username="ops-admin", password="x")
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "down"
    assert body["checks"]["kafka"]["status"] == "down"
    assert body["checks"]["celery"]["status"] == "down"  # no worker runs in this test
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["redis"]["status"] == "up"
    assert body["checks"]["kafka"]["detail"]


def test_anonymous_callers_get_liveness_only_and_are_throttled(client, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{_free_port()}"  # down: a live check would say 503
    settings.HEALTH_THROTTLE_PER_MINUTE = 3
    stranger = type(client)(REMOTE_ADDR="198.51.100.20")
    wrong = type(client)(REMOTE_ADDR="198.51.100.21", HTTP_AUTHORIZATION="Bearer not-the-token")
    for caller in (stranger, wrong):
        for path in ("/healthz", "/healthz/web", "/healthz/queue/consume"):
            answer = caller.get(path)
            assert (answer.status_code, answer.json()) == (200, {"status": "up"}), path  # nothing was asked
        refused = caller.get("/healthz")
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    # the probe with the token, from its own address, gets the live checks, and they say Kafka is down
    answer = client.get("/healthz/web")
    assert answer.status_code == 503 and answer.json()["checks"]["kafka"]["status"] == "down"
