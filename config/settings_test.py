"""Test settings: the same environment variables, with defaults that keep a test
run apart from a `make run` on the same machine (own Redis databases, own topic
names, own consumer group)."""

import os

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

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# Test clients log in with client.login(), which passes no request: axes's backend
# refuses that. tests/security/test_logins.py puts it back to test the lockout.
AUTHENTICATION_BACKENDS = [b for b in AUTHENTICATION_BACKENDS if not b.startswith("axes.")]  # noqa: F405
# Tests never run collectstatic: whitenoise looks a file up when it is asked for instead
# of scanning STATIC_ROOT at start-up (which warns, once per middleware build, that it is missing).
WHITENOISE_AUTOREFRESH = True
