"""The production layout (bin/prod) on loopback runs a bulk load end to end.

gunicorn (DEBUG off, static files by whitenoise), one Celery worker per queue and
one beat start as subprocesses against the test database, a private Redis (cache
and broker) and fresh Kafka topics. The system of record is a database of its own
(SOURCE_DATABASE_URL), as at a bank: the app's database holds a different, smaller
ODS, so reading the wrong one shows. A bulk load goes in through POST /api/loads
and its records come back from Redis through GET /api/cache/<retrieval key>; a
change committed in the source database reaches the cache through beat's change
feed. Each task ran on the worker of its own queue.
"""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
import requests
from django.core.management import call_command
from knox.models import AuthToken

from kafkacache.services.topics import topics_delete
from recon.access import topic_grant
from recon.services.feed import feed_topics_ensure
from tests.factories import UserFactory

from ..kafkacache.conftest import source_records, subprocess_database_url
from .helpers import ROOT, PrivateRedis, free_port, production_secrets, stop_group, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENTS = 40
DECOY_CLIENTS = 7  # the app database's own ODS: a load that read it would deliver 7
QUEUES = ("consume", "loads", "reconcile", "alerts")
# What the load balancer in front of gunicorn adds once it has ended TLS: without it
# DEBUG-off Django redirects plain http to https (the health checks are exempt).
HTTPS = {"X-Forwarded-Proto": "https"}
HEALTH_TOKEN = uuid.uuid4().hex  # the probes' token: without it /healthz answers liveness only


@pytest.fixture
def source_database():
    """A database of its own for the system of record, on the local PostgreSQL; dropped after."""
    app_url = subprocess_database_url()
    name = f"kc_ods_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield app_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def prod_layout(settings, unique_name, tmp_path, source_database):
    redis = PrivateRedis(tmp_path / "redis")
    topics = {
        "KAFKA_TOPIC_BULK": unique_name("t.prod.bulk"),
        "KAFKA_TOPIC_CHANGE": unique_name("t.prod.change"),
        "KAFKA_TOPIC_DEAD_LETTER": unique_name("t.prod.dlq"),
        "KAFKA_CONSUMER_GROUP": unique_name("t.prod.group"),
    }
    for name, value in topics.items():
        setattr(settings, name, value)
    port = free_port()
    node = f"prodtest-{uuid.uuid4().hex[:6]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))},
        **production_secrets(),
        **topics,
        "DJANGO_SETTINGS_MODULE": "config.settings",  # the production settings, not the test ones
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO=https",
        # Every key is fresh (production_secrets), but the test database lives on the local
        # PostgreSQL, whose password is the development one: the documented escape hatch
        # lets that one through (fail-closed itself is tests/config/test_secrets.py's).
        "KAFKACACHE_ALLOW_DEV_SECRETS": "1",
        "DATABASE_URL": subprocess_database_url(),
        "SOURCE_DATABASE_URL": source_database,
        "CHANGE_FEED_INTERVAL_SECONDS": "1",
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/1",
        "CONSUMER_SCHEDULE_SECONDS": "1",
        "CONSUMER_RUN_SECONDS": "4",
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "PROD_RUN_DIR": str(tmp_path / "run"),
        "PROD_NODE_NAME": node,
        "PROD_STOP_SECONDS": "20",
        "HEALTH_TOKEN": HEALTH_TOKEN,
    }
    # The source is seeded by the app's own command, pointed at it by SOURCE_DATABASE_URL.
    seeded = subprocess.run(
        [sys.executable, "manage.py", "seed_source", "--clients", str(CLIENTS), "--reset"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert seeded.returncode == 0 and "database 'source'" in seeded.stdout, seeded.stdout + seeded.stderr
    proc = subprocess.Popen([str(ROOT / "bin" / "prod")], cwd=ROOT, env=env, start_new_session=True)
    try:
        yield {
            "url": f"http://127.0.0.1:{port}",
            "node": node,
            "logs": tmp_path / "run" / "log",
            "proc": proc,
            "source": source_database,
        }
    finally:
        stop_group(proc)
        redis.stop()
        topics_delete([v for k, v in topics.items() if k.startswith("KAFKA_TOPIC_")])


def _get(url: str, **kwargs) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5, **kwargs)
    except (requests.ConnectionError, requests.Timeout):  # not up yet: a cold worker's first checks can take seconds
        return None


def test_a_bulk_load_runs_through_the_production_layout(prod_layout):
    call_command("seed_source", "--clients", str(DECOY_CLIENTS), "--reset", verbosity=0)
    topics = feed_topics_ensure()
    operator = UserFactory(username="prod-operator", password=uuid.uuid4().hex)
    topic_grant(operator, topics["bulk"], "operator")
    # As the load balancer passes them on: TLS ended there (X-Forwarded-Proto), a knox token.
    auth = {**HTTPS, "Authorization": f"Token {AuthToken.objects.create(user=operator)[1]}"}
    url = prod_layout["url"]

    def up(path: str) -> bool:
        assert prod_layout["proc"].poll() is None, "bin/prod exited; see its logs"
        response = _get(url + path, headers={"Authorization": f"Bearer {HEALTH_TOKEN}"})
        return response is not None and response.status_code == 200 and response.json().get("checks")

    # Every role answers its own health check: web, beat, a worker on each queue.
    # The first wait covers bin/prod's own start (preflight, migrate, topics, collectstatic):
    # generous, since the machine's cores are shared with other test runs.
    for path in ["/healthz/web", "/healthz/beat", *(f"/healthz/queue/{q}" for q in QUEUES)]:
        wait_for(lambda path=path: up(path), timeout=120 if path == "/healthz/web" else 60, what=path)
    assert _get(url + "/healthz/queue/nope").status_code == 404

    # DEBUG is off: an unknown page is a plain 404, static files come from whitenoise.
    assert _get(url + "/accounts/login/", allow_redirects=False).status_code == 301  # plain http: to https
    missing = _get(url + "/no-such-page", headers=HTTPS)
    assert missing.status_code == 404 and "URLconf" not in missing.text
    static = _get(url + "/static/admin/css/base.css", headers=HTTPS)
    assert static.status_code == 200 and "max-age" in static.headers.get("Cache-Control", "")
    assert _get(url + "/api/loads", headers=HTTPS).status_code == 401

    started = requests.post(url + "/api/loads", json={"source": "ods"}, headers=auth, timeout=10)
    assert started.status_code == 202, started.text
    load_id, retrieval_key = started.json()["id"], started.json()["retrieval_key"]

    def load_done() -> bool:
        state = _get(f"{url}/api/loads/{load_id}", headers=auth).json()
        assert state["status"] not in ("failed", "cancelled"), state
        return state["status"] == "done"

    wait_for(load_done, timeout=60, what="the load to finish")

    def cached() -> dict | None:
        body = _get(f"{url}/api/cache/{retrieval_key}?limit=1000", headers=auth).json()
        return body if body["count"] == CLIENTS else None

    body = wait_for(cached, timeout=60, what="every record in the cache")
    with psycopg.connect(prod_layout["source"]) as conn:
        source_ids = [row[0] for row in conn.execute("SELECT client_id FROM ods.clients ORDER BY client_id")]
    assert {item["key"] for item in body["results"]} == {f"client:{i}" for i in source_ids}
    assert len(source_records()) == DECOY_CLIENTS  # the app database's ODS was not the one read
    assert all(item["record"] for item in body["results"])

    # A change committed in the source database: beat's change feed publishes it, the consumer caches it.
    changed = source_ids[3]
    with psycopg.connect(prod_layout["source"]) as conn:
        conn.execute("UPDATE ods.clients SET name = 'Renamed In The Source' WHERE client_id = %s", [changed])

    def renamed() -> bool:
        body = _get(f"{url}/api/cache/{retrieval_key}?limit=1000", headers=auth).json()
        record = next(item["record"] for item in body["results"] if item["key"] == f"client:{changed}")
        return record["name"] == "Renamed In The Source"

    wait_for(renamed, timeout=60, what="the source's change in the cache")

    # Each task ran on the worker of its queue, and only there ("Task <name>[<id>] received").
    logs = {q: (prod_layout["logs"] / f"worker-{q}.log").read_text() for q in QUEUES}
    ran = {q: {t for t in ("load_run_task", "consume_task") if f"kafkacache.tasks.{t}[" in logs[q]} for q in QUEUES}
    assert ran == {"consume": {"consume_task"}, "loads": {"load_run_task"}, "reconcile": set(), "alerts": set()}
