"""Test settings: the same environment variables, with defaults that keep a test
run apart from a `make run` on the same machine (own Redis databases, own topic
names, own consumer group)."""

import os
from urllib.parse import urlsplit

_TEST_DEFAULTS = {
    "REDIS_URL": "redis://127.0.0.1:6379/13",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
    "KAFKA_TOPIC_BULK": "test.cache.bulk",
    "KAFKA_TOPIC_CHANGE": "test.cache.change",
    "KAFKA_TOPIC_DEAD_LETTER": "test.cache.dead-letter",
    "KAFKA_CONSUMER_GROUP": "test-cache-feeder",
    "KAFKA_LINGER_MS": "1",
    # Development semantics at start-up: the dev keys are accepted (config.secrets) and
    # there is no https redirect. pytest-django still runs each test with DEBUG off.
    "DJANGO_DEBUG": "1",
    # The tests' webhook receivers listen on loopback over http.
    "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "WEBHOOK_ALLOW_HTTP": "1",
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
}
for _name, _value in _TEST_DEFAULTS.items():
    os.environ.setdefault(_name, _value)


def _worker_world(worker: str) -> None:
    """Under pytest-xdist (`make test` runs `pytest -n 2`), each worker gets a world of its own:
    its Redis databases (gw0: 13 and 14, as a run in one process; gw1: 11 and 12; ...), its
    topic and group names, and pytest-django gives it its own test database. Written into
    the environment once (KC_TEST_WORLD): the Celery workers and scripts a test starts
    inherit it and must not shift it again."""
    if os.environ.get("KC_TEST_WORLD") == worker:
        return
    n = int(worker.removeprefix("gw"))
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        url = urlsplit(os.environ[name])
        db = int(url.path.lstrip("/") or 0) - 2 * n
        if db < 0:
            raise RuntimeError(f"{name}: too many test workers for its Redis databases ({worker})")
        os.environ[name] = url._replace(path=f"/{db}").geturl()
    for name in ("KAFKA_TOPIC_BULK", "KAFKA_TOPIC_CHANGE", "KAFKA_TOPIC_DEAD_LETTER", "KAFKA_CONSUMER_GROUP"):
        os.environ[name] = f"{os.environ[name]}.{worker}"
    os.environ["KC_TEST_WORLD"] = worker


if os.environ.get("PYTEST_XDIST_WORKER"):
    _worker_world(os.environ["PYTEST_XDIST_WORKER"])

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# Test clients log in with client.login(), which passes no request: axes's backend
# refuses that. tests/security/test_logins.py puts it back to test the lockout.
AUTHENTICATION_BACKENDS = [b for b in AUTHENTICATION_BACKENDS if not b.startswith("axes.")]  # noqa: F405
# Tests never run collectstatic: whitenoise looks a file up when it is asked for instead
# of scanning STATIC_ROOT at start-up (which warns, once per middleware build, that it is missing).
WHITENOISE_AUTOREFRESH = True
