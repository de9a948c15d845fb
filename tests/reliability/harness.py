"""Fault injection: private Kafka, Redis and PostgreSQL, the product's own processes, one fault, the accounting.

Two halves:

- `PrivateServices` starts its own Kafka, Redis and PostgreSQL with bin/services on
  free loopback ports under a VAR_DIR of its own, and stops and starts single
  services for the faults. The shared services other engineers test against are
  never touched. The pytest session fixture and bench/faults.py both use it.
- `scenario_run(services, name, messages=N)` runs one scenario in a child process
  (`python -m tests.reliability.harness`) whose Django settings point at the private
  services, and answers the child's JSON result. The child starts the product's
  real processes (`manage.py produce_load`, `manage.py consume`), injects the
  fault when the load or the consume ledger has reached a share of the messages,
  waits (bounded) until every published message is in the consume ledger, stops
  the consumers, then does the accounting with recon's own `range_reconcile` and
  `cache_check` and compares Redis with the source record by record.

Every wait is bounded in time; every process the harness starts it also ends
(by process group, which only holds what it started).
"""

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SCENARIOS = ("kill", "redis", "kafka", "postgres", "rebalance", "broker", "scale")
# Scenarios that need the 3-broker cluster (PrivateServices(cluster=True)).
CLUSTER_SCENARIOS = ("broker", "scale")
RESULT_PREFIX = "FAULT-RESULT "


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _b64key(size: int = 32) -> str:
    return base64.b64encode(os.urandom(size)).decode()


# --- the private services ----------------------------------------------------------------


@dataclass
class PrivateServices:
    """Kafka, Redis and PostgreSQL of our own, on free loopback ports, data under `var_dir`."""

    var_dir: Path
    kafka_port: int = field(default_factory=_free_port)
    controller_port: int = field(default_factory=_free_port)
    redis_port: int = field(default_factory=_free_port)
    pg_port: int = field(default_factory=_free_port)
    # A password nobody else uses, so a grep of the logs for it means something.
    pg_password: str = field(default_factory=lambda: "pg-" + uuid.uuid4().hex)
    # Kafka as a 3-broker KRaft cluster (bin/services up --cluster) instead of the single broker:
    # three broker ports, then three controller ports.
    cluster_ports: list[int] = field(default_factory=list)

    @classmethod
    def create(cls, *, cluster: bool = False) -> "PrivateServices":
        var_dir = Path(tempfile.mkdtemp(prefix="kc-faults-"))
        os.chmod(var_dir, 0o755)  # noqa: S103 - PostgreSQL runs as `postgres` when we are root
        services = cls(var_dir=var_dir, cluster_ports=[_free_port() for _ in range(6)] if cluster else [])
        shared = ROOT / "var" / "kafka" / "classpath.txt"
        if shared.exists():  # the resolved jar list: spares a Maven run
            (var_dir / "kafka").mkdir(parents=True, exist_ok=True)
            shutil.copy(shared, var_dir / "kafka" / "classpath.txt")
        return services

    def bin_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VAR_DIR": str(self.var_dir),
            "KAFKA_PORT": str(self.kafka_port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "REDIS_PORT": str(self.redis_port),
            "PG_PORT": str(self.pg_port),
            "PG_PASSWORD": self.pg_password,
            "KAFKA_HEAP": "384m" if not self.cluster_ports else "256m",
            "CLUSTER_KAFKA_PORTS": " ".join(map(str, self.cluster_ports[:3])),
            "CLUSTER_CONTROLLER_PORTS": " ".join(map(str, self.cluster_ports[3:])),
        }

    def services(self, action: str, *args: str) -> float:
        """bin/services <action> against the private instances; answers its duration in seconds."""
        started = time.monotonic()
        self._services_wait(self._services_start(action, *args))
        return time.monotonic() - started

    def _services_start(self, action: str, *args: str) -> subprocess.Popen:
        argv = [str(ROOT / "bin" / "services"), action, *args]
        return subprocess.Popen(argv, env=self.bin_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @staticmethod
    def _services_wait(proc: subprocess.Popen, timeout: float = 180) -> None:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, stderr=err)

    def product_env(self) -> dict[str, str]:
        """Settings that point the product at the private services."""
        if self.cluster_ports:
            return {
                **self._product_env(),
                "KAFKA_BOOTSTRAP_SERVERS": ",".join(f"127.0.0.1:{p}" for p in self.cluster_ports[:3]),
                "KAFKA_TOPIC_REPLICATION": "3",
                "KAFKA_TOPIC_MIN_INSYNC_REPLICAS": "2",
                "KAFKA_TOPIC_PARTITIONS": "6",
            }
        return self._product_env()

    def _product_env(self) -> dict[str, str]:
        return {
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": f"postgres://kafkacache:{self.pg_password}@127.0.0.1:{self.pg_port}/kafkacache",
            "SOURCE_DATABASE_URL": "",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/1",
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.kafka_port}",
        }

    def up(self) -> None:
        """Kafka (the cluster, or one broker) starts while PostgreSQL and Redis start and the
        database is migrated: the brokers' JVM start is the longest step, and needs neither."""
        kafka = self._services_start(*(("up", "--cluster") if self.cluster_ports else ("kafka-up",)))
        try:
            self.services("postgres-up")
            self.services("redis-up")
            self.manage("migrate", "--no-input", "-v", "0")
        finally:
            self._services_wait(kafka)

    def down(self) -> None:
        try:
            # The data goes below: the brokers are SIGKILLed, not left to wait out a controlled
            # shutdown for a quorum that leaves with them (down --cluster: up to 15 s).
            if self.cluster_ports:
                kills = [self._services_start("kafka-node-down", "--cluster", str(n), "KILL") for n in (1, 2, 3)]
                for proc in kills:
                    self._services_wait(proc)
            self.services("down")
        finally:
            shutil.rmtree(self.var_dir, ignore_errors=True)

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, **self.product_env()},
            check=True,
            timeout=timeout,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def describe(self) -> dict[str, Any]:
        return {
            "var_dir": str(self.var_dir),
            "kafka_port": self.kafka_port,
            "controller_port": self.controller_port,
            "redis_port": self.redis_port,
            "pg_port": self.pg_port,
            "pg_password": self.pg_password,
            "cluster_ports": self.cluster_ports,
        }

    @classmethod
    def from_description(cls, data: dict[str, Any]) -> "PrivateServices":
        return cls(**{**data, "var_dir": Path(data["var_dir"])})


def scenario_run(
    services: PrivateServices,
    scenario: str,
    *,
    messages: int,
    timeout: float | None = None,
    env_extra: dict[str, str] | None = None,
    outage: float = 0.0,
) -> dict:
    """Run one scenario in a child process; answers its result (see `_Run.result`).

    `env_extra`: settings for the product's processes (e.g. CONSUMER_COMMIT_INTERVAL_MS).
    `outage`: the least seconds a stopped service stays down (redis, kafka, postgres); it
    always stays down until the consumer has met the fault."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}")
    tag = f"{scenario}-{uuid.uuid4().hex[:8]}"
    secrets = {
        "DJANGO_SECRET_KEY": "sk-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "FIELD_ENCRYPTION_KEYS": f"rel1:{_b64key()}",
        "AUDIT_ENCRYPTION_KEYS": f"relaudit1:{_b64key()}",
    }
    env = {
        **os.environ,
        **services.product_env(),
        **secrets,
        "KAFKA_TOPIC_BULK": f"rel.{tag}.bulk",
        "KAFKA_TOPIC_CHANGE": f"rel.{tag}.change",
        "KAFKA_TOPIC_DEAD_LETTER": f"rel.{tag}.dlq",
        "KAFKA_CONSUMER_GROUP": f"rel-{tag}",
        # A static member that leaves is noticed after the session timeout: the
        # broker's minimum, so the rebalance scenario does not wait 45 s.
        "CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    if scenario == "kill":
        env["CONSUMER_LOCK_SECONDS"] = "3"  # a killed run's lock lapses quickly
    if scenario in CLUSTER_SCENARIOS and not services.cluster_ports:
        raise ValueError(f"scenario {scenario!r} needs PrivateServices.create(cluster=True)")
    if scenario == "scale":
        env.update(
            CONSUMER_INSTANCES="3",
            CONSUMER_LOCK_SECONDS="3",
            CONSUMER_SCHEDULE_SECONDS="2",
            CONSUMER_RUN_SECONDS="20",  # scheduled runs end and start again; static membership: no rebalance
        )
    env.update(env_extra or {})
    limit = timeout or max(180.0, messages / 250)
    log_dir = services.var_dir / "runs" / tag
    log_dir.mkdir(parents=True)
    proc = subprocess.run(
        [
            PYTHON,
            "-m",
            "tests.reliability.harness",
            "--scenario",
            scenario,
            "--messages",
            str(messages),
            "--services",
            json.dumps(services.describe()),
            "--log-dir",
            str(log_dir),
            "--timeout",
            str(limit),
            "--outage",
            str(outage),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=limit + 240,
        start_new_session=True,
    )
    (log_dir / "harness.log").write_text(proc.stdout + proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"scenario {scenario} failed (rc {proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    secret_values = {
        "DJANGO_SECRET_KEY": [secrets["DJANGO_SECRET_KEY"]],
        "FIELD_ENCRYPTION_KEYS": [secrets["FIELD_ENCRYPTION_KEYS"].split(":", 1)[1]],
        "AUDIT_ENCRYPTION_KEYS": [secrets["AUDIT_ENCRYPTION_KEYS"].split(":", 1)[1]],
        "database password": [services.pg_password],
    }
    result["secrets_in_logs"] = logs_grep(log_dir, secret_values)
    result["card_numbers_in_logs"] = card_numbers_grep(log_dir)
    result["log_bytes"] = sum(p.stat().st_size for p in log_dir.iterdir())
    return result


_DIGITS = re.compile(r"(?<!\d)\d{15,19}(?!\d)")


def _luhn(number: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def card_numbers_grep(log_dir: Path) -> int:
    """How many card-number-like strings (15-19 digits passing Luhn) the run's logs hold."""
    return sum(
        1 for path in log_dir.iterdir() for found in _DIGITS.findall(path.read_text(errors="replace")) if _luhn(found)
    )


def logs_grep(log_dir: Path, secrets: dict[str, list[str]]) -> dict[str, list[str]]:
    """{secret name: [files it appears in]} over every log of a run (empty: none leaked)."""
    found: dict[str, list[str]] = {}
    for path in sorted(log_dir.iterdir()):
        text = path.read_text(errors="replace")
        for name, values in secrets.items():
            if any(value and value in text for value in values):
                found.setdefault(name, []).append(path.name)
    return found


# --- the child: one scenario against the private services ---------------------------------


class _Run:
    """The scenario's processes, progress probes and accounting (runs inside Django)."""

    def __init__(
        self, *, scenario: str, messages: int, services: PrivateServices, log_dir: Path, timeout: float, outage: float
    ):
        from django.conf import settings

        self.scenario, self.messages, self.services = scenario, messages, services
        self.log_dir, self.timeout, self.outage = log_dir, timeout, outage
        self.settings = settings
        self.consumers: dict[int, subprocess.Popen] = {}
        self.producer: subprocess.Popen | None = None
        self.counter = Counter()
        self.events: list[dict] = []
        self.recovery: list[float] = []
        self.started = time.monotonic()
        self.unexpected_exits = 0
        self.stopping: set[int] = set()
        self.others: list[subprocess.Popen] = []  # the scheduled loop: a Celery worker and beat
        self.lag_zero_seconds: float | None = None

    # processes ------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], *, argv: list[str] | None = None) -> subprocess.Popen:
        self.counter[name] += 1
        out = open(self.log_dir / f"{name}-{self.counter[name]}.log", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            argv or [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def consumer_start(self, instance: int = 0) -> None:
        self.consumers[instance] = self._spawn(
            f"consume{instance}",
            ["consume", "--instance", str(instance), "--max-seconds", str(self.timeout + 60), "--lock-wait", "60"],
        )

    def scheduled_loop_start(self, *, slots: int) -> None:
        """The production way: a Celery worker on the consume queue and beat starting consume_task
        for every CONSUMER_INSTANCES instance (a run holding its lock makes the others skip)."""
        celery = [PYTHON, "-m", "celery", "-A", "config"]
        worker = [*celery, "worker", "-Q", "consume", "-n", f"consume-{uuid.uuid4().hex[:6]}@localhost"]
        # WARNING: INFO lines carry run times with 15 decimals, which the card-number grep would flag.
        options = ["--concurrency", str(slots), "--without-gossip", "--without-mingle", "--loglevel=WARNING"]
        self.others.append(self._spawn("consume-worker", [], argv=[*worker, *options]))
        beat_schedule = str(self.log_dir / "celerybeat-schedule")
        self.others.append(self._spawn("beat", [], argv=[*celery, "beat", "-s", beat_schedule, "--loglevel=WARNING"]))

    def producer_start(self) -> None:
        self.producer = self._spawn("produce_load", ["produce_load", "--source", "ods"])

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def consumer_stop(self, instance: int, *, timeout: float = 30) -> None:
        proc = self.consumers[instance]
        self.stopping.add(instance)
        self.kill(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            proc.wait(timeout=10)

    def reap(self) -> None:
        for proc in [*self.consumers.values(), *([self.producer] if self.producer else []), *self.others]:
            if proc.poll() is None:
                self.kill(proc)
                proc.wait(timeout=10)

    def supervise(self) -> None:
        """A consumer that exits by itself is started again (as beat or a process manager would), and counted."""
        for instance, proc in list(self.consumers.items()):
            if proc.poll() is not None and instance not in self.stopping:
                self.unexpected_exits += 1
                self.event("consumer exited", instance=instance, rc=proc.returncode)
                self.consumer_start(instance)

    def event(self, what: str, **detail: Any) -> None:
        self.events.append({"t": round(time.monotonic() - self.started, 2), "what": what, **detail})

    # probes ----------------------------------------------------------------------------------

    def _count(self, sql: str, params: list) -> int | None:
        from django.db import DatabaseError, InterfaceError, connection

        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return int(cursor.fetchone()[0])
        except (DatabaseError, InterfaceError):
            connection.close()  # PostgreSQL is away: reconnect on the next probe
            return None

    def consumed(self) -> int | None:
        return self._count("SELECT count(*) FROM recon_consumedmessage WHERE topic_id = %s", [self.bulk.pk])

    def consumed_distinct(self) -> int | None:
        return self._count("SELECT count(DISTINCT uuid) FROM recon_consumedmessage WHERE topic_id = %s", [self.bulk.pk])

    def holding_wait(self, what: str, instances: set[int], *, timeout: float = 120) -> None:
        """Until each of these consumer instances holds partitions, as the group coordinator tells it:
        a step of a plan that counts on a member (to kill it, or to show a member added) waits for
        its assignment, not for a time."""
        from core.clients import make_admin

        group = self.settings.KAFKA_CONSUMER_GROUP
        wanted = {f"{group}-{i}" for i in instances}
        admin = make_admin()  # one for the wait, held: a client dropped before its future resolves never resolves it
        members: dict[str, int | str] = {}  # member -> partitions held (or why the coordinator could not say)

        def holding() -> int:
            members.clear()
            try:
                described = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
            except Exception as exc:  # a broker away or the group rebalancing: nobody holds anything this time
                members["(describe failed)"] = repr(exc)
                return 0
            for m in described.members:
                members[m.group_instance_id or m.member_id] = len(m.assignment.topic_partitions)
            return sum(1 for name, held in members.items() if name in wanted and held)

        try:
            self.wait(what, holding, len(wanted), timeout=timeout)
        except TimeoutError as exc:  # what the coordinator said last: members and their partition counts
            raise TimeoutError(f"{exc}; the group's members: {members or 'none'}") from None
        self.event(what)

    def published(self) -> int | None:
        return self._count("SELECT count(*) FROM recon_publishedmessage WHERE topic_id = %s", [self.bulk.pk])

    def wait(self, what: str, probe: Callable[[], int | None], target: int, *, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            value = probe()
            if value is not None and value >= target:
                return value
            self.supervise()
            if self.producer and self.producer.poll() not in (None, 0):
                raise RuntimeError(f"produce_load exited with {self.producer.returncode}")
            time.sleep(0.05)
        raise TimeoutError(f"{what}: did not reach {target} within the bound")

    def progress_resumed(self, what: str, *, since: int | None = None, timeout: float = 120) -> float | None:
        """Seconds from now until the consume ledger grows again (the loop has recovered). `since`: its
        count while the fault still held (before the restart), so a loop that catches up on all that
        is left before the first look here still counts as progress; else the count now."""
        began = time.monotonic()
        base = since
        while base is None and time.monotonic() - began < timeout:
            base = self.consumed()
            time.sleep(0.05)
        deadline = began + timeout
        while time.monotonic() < deadline:
            value = self.consumed()
            if value is not None and base is not None and value > base:
                seconds = round(time.monotonic() - began, 2)
                self.recovery.append(seconds)
                self.event(f"{what}: progress again", seconds=seconds)
                return seconds
            if (self.consumed_distinct() or 0) >= self.messages:
                return None  # nothing left to consume: no progress to wait for
            self.supervise()
            time.sleep(0.05)
        self.event(f"{what}: no progress within {timeout} s")
        return None

    def outage_hold(self, name: str, before: int, stopped_at: float, *, timeout: float = 30) -> None:
        """Keep a stopped service down until the consumers' logs count more of `name` (a
        `retries()` entry) than `before` (the loop met the fault), and at least `outage`
        seconds from `stopped_at` (bench/faults.py holds a fixed outage; the suite none)."""
        deadline = time.monotonic() + timeout
        while self.retries().get(name, 0) <= before:
            if time.monotonic() > deadline:
                self.event(f"no {name} within {timeout} s")
                break
            self.supervise()
            time.sleep(0.1)
        else:
            self.event(f"{name} seen", count=self.retries()[name])
        time.sleep(max(0.0, stopped_at + self.outage - time.monotonic()))

    # the run ----------------------------------------------------------------------------------

    def prepare(self) -> None:
        from kafkacache.services.topics import topics_ensure
        from recon.services.feed import feed_topics_ensure

        with _db_cursor() as cursor:
            cursor.execute("SELECT to_regclass('ods.clients') IS NOT NULL")
            exists = cursor.fetchone()[0]
            count = 0
            if exists:
                cursor.execute("SELECT count(*) FROM ods.clients")
                count = cursor.fetchone()[0]
        if count != self.messages:
            self.services.manage("seed_source", "--clients", str(self.messages), "--reset")
        s = self.settings
        topics_ensure([s.KAFKA_TOPIC_BULK, s.KAFKA_TOPIC_CHANGE, s.KAFKA_TOPIC_DEAD_LETTER])
        self.bulk = feed_topics_ensure()["bulk"]

    def finish(self) -> None:
        """Wait until the load is done and every published message is in the consume ledger."""
        if self.producer is not None:
            deadline = time.monotonic() + self.timeout
            while self.producer.poll() is None and time.monotonic() < deadline:
                self.supervise()
                time.sleep(0.1)
            if self.producer.poll() != 0:
                raise RuntimeError(f"produce_load did not finish cleanly (rc {self.producer.poll()})")
        target = self._count("SELECT count(*) FROM recon_publishedmessage WHERE topic_id = %s", [self.bulk.pk]) or 0
        try:
            self.wait("all consumed", self.consumed_distinct, target)
            self.event("all consumed")
        except TimeoutError as exc:  # accounted below as lost
            self.event("gave up waiting", error=str(exc))
        self.lag_wait()
        for proc in self.others:
            self.kill(proc, signal.SIGTERM)
        for proc in self.others:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        for instance in list(self.consumers):
            if self.consumers[instance].poll() is None:
                self.consumer_stop(instance)

    def result(self) -> dict:
        from django.db import connection
        from django.db.models import Sum
        from django.utils import timezone

        from core.cache_records import cache_records_get
        from core.clients import redis_client
        from core.records import record_decode
        from core.sources import SqlSource
        from recon.models import Finding, Load, RebalanceEvent, Window
        from recon.services.cache_check import cache_check
        from recon.services.windows import range_reconcile
        from tests.cache_state import cached_keys

        load = Load.objects.filter(topic=self.bulk).latest("created_at")
        pk = self.bulk.pk
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), min(published_at), max(published_at) FROM recon_publishedmessage WHERE topic_id = %s",
                [pk],
            )
            published, first, last = cursor.fetchone()
            cursor.execute("SELECT count(*), count(DISTINCT uuid) FROM recon_consumedmessage WHERE topic_id = %s", [pk])
            deliveries, distinct = cursor.fetchone()
            # EXCEPT (a hash or sort), not an anti-join: on freshly filled, unanalysed partitions the
            # planner may pick a nested loop, quadratic at 100,000 rows.
            cursor.execute(
                """SELECT count(*) FROM (
                       SELECT uuid, published_at FROM recon_publishedmessage WHERE topic_id = %s
                       EXCEPT SELECT uuid, published_at FROM recon_consumedmessage WHERE topic_id = %s) lost""",
                [pk, pk],
            )
            lost = cursor.fetchone()[0]
            cursor.execute(
                """SELECT count(*), coalesce(sum(n - 1), 0) FROM (
                       SELECT count(*) AS n FROM recon_consumedmessage WHERE topic_id = %s
                       GROUP BY uuid HAVING count(*) > 1) d""",
                [pk],
            )
            duplicated_uuids, extra_deliveries = cursor.fetchone()
            cursor.execute(
                "SELECT count(*) FROM (SELECT uuid FROM recon_publishedmessage WHERE topic_id = %s"
                " GROUP BY uuid HAVING count(*) > 1) d",
                [pk],
            )
            published_twice = cursor.fetchone()[0]
        # recon's own accounting: every window closed (now far past end + grace)
        report = range_reconcile(
            topic=self.bulk,
            start=first,
            end=last + dt.timedelta(seconds=1),
            trigger="fault-test",
            now=timezone.now() + dt.timedelta(hours=2),
        ).report
        # Re-read offsets (a consumer killed before its commit), as the windows count them.
        redelivered = Window.objects.filter(topic=self.bulk).aggregate(n=Sum("redelivered"))["n"] or 0
        duplicate_findings = Finding.objects.filter(topic=self.bulk, category=Finding.Category.DUPLICATE).count()
        cache = cache_check(topic=self.bulk, load=load, trigger="fault-test").report
        # Redis against the source, record by record
        expected: dict[str, dict] = {}
        for batch in SqlSource().batches(batch_size=2000):
            for item in batch:
                expected[item.key] = item.record
        client = redis_client()
        cached = cached_keys(client)
        differs = 0
        keys = sorted(expected)
        for i in range(0, len(keys), 2000):
            chunk = keys[i : i + 2000]
            for key, hit in cache_records_get(client, chunk).items():
                if record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) != expected[key]:
                    differs += 1
        rebalances = Counter(
            RebalanceEvent.objects.filter(group=self.settings.KAFKA_CONSUMER_GROUP).values_list("kind", flat=True)
        )
        return {
            "scenario": self.scenario,
            "messages": self.messages,
            "load": {"status": load.status, "published": load.published, "failed": load.failed, "error": load.error},
            "published": published,
            "published_twice": published_twice,
            "deliveries": deliveries,
            "consumed_distinct": distinct,
            "lost": lost,
            "duplicated_uuids": duplicated_uuids,
            "redelivered": int(redelivered),
            "duplicate_findings": duplicate_findings,
            "extra_deliveries": int(extra_deliveries),
            "recon": {
                "published": report["published"],
                "consumed": report["consumed"],
                "pending": report["pending"],
                "windows": report["windows"],
                "findings": {name: entry["count"] for name, entry in report["findings"].items()},
            },
            "cache_check": {
                "checked": cache["checked"],
                "all_matched": cache["all_matched"],
                "problems": {name: entry["count"] for name, entry in cache["problems"].items()},
            },
            "redis": {
                "source_keys": len(expected),
                "cached_keys": len(cached),
                "missing": len(set(expected) - cached),
                "extra": len(cached - set(expected)),
                "differs": differs,
            },
            "rebalances": dict(rebalances),
            "lag_after": self.lag(),
            "lag_zero_seconds": self.lag_zero_seconds,
            "retries": self.retries(),
            "recovery_seconds": self.recovery,
            "unexpected_exits": self.unexpected_exits,
            "events": self.events,
            "seconds": round(time.monotonic() - self.started, 1),
        }

    def lag(self) -> int | None:
        from monitoring.lag import consumer_lag

        s = self.settings
        try:
            return sum(p.lag for p in consumer_lag(s.KAFKA_CONSUMER_GROUP, [s.KAFKA_TOPIC_BULK, s.KAFKA_TOPIC_CHANGE]))
        except Exception:  # a broker away: no figure this time
            return None

    def lag_wait(self, *, timeout: float = 120) -> None:
        """With every message consumed, how long until the group's committed lag is 0 (offsets committed)."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.lag() == 0:
                self.lag_zero_seconds = round(time.monotonic() - began, 2)
                self.event("lag 0", seconds=self.lag_zero_seconds)
                return
            time.sleep(0.5)
        from monitoring.lag import consumer_lag

        s = self.settings
        with contextlib.suppress(Exception):
            behind = [
                f"{p.topic}/{p.partition}: committed {p.committed}, end {p.end}"
                for p in consumer_lag(s.KAFKA_CONSUMER_GROUP, [s.KAFKA_TOPIC_BULK, s.KAFKA_TOPIC_CHANGE])
                if p.lag
            ]
            self.event("lag not 0 within the bound", lag=self.lag(), partitions=behind)

    def retries(self) -> dict[str, int]:
        """What the consumers' logs say they went through: retried stages, Kafka errors, lost locks."""
        counts: Counter = Counter()
        patterns = {
            "redis retries": re.compile(rb"redis write failed"),
            "ledger retries": re.compile(rb"ledger write failed"),
            "dead-letter retries": re.compile(rb"dead-letter write failed"),
            "kafka errors": re.compile(rb"kafka client error|consume error"),
            "lock lost": re.compile(rb"consumer lock \d+ lost"),
        }
        for path in self.log_dir.glob("consume*.log"):  # consume<N> and consume-worker
            text = path.read_bytes()
            for name, pattern in patterns.items():
                counts[name] += len(pattern.findall(text))
        return dict(counts)


class _db_cursor:
    def __enter__(self):
        from django.db import connection

        self.cursor = connection.cursor()
        return self.cursor

    def __exit__(self, *exc):
        self.cursor.close()


# --- the scenarios ------------------------------------------------------------------------------


def _kill(run: _Run) -> None:
    """The consumer SIGKILLed three times while it works through the backlog, started again each time."""
    run.producer_start()
    run.consumer_start(0)
    for share in (0.2, 0.45, 0.7):
        run.wait(f"{share:.0%} consumed", run.consumed_distinct, int(run.messages * share))
        run.kill(run.consumers[0])
        run.consumers[0].wait(timeout=10)
        held = run.consumed()
        run.event("consumer SIGKILLed", at=held)
        run.consumer_start(0)
        run.progress_resumed("restarted consumer", since=held)


def _redis(run: _Run) -> None:
    """Redis stopped while the consumer writes to it, and started again once a write failed."""
    run.producer_start()
    run.consumer_start(0)
    run.wait("30% consumed", run.consumed, int(run.messages * 0.3))
    before, stopped_at = run.retries().get("redis retries", 0), time.monotonic()
    seconds = run.services.services("redis-down")
    run.event("redis stopped", took=round(seconds, 2))
    run.outage_hold("redis retries", before, stopped_at)
    held = run.consumed()
    run.services.services("redis-up")
    run.event("redis started")
    run.progress_resumed("redis back", since=held)


def _kafka(run: _Run) -> None:
    """The broker stopped while the load publishes and the consumer reads, and started again once the
    consumer's client reported it gone (the consumer joins first, so both are in full flow when the
    broker goes)."""
    from recon.models import RebalanceEvent

    run.consumer_start(0)
    group = run.settings.KAFKA_CONSUMER_GROUP
    run.wait("consumer assigned", RebalanceEvent.objects.filter(group=group, kind="assigned").count, 1, timeout=60)
    run.producer_start()
    run.wait("30% published", run.published, int(run.messages * 0.3))
    before, stopped_at = run.retries().get("kafka errors", 0), time.monotonic()
    seconds = run.services.services("kafka-down")
    run.event("kafka stopped", took=round(seconds, 2), published=run.published(), consumed=run.consumed())
    run.outage_hold("kafka errors", before, stopped_at)
    held = run.consumed()
    seconds = run.services.services("kafka-up")
    run.event("kafka started", took=round(seconds, 2))
    run.progress_resumed("kafka back", since=held)


def _postgres(run: _Run) -> None:
    """PostgreSQL stopped while the consumer works through a load, and started again once a ledger
    write failed (the load is published first: the loop that must pause is the consumer's)."""
    run.producer_start()
    assert run.producer is not None
    run.producer.wait(timeout=run.timeout)
    run.consumer_start(0)
    run.wait("30% consumed", run.consumed, int(run.messages * 0.3))
    before, stopped_at = run.retries().get("ledger retries", 0), time.monotonic()
    run.services.services("postgres-down")
    run.event("postgres stopped")
    run.outage_hold("ledger retries", before, stopped_at)
    run.services.services("postgres-up")
    run.event("postgres started")
    run.progress_resumed("postgres back")  # no count while PostgreSQL is down: taken once it is back


def _rebalance(run: _Run) -> None:
    """A second consumer joins the group at 25% and leaves at 60% (clean stop; its partitions go back
    to the first once the broker drops the static member after the session timeout)."""
    from recon.models import RebalanceEvent

    run.producer_start()
    run.consumer_start(0)
    run.wait("25% consumed", run.consumed, int(run.messages * 0.25))
    group = run.settings.KAFKA_CONSUMER_GROUP
    assigned = RebalanceEvent.objects.filter(group=group, kind="assigned")
    before = assigned.count()
    run.consumer_start(1)
    run.event("consumer 1 added")
    run.wait("consumer 1 assigned", assigned.count, before + 1, timeout=60)
    run.event("consumer 1 assigned")
    run.wait("60% consumed", run.consumed, int(run.messages * 0.6))
    before = assigned.count()
    removed = time.monotonic()
    run.consumer_stop(1)
    run.event("consumer 1 removed")
    run.wait("partitions reassigned", assigned.count, before + 1)
    seconds = round(time.monotonic() - removed, 2)
    run.recovery.append(seconds)
    run.event("partitions reassigned to consumer 0", seconds=seconds)


def _cluster_node(run: _Run, action: str, node: int, *, sig: str = "KILL") -> None:
    extra = [sig] if action == "down" else []
    seconds = run.services.services(f"kafka-node-{action}", "--cluster", str(node), *extra)
    run.event(f"broker {node} {'SIG' + sig + 'ed' if action == 'down' else 'started'}", took=round(seconds, 2))


def _leader_change_recorded(run: _Run, *, timeout: float = 60) -> None:
    """Run the product's leader watch (as beat does) until it records the change."""
    from kafkacache.services.leaders import leaders_watch

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            events = leaders_watch()
        except Exception as exc:  # metadata not answered while the cluster notices the loss
            events = []
            run.event("leader watch: no answer", error=type(exc).__name__)
        if events:
            run.event("leader change recorded", partitions=len(events[0].partitions))
            return
        run.supervise()
        time.sleep(0.5)
    run.event("no leader change recorded within the bound")


def _cluster_whole(run: _Run, *, timeout: float = 90) -> None:
    """Wait until every partition of the feed's topics has all three replicas in sync again."""
    from kafkacache.services.leaders import leaders_now
    from kafkacache.services.topics import feed_topics

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            state = leaders_now(feed_topics())
            if state and all(len(p["isr"]) == 3 for p in state.values()):
                run.event("all replicas in sync")
                return
        run.supervise()
        time.sleep(0.5)
    raise TimeoutError("the restarted broker did not rejoin every ISR")


def _broker(run: _Run) -> None:
    """3-broker cluster, replication 3, min ISR 2: a broker SIGKILLed while the load publishes and the
    consumer reads, back once 60% are consumed; then another broker SIGKILLed mid-consume, and back."""
    from kafkacache.services.leaders import leaders_watch
    from recon.models import RebalanceEvent

    run.consumer_start(0)
    group = run.settings.KAFKA_CONSUMER_GROUP
    run.wait("consumer assigned", RebalanceEvent.objects.filter(group=group, kind="assigned").count, 1, timeout=60)
    leaders_watch()  # the first look: what a change is measured against
    run.producer_start()
    run.wait("30% published", run.published, int(run.messages * 0.3))
    _cluster_node(run, "down", 1)
    _leader_change_recorded(run)
    run.progress_resumed("broker 1 lost")
    run.wait("60% consumed", run.consumed_distinct, int(run.messages * 0.6))
    _cluster_node(run, "up", 1)
    _cluster_whole(run)
    leaders_watch()  # broker 1 back in the ISRs: recorded too
    if (run.consumed_distinct() or 0) < run.messages:
        _cluster_node(run, "down", 2)
        _leader_change_recorded(run)
        run.progress_resumed("broker 2 lost")
        _cluster_node(run, "up", 2)
    else:
        run.event("all consumed before the second kill")


def _scale(run: _Run) -> None:
    """6 partitions, 3 consumers: `manage.py consume` instances 0 and 1 and the scheduled loop (a Celery
    worker and beat) for instance 2. Instance 1 SIGKILLed at 30% (not restarted by hand: beat's run of
    instance 1 takes it over once its lock lapses); a fourth consumer added at 50%."""
    run.scheduled_loop_start(slots=3)
    run.consumer_start(0)
    run.consumer_start(1)
    run.holding_wait("three consumers assigned", {0, 1, 2})  # each records its assignment
    run.producer_start()
    run.wait("30% consumed", run.consumed_distinct, int(run.messages * 0.3))
    run.stopping.add(1)  # a killed process stays dead: the schedule is what brings instance 1 back
    run.kill(run.consumers[1])
    run.consumers[1].wait(timeout=10)
    run.event("consumer 1 SIGKILLed", consumed=run.consumed())
    run.progress_resumed("consumer 1 killed")
    run.wait("50% consumed", run.consumed_distinct, int(run.messages * 0.5))
    run.consumer_start(3)
    run.event("consumer 3 added")
    run.holding_wait("consumer 3 assigned", {3})  # 6 partitions, 4 members: the sticky assignor gives it some


_PLANS: dict[str, Callable[[_Run], None]] = {
    "kill": _kill,
    "redis": _redis,
    "kafka": _kafka,
    "postgres": _postgres,
    "rebalance": _rebalance,
    "broker": _broker,
    "scale": _scale,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--services", required=True, help="PrivateServices.describe() as JSON")
    parser.add_argument("--log-dir", required=True)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--outage", type=float, default=0.0, help="least seconds a stopped service stays down")
    args = parser.parse_args()

    import django

    django.setup()
    run = _Run(
        scenario=args.scenario,
        messages=args.messages,
        services=PrivateServices.from_description(json.loads(args.services)),
        log_dir=Path(args.log_dir),
        timeout=args.timeout,
        outage=args.outage,
    )
    try:
        run.prepare()
        _PLANS[args.scenario](run)
        run.finish()
        result = run.result()
    finally:
        run.reap()
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
