import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.names import TOKENS, name_make, names_made

ROOT = Path(__file__).resolve().parent.parent

# Shared checks outside test modules still get pytest's assertion messages.
pytest.register_assert_rewrite("tests.reliability.accounting")


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database with the system of record's schema (no clients): the change API
    draws its versions from the source's sequence and bounds given ones by it
    (kafkacache.versions). A test that seeds the source recreates the schema in its own
    transaction (rolled back after it) or keeps it (a transactional test): either way it exists."""
    from core.ods import ods_seed
    from tests.source_state import versions_given

    with django_db_blocker.unblock():
        ods_seed(clients=0, using="default")
        versions_given(1000)  # versions a test names up to this are ones the source has given


_TOPICS_LEFT: list[str] = []  # what the end of the run says about its topics


def pytest_sessionfinish(session):
    """The topics this run created are deleted from the broker at its end (a developer's broker
    would otherwise keep every test's topics: thousands of log directories, minutes to start)."""
    if not TOKENS:
        return
    from core.clients import make_admin  # the product's modules only once Django is set up
    from kafkacache.services.topics import topics_delete

    try:
        made = names_made(make_admin().list_topics(timeout=15).topics)
        outcome: dict[str, str] = {}
        for start in range(0, len(made), 500):
            outcome |= topics_delete(made[start : start + 500])
    except Exception as exc:  # the run's outcome stands; what was left is said
        outcome = {"*": f"{type(exc).__name__}: {exc}"}
    failed = sorted((name, why) for name, why in outcome.items() if why != "deleted")
    _TOPICS_LEFT.append(f"this run's topics deleted: {len(outcome) - len(failed)}")
    _TOPICS_LEFT.extend(f"not deleted: {name}: {why}" for name, why in failed[:10])


def pytest_terminal_summary(terminalreporter):
    for line in _TOPICS_LEFT:
        terminalreporter.write_line(f"[topics] {line}")


@pytest.fixture
def reason_codes(db):
    """The reason codes the migrations seed, for a test that accepts a break with one: a
    transactional test run earlier in the same process flushes them with every other row."""
    import importlib  # a migration module's name starts with a digit: no import statement reaches it

    from django.apps import apps

    importlib.import_module("recon.migrations.0001_squashed_0015_audit_reencrypted").reason_codes_seed(apps, None)


@pytest.fixture
def unique_name():
    """A fresh name for topics and groups, so tests never see each other's messages."""

    return name_make


@contextlib.contextmanager
def celery_worker(env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real Celery worker process on the test broker and the test database: its node name
    and process (the leader of its own process group). `env`: settings of its own."""
    from config.celery import QUEUES, app

    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="config.settings_test", DATABASE_URL=_test_database_url(), **(env or {})
    )
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-n", name]
    proc = subprocess.Popen(
        [*argv, "-Q", ",".join(QUEUES), "--loglevel=WARNING"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[name], timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Celery worker did not start")
        yield name, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real Celery worker process on the test broker and the test database."""
    with celery_worker() as (name, _proc):
        yield name


@pytest.fixture
def cache():
    """The cache store (this run's Redis database), with no kc:* keys before or after the test."""
    from core.clients import redis_client

    client = redis_client()

    def clear() -> None:
        keys = list(client.scan_iter("kc:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])

    clear()
    yield client
    clear()
