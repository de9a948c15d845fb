"""A Redis fail-over in the middle of a consume, for the cluster and sentinel layouts:
the real consumer as a process (`manage.py consume`), the figures, and the proof that
the cache leg finds what the fail-over dropped and a replay from the source restores it."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from django.utils import timezone

from core.cache_records import cache_records_get
from core.records import record_decode
from kafkacache.consumer import FeedConsumer
from kafkacache.services.loads import load_run, load_start
from recon.services.cache_check import cache_check
from recon.services.feed import feed_topics_ensure
from replay.services.requests import replay_request
from replay.services.runs import replay_run

from ..kafkacache.conftest import cached_keys, source_records, subprocess_database_url, wait_for
from .helpers import ROOT


def later() -> dt.datetime:
    return timezone.now() + dt.timedelta(hours=2)  # past every latency limit: nothing is in flight


def consume_here(limit: float = 60.0) -> FeedConsumer:
    consumer = FeedConsumer()
    consumer.run(drain=True, max_seconds=limit)
    return consumer


def lost_keys(client, expected: dict[str, dict]) -> set[str]:
    """Keys whose cached record is not the source's (read straight from the store)."""
    held = cache_records_get(client, expected)
    return {
        key
        for key, record in expected.items()
        if key not in held
        or record_decode(held[key].value, schema_version=held[key].schema_version, decrypt=True) != record
    }


def _consumer(settings, store_env: dict[str, str]) -> subprocess.Popen:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings_test",
        DATABASE_URL=subprocess_database_url(),
        KAFKA_TOPIC_BULK=settings.KAFKA_TOPIC_BULK,
        KAFKA_TOPIC_CHANGE=settings.KAFKA_TOPIC_CHANGE,
        KAFKA_TOPIC_DEAD_LETTER=settings.KAFKA_TOPIC_DEAD_LETTER,
        KAFKA_CONSUMER_GROUP=settings.KAFKA_CONSUMER_GROUP,
        CONSUMER_BATCH_SIZE="50",
        # `consume` joins as the static member <group>-0 and leaves without a LeaveGroup; the
        # in-process consumer after it (consume_here) is dynamic, and its join waits until the
        # broker drops that member at the session timeout: the broker's minimum, not 45 s.
        CONSUMER_SESSION_TIMEOUT_MS="6000",
        **store_env,
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "consume", "--drain", "--max-seconds", "150", "--lock-wait", "30"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def fail_over_mid_consume(settings, client, *, store_env: dict[str, str], ids: range, fail: Callable) -> dict:
    """Load `ids` from the source, consume them in a process, call `fail` once a third is
    cached; answers the figures (the consumer must end cleanly)."""
    bulk = feed_topics_ensure()["bulk"]
    load = load_start(topic=bulk, source="ods", client_ids=list(ids), requested_by=None, queue=False)
    assert load_run(load_id=load.id).published == len(ids)
    wanted = {f"client:{i}" for i in ids}
    proc = _consumer(settings, store_env)
    try:
        wait_for(lambda: len(cached_keys(client) & wanted) > len(ids) // 3, timeout=90, what="a third consumed")
        began = time.monotonic()
        fail()
        took = time.monotonic() - began
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    return {
        "records": len(ids),
        "fail_over_seconds": round(took, 1),
        "batch_retries": text.count("write failed"),
        "wait_short_batches": text.count("WAIT fell short"),
    }


def replay_from_source(topic, keys: list[str], *, operator, reason: str) -> None:
    """Replay these keys from the system of record (run at once) and consume what it published."""
    replay, _ = replay_request(
        topic=topic,
        way="source",
        scope="clients",
        target={"keys": keys},
        reason=reason,
        requested_by=operator,
        queue=False,
    )
    assert replay_run(replay_id=replay.pk).status == "done"
    consume_here(limit=90)


def leg_finds_and_replay_restores(client, *, topic, operator, methods=("keys",)) -> dict:
    """The cache leg names exactly the keys the store lost (by each of `methods`: "digest" where
    the test marked the digests complete); a replay from the source of those keys, consumed,
    makes the cache equal the source again. Answers the figures."""
    expected = source_records()
    lost = lost_keys(client, expected)
    for method in methods:
        run = cache_check(topic=topic, now=later(), trigger="test", method=method)
        assert run.report["method"] == method
        found = {key for entry in run.report.get("problems", {}).values() for key in entry["keys"]}
        assert found == lost, method  # every key the fail-over dropped, and nothing else
    if lost:
        replay_from_source(topic, sorted(lost), operator=operator, reason="dropped by a fail-over")
    assert lost_keys(client, expected) == set()
    assert cache_check(topic=topic, now=later(), trigger="test").report["all_matched"] is True
    return {"keys_lost": len(lost), "keys_found_by_leg": len(found)}
