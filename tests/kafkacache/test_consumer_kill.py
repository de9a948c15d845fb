"""SIGKILL in the middle of a batch loses nothing: Redis equals the source afterwards.

The consumer runs as a real process (`manage.py consume`). To be sure the kill
lands inside a batch, the test holds a lock on the consume-ledger table: the consumer
writes a batch to Redis, then blocks in the ledger transaction, before its
offsets are stored. That is where it is killed. (The lock is on the consume
ledger only; the producer's ledger writes go on.)
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from core.ods import ods_seed
from kafkacache.services.loads import load_run, load_start
from recon.models import ConsumedMessage, PublishedMessage, RebalanceEvent
from recon.services.feed import feed_topics_ensure

from .conftest import cached_keys, source_records, subprocess_database_url, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _consumer(feed, *args: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings_test",
        DATABASE_URL=subprocess_database_url(),
        KAFKA_TOPIC_BULK=feed.KAFKA_TOPIC_BULK,
        KAFKA_TOPIC_CHANGE=feed.KAFKA_TOPIC_CHANGE,
        KAFKA_TOPIC_DEAD_LETTER=feed.KAFKA_TOPIC_DEAD_LETTER,
        KAFKA_CONSUMER_GROUP=feed.KAFKA_CONSUMER_GROUP,
        CONSUMER_BATCH_SIZE="50",
        CONSUMER_LOCK_SECONDS="3",  # the killed run's lock expires quickly
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "consume", "--lock-wait", "30", *(args or ("--drain", "--max-seconds", "90"))],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_consumer_killed_mid_batch_and_restarted_loses_nothing(feed, cache, transactional_db):
    ods_seed(clients=1000, using="default")
    bulk = feed_topics_ensure()["bulk"]
    first = load_start(topic=bulk, source="ods", client_ids=list(range(1, 301)), requested_by=None, queue=False)
    assert load_run(load_id=first.id).published == 300

    proc = _consumer(feed)
    try:
        wait_for(lambda: ConsumedMessage.objects.filter(topic=bulk).count() >= 300, timeout=60, what="first 300")
        with psycopg.connect(subprocess_database_url().replace("postgres://", "postgresql://")) as blocker:
            blocker.execute("LOCK TABLE recon_consumedmessage IN SHARE MODE")  # held until rollback
            rest = load_start(
                topic=bulk, source="ods", client_ids=list(range(301, 1001)), requested_by=None, queue=False
            )
            assert load_run(load_id=rest.id).published == 700
            # wait: a batch is in Redis, its ledger write is blocked, offsets not stored
            wait_for(lambda: len(cached_keys(cache)) > 300, timeout=60, what="a batch in Redis")
            wait_for(lambda: _blocked_on_lock(), timeout=30, what="the ledger write to block")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            blocker.rollback()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    mid = len(cached_keys(cache))
    assert 300 < mid < 1000, mid  # killed part-way

    restarted = _consumer(feed)
    output, _ = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, output.decode()[-2000:]

    expected = source_records()
    assert cached_keys(cache) == set(expected)
    from core.cache_records import cache_records_get
    from core.records import record_decode

    for key, hit in cache_records_get(cache, expected).items():
        assert record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) == expected[key]
    published = set(PublishedMessage.objects.filter(topic=bulk).values_list("uuid", flat=True))
    consumed = set(ConsumedMessage.objects.filter(topic=bulk).values_list("uuid", flat=True))
    assert len(published) == 1000
    assert published == consumed  # every message consumed (some twice: at-least-once)


def _blocked_on_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query ILIKE '%%recon_consumedmessage%%'"
        )
        return cursor.fetchone()[0] > 0


def test_sigterm_stops_the_consumer_cleanly_with_a_summary(feed, cache, transactional_db):
    feed_topics_ensure()
    proc = _consumer(feed, "--max-seconds", "60")
    try:
        wait_for(
            lambda: RebalanceEvent.objects.filter(group=feed.KAFKA_CONSUMER_GROUP, kind="assigned").exists(),
            timeout=30,
            what="the consumer to join",
        )
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
    assert "consumer stopped:" in output.decode() and "stopped True" in output.decode()
    # left the loop through close(): the revoke was recorded on the way out
    assert RebalanceEvent.objects.filter(group=feed.KAFKA_CONSUMER_GROUP, kind="revoked").exists()
