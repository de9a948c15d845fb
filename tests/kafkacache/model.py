"""A model-based test of the cache's promise: whatever happens, Redis ends equal to the source.

A hypothesis state machine drives the real services through random
interleavings of what happens in production: source changes (add, update,
renumber, delete, id reuse), the change feed, bulk loads, bulk batches read
early and published late, replays of each way (audit log, source, Kafka
re-read), consumers killed with SIGKILL and restarted, and producers whose
clocks run ahead or behind. After every step:

- the cache is never ahead of the source: no key holds a version the source
  has not reached, and no key is cached at a version its source record does
  not have (a cached version is always one the source gave);
- at a reconcile point (everything published, consumed and drained) every key
  where Redis still differs from the source (the model also damages Redis
  behind the feed's back) is reported by the cache leg, and once replayed from
  the source Redis equals the source, record by record, for every key.

tests/kafkacache/test_model.py runs it bounded (a few hypothesis examples, and
seeded random walks over the same steps, since hypothesis's first examples are
its simplest ones); bench/model_soak.py runs it long.
"""

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import kafkacache.messages as messages_module
from core.cache_records import cache_records_get
from core.clients import redis_client
from core.ods import ods_seed
from core.records import record_decode
from core.sources import SourceItem, SqlSource
from kafkacache.consumer import FeedConsumer
from kafkacache.services.change_feed import change_feed_run
from kafkacache.services.loads import load_run, load_start
from kafkacache.services.publishing import items_publish
from kafkacache.services.topics import topics_delete, topics_ensure
from recon.models import Finding, PublishedMessage, Replay
from recon.services.cache_check import cache_check
from recon.services.feed import feed_topics_ensure
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.cache_state import cached, cached_keys, record_forge, records_drop
from tests.names import token_make

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IDS = range(1, 13)  # a small id space, so renumbering and reuse collide often


def _sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _existing() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_id FROM ods.clients ORDER BY client_id")
        return [row[0] for row in cursor.fetchall()]


@contextmanager
def _clock(offset_ms: int):
    """This process's producer clock, off by `offset_ms` (messages.now_ms stamps `created`)."""
    real = messages_module.now_ms
    messages_module.now_ms = lambda: real() + offset_ms
    try:
        yield
    finally:
        messages_module.now_ms = real


def source_now() -> dict[str, SourceItem]:
    source = SqlSource()
    return {item.key: item for batch in source.batches(batch_size=1000) for item in batch}


def cache_now() -> dict:
    client = redis_client()
    return cache_records_get(client, cached_keys(client))


class CacheModel(RuleBasedStateMachine):
    """One example: fresh topics, a seeded source, a loaded cache; then random steps."""

    _topic_settings = ("KAFKA_TOPIC_BULK", "KAFKA_TOPIC_CHANGE", "KAFKA_TOPIC_DEAD_LETTER")
    steps_run: Counter = Counter()  # across examples: which steps ran (the test checks the mix)

    def __init__(self):
        super().__init__()
        self.override = None
        self.stale: list[SourceItem] = []  # a bulk batch read early, published later
        self.seen_versions: dict[str, set[int]] = {}
        self.damaged: set[str] = set()  # keys the model itself corrupted since the last reconcile point
        self.kills = 0

    @initialize()
    def start(self):
        name = token_make()  # its topics are deleted at the end of the run (tests/names.py)
        self.names = {
            "KAFKA_TOPIC_BULK": f"m.{name}.bulk",
            "KAFKA_TOPIC_CHANGE": f"m.{name}.change",
            "KAFKA_TOPIC_DEAD_LETTER": f"m.{name}.dlq",
            "KAFKA_CONSUMER_GROUP": f"m.{name}.group",
        }
        # the replay guard (four-eyes work) would stop the model's many replays of one message
        self.override = override_settings(**self.names, REPLAY_MAX_PER_MESSAGE=10_000)
        self.override.enable()
        topics_ensure([self.names[k] for k in self._topic_settings])
        for key in redis_client().scan_iter("kc:*", count=1000):
            redis_client().delete(key)
        ods_seed(clients=8, using="default")
        self.topics = feed_topics_ensure()
        for topic in self.topics.values():
            topic.method_audit = True
            topic.save()
        self._load()
        self._consume()
        self._remember()

    def teardown(self):
        """Every example ends at a reconcile point, whatever the steps were."""
        if self.override is None:
            return
        try:
            self.reconcile_point()
        finally:
            topics_delete(
                [self.names[k] for k in ("KAFKA_TOPIC_BULK", "KAFKA_TOPIC_CHANGE", "KAFKA_TOPIC_DEAD_LETTER")]
            )
            self.override.disable()

    # --- helpers ---------------------------------------------------------------------

    def _load(self):
        load = load_start(topic=self.topics["bulk"], source="ods", client_ids=None, requested_by=None, queue=False)
        load_run(load_id=load.id)

    def _consume(self):
        FeedConsumer(poll_timeout=0.2).run(drain=True, max_seconds=60)

    def _remember(self):
        for key, item in source_now().items():
            if item.version is not None:
                self.seen_versions.setdefault(key, set()).add(item.version)

    # One rule that picks the step: hypothesis's swarm testing switches whole rules off
    # per example, which at the suite's few examples would drop the interesting ones.
    ACTIONS = (
        "source_change",
        "source_change",
        "source_change",
        "feed",
        "bulk_read_early",
        "bulk_publish_late",
        "bulk_load",
        "replay",
        "replay",
        "consume",
        "consume_killed",
        "cache_damage",
        "reconcile_point",
    )

    @rule(action=st.sampled_from(ACTIONS), data=st.data())
    def step(self, action, data):
        self.do(action, lambda options: data.draw(st.sampled_from(options)))

    def do(self, action: str, pick) -> None:
        """One step; `pick(options)` chooses its parameters (hypothesis, or a seeded walk)."""
        if action == "bulk_publish_late" and not self.stale:
            action = "bulk_read_early"
        if action == "consume_killed" and self.kills >= 1:  # a process start costs seconds: once per example
            action = "consume"
        getattr(self, action)(pick)

    # --- the source changes ------------------------------------------------------------

    def source_change(self, pick):
        kind = pick(["update", "update", "insert", "delete", "renumber"])
        client, other = pick(IDS), pick(IDS)
        """One committed change in the system of record (ids collide often: reuse, renumbering onto a freed id)."""
        self.steps_run[f"source_{kind}"] += 1
        existing = _existing()
        if kind == "update":
            _sql("UPDATE ods.clients SET name = %s WHERE client_id = %s", [f"Name {random.random():.6f}", client])
            _sql(
                "UPDATE ods.cards SET status = %s WHERE client_id = %s", [random.choice(["active", "blocked"]), client]
            )
        elif kind == "insert" and client not in existing:
            _sql(
                "INSERT INTO ods.clients (client_id, name, segment, status, country) VALUES (%s, %s, 'x', 'y', 'US')",
                [client, f"Inserted {client}"],
            )
        elif kind == "delete":
            _sql("DELETE FROM ods.clients WHERE client_id = %s", [client])
        elif kind == "renumber" and client in existing and other not in existing:
            _sql("UPDATE ods.clients SET client_id = %s WHERE client_id = %s", [other, client])
        self._remember()

    # --- the producers -----------------------------------------------------------------

    def feed(self, pick):
        skew_s = pick([0, 0, 600, -600])
        self.steps_run["feed"] += 1
        with _clock(skew_s * 1000):
            change_feed_run()

    def bulk_read_early(self, pick):
        self.steps_run["bulk_read_early"] += 1
        self.stale = [item for batch in SqlSource().batches(batch_size=100) for item in batch]

    def bulk_publish_late(self, pick):
        """The batch read early goes out after the changes made since were published (and,
        most often, consumed: a subscriber that keeps up sees the change first)."""
        skew_s, caught_up = pick([0, 600]), pick([True, True, False])
        self.steps_run["bulk_publish_late"] += 1
        change_feed_run()
        if caught_up:
            self._consume()
        with _clock(skew_s * 1000):
            items_publish(topic=self.topics["bulk"], items=self.stale, event="bulk", source="ods")
        self.stale = []

    def bulk_load(self, pick):
        self.steps_run["bulk_load"] += 1
        self._load()

    # --- replays -------------------------------------------------------------------------

    def replay(self, pick):
        way = pick([Replay.Way.AUDIT, Replay.Way.SOURCE, Replay.Way.KAFKA])
        self.steps_run["replay"] += 1
        rows = list(
            PublishedMessage.objects.filter(topic__in=self.topics.values()).values_list("topic_id", "uuid")[:500]
        )
        if not rows:
            return
        topic_id, message_uuid = pick(rows)
        topic = next(t for t in self.topics.values() if t.pk == topic_id)
        replay, _ = replay_request(
            topic=topic,
            way=way,
            scope=Replay.Scope.MESSAGES,
            target={"uuids": [str(message_uuid)]},
            reason="model test",
            requested_by=None,
            queue=False,
        )
        replay_run(replay_id=replay.pk)

    # --- the consumers -------------------------------------------------------------------

    def consume(self, pick):
        self.steps_run["consume"] += 1
        self._consume()

    def consume_killed(self, pick):
        """A consumer process SIGKILLed mid-run; the next one takes over."""
        self.steps_run["consume_killed"] += 1
        self.kills += 1
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings_test", **self.names)
        db = settings.DATABASES["default"]
        env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        env["REDIS_URL"] = settings.REDIS_URL
        # The killed process is a static member (`consume` joins as <group>-0) and the next
        # in-process consumer a dynamic one: its join waits until the broker drops the dead
        # member at the session timeout. The broker's minimum (6 s), not the default 45 s.
        env["CONSUMER_SESSION_TIMEOUT_MS"] = "6000"
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "consume", "--drain", "--max-seconds", "30"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(random.uniform(1.5, 4.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def cache_damage(self, pick):
        """Redis loses or corrupts a key behind the feed's back (a flush, a failover, a bad hand)."""
        self.steps_run["cache_damage"] += 1
        keys = sorted(cache_now())
        if not keys:
            return
        key, how = pick(keys), pick(["delete", "older", "garbage"])
        self.damaged.add(key)
        client = redis_client()
        if how == "delete":
            records_drop(client, [key])
        elif how == "older":
            held = cached(client, key)
            record_forge(client, key, version=max((held.version if held else 1) - 1, 1))
        else:
            record_forge(client, key, value=b"\x00garbage")

    # --- what must hold ------------------------------------------------------------------

    @invariant()
    def the_cache_is_never_ahead_of_the_source(self):
        if self.override is None:
            return
        for key, held in cache_now().items():
            if held.version and key not in self.damaged:
                assert held.version in self.seen_versions.get(key, set()), (
                    f"{key} cached at version {held.version}, a version the source never gave it"
                )

    def reconcile_point(self, pick=None):
        """Everything published, consumed, drained: every key where Redis still differs from the
        source is reported by the cache leg; replayed from the source, Redis equals the source."""
        self.steps_run["reconcile_point"] += 1
        change_feed_run()
        self._consume()
        divergent = _divergent(source_now(), cache_now())
        if divergent:
            reported = set()
            for topic in self.topics.values():
                cache_check(topic=topic, trigger="model", now=timezone.now() + dt.timedelta(hours=1))
                reported |= set(
                    Finding.objects.filter(topic=topic, category=Finding.Category.CACHE)
                    .exclude(status=Finding.Status.RESOLVED)
                    .values_list("key", flat=True)
                )
            assert divergent <= reported, f"divergent but not reported by any leg: {divergent - reported}"
            replay, _ = replay_request(
                topic=self.topics["change"],
                way=Replay.Way.SOURCE,
                scope=Replay.Scope.CLIENTS,
                target={"keys": sorted(divergent)},
                reason="model: repair what the cache leg found",
                requested_by=None,
                queue=False,
            )
            replay_run(replay_id=replay.pk)
            self._consume()
        self.damaged.clear()
        expected = source_now()
        cached = cache_now()
        assert set(cached) == set(expected), (
            f"extra {set(cached) - set(expected)}, missing {set(expected) - set(cached)}"
        )
        for key, item in expected.items():
            hit = cached[key]
            assert hit.version == item.version, f"{key}: cache version {hit.version}, source {item.version}"
            assert record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) == item.record, key


def _divergent(expected: dict[str, SourceItem], cached: dict) -> set[str]:
    """Keys where Redis does not hold the source's record at the source's version."""
    out = set(cached) ^ set(expected)
    for key, item in expected.items():
        hit = cached.get(key)
        if hit is None:
            continue
        try:
            same = record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) == item.record
        except Exception:
            same = False
        if hit.version != item.version or not same:
            out.add(key)
    return out


def walk(seed: int, steps: int) -> Counter:
    """A random walk over the model's steps, reproducible from its seed; answers the steps run."""
    rng = random.Random(seed)
    world = CacheModel()
    world.steps_run = Counter()
    world.start()
    try:
        for _ in range(steps):
            world.do(rng.choice(CacheModel.ACTIONS), rng.choice)
            world.the_cache_is_never_ahead_of_the_source()
    finally:
        world.teardown()
    return world.steps_run
