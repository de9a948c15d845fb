"""The product on secured services: Kafka SASL_SSL/SCRAM-SHA-512 and mutual TLS, Redis TLS
with ACL users, PostgreSQL with sslmode=verify-full, all started by `bin/services up --secure`
on free loopback ports with certificates and passwords made for this run.

A bulk load runs end to end through a Celery worker on the ACL'd broker user, the consumer
and the cache leg; wrong passwords, an untrusted CA, a host name the certificate does not
name and an expired certificate stop the start-up check within seconds, naming the
service and the reason.
"""

import json
import subprocess
import sys
import time
import uuid

import pytest
import redis

from .helpers import ROOT, PrivateRedis, stop_group
from .secure import SecureServices, child_env, make_expired_cert, make_stranger_ca, manage

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENTS = 30


@pytest.fixture(scope="module")
def secure():
    services = SecureServices.create()
    try:
        services.services("up")
        yield services
    finally:
        services.down()


@pytest.fixture(scope="module")
def env(secure):
    suffix = uuid.uuid4().hex[:8]
    out = child_env(
        {
            **secure.product_env(),
            "KAFKA_TOPIC_BULK": f"s.bulk-{suffix}",
            "KAFKA_TOPIC_CHANGE": f"s.change-{suffix}",
            "KAFKA_TOPIC_DEAD_LETTER": f"s.dlq-{suffix}",
            "KAFKA_CONSUMER_GROUP": f"s.group-{suffix}",
            "SOURCE_FILE_DIR": str(secure.var_dir),
        }
    )
    for args in (("migrate", "--no-input", "-v", "0"), ("kafka_topics",), ("seed_source", "--clients", str(CLIENTS))):
        done = manage(out, *args, timeout=120)
        assert done.returncode == 0, done.stderr
    return out


PIPELINE = """
import json, time
from django.db import transaction
from kafkacache import selectors
from kafkacache.services import loads
from kafkacache.consumer import consume_run
from recon.models import Load
from recon.services.cache_check import cache_check
from recon.services.feed import feed_topics_ensure
topics = feed_topics_ensure()
with transaction.atomic():  # queued through the Celery broker on commit
    load = loads.load_start(topic=topics["bulk"], source="ods", client_ids=None, requested_by=None)
deadline = time.monotonic() + 60
while Load.objects.get(id=load.id).status not in ("done", "failed") and time.monotonic() < deadline:
    time.sleep(0.2)
load.refresh_from_db()
consume_run(drain=True, max_seconds=60, lock_wait=5)
count, items = selectors.load_records(load=load, payload_topics={topics["bulk"].name}, offset=0, limit=1000)
run = cache_check(topic=topics["bulk"], load=load, trigger="api")
print("RESULT " + json.dumps({"status": load.status, "published": load.published, "count": count,
      "records": sum(1 for i in items if i["record"]), "run": run.status, "report": run.report}, default=str))
"""


def test_a_bulk_load_runs_end_to_end_on_the_secured_services(env):
    worker_name = f"loads-{uuid.uuid4().hex[:6]}@localhost"
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "loads", "--pool=solo", "-n", worker_name]
    worker = subprocess.Popen(
        [*argv, "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        done = manage(env, "shell", "-c", PIPELINE, timeout=180)
    finally:
        stop_group(worker, grace=20)
    assert done.returncode == 0, "\n".join(line for line in done.stderr.splitlines() if line[:1] != " ")[-4000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert (result["status"], result["published"]) == ("done", CLIENTS), result
    assert (result["count"], result["records"]) == (CLIENTS, CLIENTS), result
    assert result["run"] == "done" and result["report"]["all_matched"] is True, result["report"]
    assert result["report"]["checked"] == CLIENTS


def test_the_start_up_check_passes_on_every_secured_service(env):
    done = manage(env, "preflight")
    assert done.returncode == 0, done.stderr
    assert "kafka (localhost:" in done.stdout and "SASL_SSL): ok" in done.stdout
    assert "sslmode=verify-full): ok" in done.stdout
    assert "redis (rediss://localhost:" in done.stdout


def test_mutual_tls_is_an_option_for_kafka_and_redis(secure, env):
    tls = secure.tls
    mtls = {
        "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{secure.ports['SECURE_KAFKA_MTLS_PORT']}",
        "KAFKA_CLIENT_CONFIG": secure.product_env()["KAFKA_CLIENT_CONFIG_MTLS"],
        "REDIS_URL": env["REDIS_URL"] + f"&ssl_certfile={tls / 'client.pem'}&ssl_keyfile={tls / 'client.key'}",
    }
    done = manage({**env, **mtls}, "preflight", "--only", "kafka", "--only", "redis")
    assert done.returncode == 0, done.stderr
    # Without its certificate the client is refused by the mutual-TLS listener.
    no_cert = json.loads(mtls["KAFKA_CLIENT_CONFIG"])
    del no_cert["ssl.certificate.location"], no_cert["ssl.key.location"]
    started = time.monotonic()
    refused = manage({**env, **mtls, "KAFKA_CLIENT_CONFIG": json.dumps(no_cert)}, "preflight", "--only", "kafka")
    assert refused.returncode == 1
    assert "preflight: kafka (localhost:" in refused.stderr and "SSL" in refused.stderr, refused.stderr
    assert time.monotonic() - started < 30


def _preflight_fails(env: dict, *, expect: dict[str, str]) -> str:
    started = time.monotonic()
    done = manage(env, "preflight")
    assert done.returncode == 1, done.stdout
    assert time.monotonic() - started < 30, "the start-up check must not hang"
    lines = [line for line in done.stderr.splitlines() if line.startswith("preflight: ")]
    for service, reason in expect.items():
        line = next((line for line in lines if line.startswith(f"preflight: {service} (")), None)
        assert line is not None, f"{service} not reported: {done.stderr[-2000:]}"
        assert reason.lower() in line.lower(), line
    return done.stderr


def test_wrong_passwords_stop_the_start_up_naming_service_and_reason(env):
    config = json.loads(env["KAFKA_CLIENT_CONFIG"])
    wrong = {
        "DATABASE_URL": env["DATABASE_URL"].replace("kafkacache:", "kafkacache:wrong", 1),
        "REDIS_URL": env["REDIS_URL"].replace("kafkacache:", "kafkacache:wrong", 1),
        "CELERY_BROKER_URL": env["CELERY_BROKER_URL"].replace("kafkacache-celery:", "kafkacache-celery:wrong", 1),
        "KAFKA_CLIENT_CONFIG": json.dumps({**config, "sasl.password": "wrong"}),
    }
    stderr = _preflight_fails(
        {**env, **wrong},
        expect={
            "postgresql": "password authentication failed",
            "redis": "invalid username-password pair",
            "celery broker": "invalid username-password pair",
            "kafka": "authentication failed",
        },
    )
    assert "wrong" not in stderr.replace("kafkacache:wrong", "")  # passwords are not echoed


def test_an_untrusted_ca_stops_the_start_up(env, tmp_path):
    stranger = str(make_stranger_ca(tmp_path))
    ca = env["REDIS_URL"].split("ssl_ca_certs=")[1].split("&")[0]
    config = json.loads(env["KAFKA_CLIENT_CONFIG"])
    untrusted = {
        "DATABASE_URL": env["DATABASE_URL"].replace(ca, stranger),
        "REDIS_URL": env["REDIS_URL"].replace(ca, stranger),
        "CELERY_BROKER_URL": env["CELERY_BROKER_URL"].replace(ca, stranger),
        "KAFKA_CLIENT_CONFIG": json.dumps({**config, "ssl.ca.location": stranger}),
    }
    _preflight_fails(
        {**env, **untrusted},
        expect={
            "postgresql": "certificate verify failed",
            "redis": "certificate verify failed",
            "celery broker": "certificate verify failed",
            "kafka": "certificate verify failed",
        },
    )


def test_a_host_name_the_certificate_does_not_name_stops_the_start_up(env):
    # The certificates name DNS:localhost only: 127.0.0.1 is the same server but not the name verified.
    by_ip = {
        "DATABASE_URL": env["DATABASE_URL"].replace("@localhost:", "@127.0.0.1:"),
        "REDIS_URL": env["REDIS_URL"].replace("@localhost:", "@127.0.0.1:"),
        "CELERY_BROKER_URL": env["CELERY_BROKER_URL"].replace("@localhost:", "@127.0.0.1:"),
        "KAFKA_BOOTSTRAP_SERVERS": env["KAFKA_BOOTSTRAP_SERVERS"].replace("localhost", "127.0.0.1"),
    }
    _preflight_fails(
        {**env, **by_ip},
        expect={"postgresql": "does not match", "redis": "mismatch", "kafka": "certificate verify failed"},
    )


def test_an_expired_certificate_stops_the_start_up(secure, env, tmp_path):
    cert, key = make_expired_cert(secure.tls, tmp_path / "expired")
    tls_redis = PrivateRedis(
        tmp_path / "redis",
        *("--port", "0", "--tls-port", str(free := _port()), "--tls-cert-file", str(cert), "--tls-key-file", str(key)),
        *("--tls-ca-cert-file", str(secure.tls / "ca.pem"), "--tls-auth-clients", "no"),
    )
    try:
        url = f"rediss://localhost:{free}/0?ssl_cert_reqs=required&ssl_ca_certs={secure.tls / 'ca.pem'}"
        done = manage({**env, "REDIS_URL": url}, "preflight", "--only", "redis")
        assert done.returncode == 1
        assert "preflight: redis (rediss://localhost:" in done.stderr
        assert "certificate has expired" in done.stderr, done.stderr
    finally:
        tls_redis.stop()


def _port() -> int:
    from .helpers import free_port

    return free_port()


def test_postgresql_refuses_plain_tcp(env):
    plain = env["DATABASE_URL"].split("?")[0] + "?sslmode=disable"
    _preflight_fails({**env, "DATABASE_URL": plain}, expect={"postgresql": "no encryption"})


def test_the_redis_users_may_do_only_what_the_product_needs(secure, env):
    app = redis.Redis.from_url(env["REDIS_URL"])
    assert app.set("kc:acl-probe", "1", ex=5) and app.delete("kc:acl-probe") == 1
    for refused in (
        lambda: app.set("other:key", "1"),
        lambda: app.flushall(),
        lambda: app.config_get("*"),
        lambda: app.keys("*"),
        lambda: app.execute_command("ACL", "LIST"),
        lambda: app.lpush("consume", "x"),  # the broker's keys are the broker user's
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            refused()
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    with pytest.raises(redis.exceptions.NoPermissionError):
        broker.set("kc:rec:{client:1}", "forged")
    with pytest.raises(redis.exceptions.NoPermissionError):
        broker.flushall()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(env["REDIS_URL"].replace("kafkacache:", "default:", 1)).ping()
