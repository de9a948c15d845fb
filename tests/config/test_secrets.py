"""Fail closed on secrets: a production process (DJANGO_DEBUG=0) refuses to start on a
development default, naming it; the documented production settings pass
`manage.py check --deploy` with no warning. Each run is a real process started with
the settings module every process uses (config.settings): web, manage.py, Celery."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import secrets

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# The production settings the README documents (Security: production checklist), with
# test values for the secrets. SEAL_SIGNING_KEYS is empty: a process that only verifies.
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "prod-test-3f9a1c7e5b2d8f4a6c0e9b1d7f3a5c8e2b4d6f0a1c3e5b7d9f",
    "DJANGO_ALLOWED_HOSTS": "ops.bank.example",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO=https",
    "FIELD_ENCRYPTION_KEYS": "p1:cHJvZC10ZXN0LWZpZWxkLWtleS0zMi1ieXRlcy1sb24=",
    "AUDIT_ENCRYPTION_KEYS": "a1:cHJvZC10ZXN0LWF1ZGl0LWtleS0zMi1ieXRlcy1sb24=",
    "SEAL_SIGNING_KEYS": "",
    "SEAL_VERIFY_KEYS": "s1:cHJvZC10ZXN0LXB1YmxpYy1rZXktMzItYnl0ZXMtbG8=",
    "DATABASE_URL": "postgres://kafkacache:prod-test-password@127.0.0.1:5432/kafkacache",
}
DEV = {
    "DJANGO_SECRET_KEY": secrets.DEV_SECRET_KEY,
    "FIELD_ENCRYPTION_KEYS": secrets.DEV_FIELD_ENCRYPTION_KEYS,
    "AUDIT_ENCRYPTION_KEYS": secrets.DEV_AUDIT_ENCRYPTION_KEYS,
    "SEAL_SIGNING_KEYS": secrets.DEV_SEAL_SIGNING_KEYS,
    "SEAL_VERIFY_KEYS": secrets.DEV_SEAL_VERIFY_KEYS,
    "DATABASE_URL": "postgres://kafkacache:kafkacache@127.0.0.1:5432/kafkacache",
}


def _env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KAFKACACHE_"))}
    for name in (*DEV, "SOURCE_DATABASE_URL"):
        env.pop(name, None)
    env.update(PRODUCTION)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_production_with_nothing_set_refuses_to_start_naming_every_default():
    env = _env(**dict.fromkeys(DEV))  # DJANGO_DEBUG=0 and no secret set at all
    result = _run([PYTHON, "manage.py", "check"], env)
    assert result.returncode != 0
    assert "InsecureSettings" in result.stderr
    for name in DEV:
        assert name in result.stderr, name


@pytest.mark.parametrize("name", list(DEV))
def test_each_development_default_alone_stops_a_production_process(name):
    result = _run([PYTHON, "manage.py", "check"], _env(**{name: DEV[name]}))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("config.secrets.InsecureSettings") and name in last
    assert [n for n in DEV if n in last] == [name]


def test_a_development_key_hidden_in_a_keyring_is_found():
    rotated = f"p2:cHJvZC10ZXN0LWZpZWxkLWtleS0zMi1ieXRlcy1sb24=,{secrets.DEV_FIELD_ENCRYPTION_KEYS}"
    assert secrets.dev_defaults_in_use({"FIELD_ENCRYPTION_KEYS": rotated}) == ["FIELD_ENCRYPTION_KEYS"]
    renamed = "mine:" + secrets.DEV_AUDIT_ENCRYPTION_KEYS.partition(":")[2]
    assert secrets.dev_defaults_in_use({"AUDIT_ENCRYPTION_KEYS": renamed}) == ["AUDIT_ENCRYPTION_KEYS"]
    dsn = "postgres://u:kafkacache@db:5432/x"
    assert secrets.dev_defaults_in_use({"SOURCE_DATABASE_URL": dsn}) == ["SOURCE_DATABASE_URL"]


def test_a_celery_worker_refuses_to_start_with_a_development_key():
    env = _env(FIELD_ENCRYPTION_KEYS=secrets.DEV_FIELD_ENCRYPTION_KEYS)
    celery = str(Path(PYTHON).with_name("celery"))
    result = _run([celery, "-A", "config", "worker", "--pool=solo", "-Q", "sec-test-none"], env, timeout=90)
    assert result.returncode != 0
    assert "InsecureSettings" in result.stderr and "FIELD_ENCRYPTION_KEYS" in result.stderr


def test_the_documented_production_settings_pass_check_deploy_with_no_warning():
    result = _run([PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], _env())
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_bench_escape_hatch_starts_but_check_deploy_refuses_it():
    env = _env(KAFKACACHE_ALLOW_DEV_SECRETS="1", **DEV)
    assert _run([PYTHON, "manage.py", "check"], env).returncode == 0
    result = _run([PYTHON, "manage.py", "check", "--deploy"], env)
    assert result.returncode != 0
    assert "kafkacache.E001" in result.stderr and "kafkacache.E002" in result.stderr


_PROBE = """
import django; django.setup()
from django.test import Client
client = Client(raise_request_exception=False)
plain = client.get("/accounts/login/", HTTP_HOST="ops.bank.example")
print("redirect", plain.status_code, plain.get("Location"))
plain_health = client.get("/healthz", HTTP_HOST="ops.bank.example")
print("health", plain_health.status_code)
tls = client.get("/accounts/login/", HTTP_HOST="ops.bank.example", HTTP_X_FORWARDED_PROTO="https")
print("hsts", tls.get("Strict-Transport-Security"))
print("csp", tls.get("Content-Security-Policy"))
print("csrf-cookie", tls.cookies["csrftoken"]["secure"], tls.cookies["csrftoken"]["samesite"])
from django.conf import settings
print("session", settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_AGE, settings.SESSION_SAVE_EVERY_REQUEST)
"""


def test_production_answers_with_tls_headers_and_secure_cookies_from_the_environment():
    env = _env(DJANGO_SESSION_IDLE_SECONDS="900")
    result = _run([PYTHON, "-c", _PROBE], env)
    assert result.returncode == 0, result.stderr
    out = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert out["redirect"] == "301 https://ops.bank.example/accounts/login/"  # plain http goes to https
    assert out["health"].startswith(("200", "503"))  # the probe path is exempt from the redirect
    assert out["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert "script-src 'self'" in out["csp"] and "frame-ancestors 'none'" in out["csp"]
    assert out["csrf-cookie"] == "True Lax"
    assert out["session"] == "True 900 True"
