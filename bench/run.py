"""The performance benchmark (issue 7): this machine's limits and the product, side by side, in one run.

    make bench                                  # full run (~200,000 messages, 1M-row reconcile and pages)
    .venv/bin/python bench/run.py --quick       # small N, well under a minute (the test suite runs it)
    .venv/bin/python bench/run.py --profile     # also py-spy one consume worker (bench/results/*.raw)

Everything runs against the real Kafka, Redis and PostgreSQL, on the same
messages: client records from the demo SQL source, topped up to ~1 KB of Avro
with encrypted card and account numbers (bench/data.py). In order:

1. the product's bulk load from the SQL source (read, build, encrypt, Avro, seal,
   publish with acks, publish ledger) in LOAD_PARTS parts, run by 1 worker process
   onto a 2-partition topic, then by 2 at once onto another (bench/load_worker.py:
   load_parts_run, what a Celery worker runs per part);
2. limits on those very messages: a bare confluent-kafka consume loop, Kafka's
   ConsumerPerformance and ProducerPerformance (the Maven jars), a bare
   confluent-kafka producer with the product's settings (with its CPU per
   message), redis-py pipelined SET of the same values (100 and 1,000 per
   pipeline), redis-benchmark -P 100;
3. the product's consume path (bench/consume_worker.py: FeedConsumer.run,
   unchanged) with 1 and 2 worker processes, batches of 100 (the default) and
   1,000, steady state (after each worker's first batch); worker RSS after the
   first batch, at the end, peak;
4. the peers on the same topic and messages: the minimal sink
   (bench/minimal_sink.py), Quix Streams' RedisSink in its own pinned virtualenv
   (bench/peer_quix.py) writing to this bench's Redis, at its defaults and tuned for
   throughput, and Kafka Connect standalone with a sink (bench/peer_connect.py);
5. reconcile of a 1,000,000-message window (bench/recon_window.py) and page
   latency over 1,000,000 ledger rows (bench/dashboard_pages.py), each in its
   own process and database.

Each figure is printed beside its baseline from the same run (a limit, a peer, the
product's own 1-process or 1-worker figure), the ratio, and its target where it has
one (figures(): a list of sections, one function each). JSON goes to
bench/results/<time>.json (git-ignored), with the machine's load average at the
start and the end. Own database (kafkacache_perf; pages in <it>_pages), its own
redis-server (same binary and persistence flags as bin/services, on a free port,
so its CPU is this run's; --shared-redis uses REDIS_URL instead), own topics per
run (deleted at the end); DATABASE_URL overrides the database.

CPU per message of each run, across the client processes, their PostgreSQL
backends, PostgreSQL's shared processes, Redis and the broker, from /proc
(bench/cpu.py). Others share the broker and PostgreSQL: their rate in the 2 s
before a run is taken out over its span. Nobody else uses the bench's own Redis:
its CPU over a run is counted whole, after the AOF rewrite an earlier run's writes
started has finished.
"""

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUN = uuid.uuid4().hex[:8]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A laptop run with DEBUG off and the development keys (config.secrets): never in production.
os.environ.setdefault("KAFKACACHE_ALLOW_DEV_SECRETS", "1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DATABASE_URL", "postgres://kafkacache:kafkacache@127.0.0.1:5432/kafkacache_perf")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["DJANGO_DEBUG"] = "0"  # DEBUG keeps every query in memory: RSS would grow with the run
os.environ["KAFKA_TOPIC_PARTITIONS"] = "2"
os.environ["KAFKA_TOPIC_BULK"] = f"bench.run-{RUN}.bulk"
os.environ["KAFKA_TOPIC_CHANGE"] = f"bench.run-{RUN}.change"
os.environ["KAFKA_TOPIC_DEAD_LETTER"] = f"bench.run-{RUN}.dlq"
os.environ["KAFKA_CONSUMER_GROUP"] = f"bench-run-{RUN}"

from bench.data import database_ensure  # noqa: E402

database_ensure(os.environ["DATABASE_URL"])

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench import cpu, limits  # noqa: E402
from bench.data import ACCOUNTS, CARDS, ods_seed_bench  # noqa: E402
from bench.peer_connect import connect_file_sink  # noqa: E402
from bench.peer_quix import quix_python, quix_redis_sink  # noqa: E402
from core.clients import redis_client  # noqa: E402
from kafkacache.services.loads import (  # noqa: E402
    load_split,
    load_start,
)
from kafkacache.services.topics import topics_delete, topics_ensure  # noqa: E402
from recon.models import Topic  # noqa: E402
from recon.services.feed import feed_topics_ensure  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PY = sys.executable

FULL = {"messages": 200_000, "recon": 1_000_000, "pages": 1_000_000, "requests": 40}
QUICK = {"messages": 3_000, "recon": 20_000, "pages": 20_000, "requests": 5}


def log(text: str) -> None:
    print(text, flush=True)


def ratio(figure: float | None, limit: float | None) -> float | None:
    return round(figure / limit, 3) if figure and limit else None


def cache_clear() -> None:
    client = redis_client()
    batch = []
    for key in client.scan_iter("kc:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def ledgers_clear() -> None:
    """The bench database's ledgers and windows from earlier runs (its own database only)."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE recon_publishedmessage, recon_consumedmessage, recon_window CASCADE")


# --- the product ----------------------------------------------------------------------


LOAD_PARTS = 10  # a bench load's parts: enough for 2 workers to share evenly


def bulk_load(topic: Topic, n: int, *, workers: int) -> dict:
    """The product's bulk load of the SQL source onto `topic`, split into LOAD_PARTS parts
    run by `workers` processes (bench/load_worker.py: load_parts_run, as Celery workers
    run LOAD_PART_RUN), started together once set up; CPU of the workers (librdkafka's
    threads included), their PostgreSQL backends, the broker and PostgreSQL's shared
    processes over the run."""
    settings.LOAD_PART_CLIENTS = max(1, -(-n // LOAD_PARTS))
    load = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    load = load_split(load_id=load.id, queue=False)
    outs = [RESULTS / f".load-{RUN}-{workers}-{i}.json" for i in range(workers)]
    ready = [RESULTS / f".load-ready-{RUN}-{workers}-{i}" for i in range(workers)]
    go = RESULTS / f".load-go-{RUN}-{workers}"
    procs = [
        subprocess.Popen(
            [
                *(PY, str(ROOT / "bench" / "load_worker.py"), "--load", str(load.id), "--out", str(out)),
                *("--ready", str(flag), "--go", str(go)),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        for out, flag in zip(outs, ready, strict=True)
    ]
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready):
        if time.monotonic() > deadline or any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a load worker did not get ready")
        time.sleep(0.01)
    base = services_baseline()
    go.touch()
    for proc in procs:
        if proc.wait(timeout=1800) != 0:
            raise RuntimeError(f"load worker exited {proc.returncode}")
    done = [json.loads(out.read_text()) for out in outs]
    for path in [*outs, *ready, go]:
        path.unlink()
    load.refresh_from_db()
    if load.status != "done" or load.published != n:
        raise RuntimeError(f"bulk load did not publish {n}: {load.status} {load.published} {load.error}")
    seconds = max(w["ended_at"] for w in done) - min(w["started_at"] for w in done)
    return {
        "workers": workers,
        "parts": load.part_count,
        "messages": load.published,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(n / seconds),
        "per_worker": [{k: w[k] for k in ("parts", "published", "cpu_seconds", "backend_cpu_seconds")} for w in done],
        # the loading processes (read, build, encrypt, Avro, seal, produce, ledger) and their
        # PostgreSQL backends (source reads, ledger COPY), the broker and the rest
        "cpu": cpu_figures(
            messages=n,
            clients=sum(w["cpu_seconds"] for w in done),
            backends=sum(w["backend_cpu_seconds"] for w in done),
            base=base,
        ),
    }


def bare_produce(topic: str, values: list[bytes]) -> dict:
    """limits.bare_produce (the product's producer settings, nothing else), with its CPU per message."""
    base = services_baseline()
    own = sum(os.times()[:2])
    figures = limits.bare_produce(topic, values)
    figures["cpu"] = cpu_figures(messages=len(values), clients=sum(os.times()[:2]) - own, backends=None, base=base)
    return figures


def machine_busy_seconds() -> float:
    """CPU seconds this machine has spent busy (all cores, every process) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --- CPU per message across the machine -------------------------------------------------

BASELINE_S = 2.0
_services: cpu.Services | None = None
# The bench's own redis-server (None with --shared-redis): no other client uses it, so its
# CPU over a run is the run's, with no baseline taken out.
private_redis: cpu.PrivateRedis | None = None


def services() -> cpu.Services:
    """The broker, Redis and PostgreSQL this bench talks to, found by their ports."""
    global _services
    if _services is None:
        kafka_port = int(settings.KAFKA_BOOTSTRAP_SERVERS.split(",")[0].rsplit(":", 1)[1])
        _services = cpu.Services(
            kafka_port=kafka_port,
            redis_port=urlsplit(settings.REDIS_URL).port or 6379,
            postgres_port=int(connection.settings_dict.get("PORT") or 5432),
        )
    return _services


def services_baseline() -> tuple[dict[str, float], dict[str, float], float]:
    """The shared services' CPU now, their rate (CPU s/s) over the BASELINE_S before, and now's time.

    Other agents' clients use the same broker, Redis and PostgreSQL; their load just
    before a run is taken as their load during it. The bench's own Redis first rewrites its
    AOF (else the rewrite an earlier run's writes started would run, and count, here)."""
    if private_redis is not None:
        private_redis.rewrite()
    before = services().sample()
    time.sleep(BASELINE_S)
    now = services().sample()
    return now, {k: v / BASELINE_S for k, v in cpu.delta(before, now).items()}, time.monotonic()


def cpu_figures(*, messages: int, clients: float, backends: float | None, base: tuple[dict, dict, float]) -> dict:
    """CPU seconds of a run per part (clients = the worker or sink processes), and per message."""
    start, rate, started_at = base
    span = time.monotonic() - started_at
    shared = cpu.delta(start, services().sample())
    others = {k: 0.0 if k == "redis" and private_redis is not None else v for k, v in rate.items()}
    adjusted = {k: round(max(0.0, v - others[k] * span), 3) for k, v in shared.items()}
    parts = {"clients": round(clients, 3), "postgres_backends": backends, **shared}
    total = clients + (backends or 0.0) + sum(shared.values())
    total_adjusted = clients + (backends or 0.0) + sum(adjusted.values())
    per = 1e6 / messages if messages else 0.0
    return {
        "seconds": parts,
        "shared_adjusted_seconds": adjusted,
        "baseline_rate": {k: round(v, 3) for k, v in rate.items()},
        "span_s": round(span, 3),
        "total_s": round(total, 3),
        "total_adjusted_s": round(total_adjusted, 3),
        "us_per_message": round(total * per, 1),
        "us_per_message_adjusted": round(total_adjusted * per, 1),
        "clients_us_per_message": round(clients * per, 1),
    }


def minimal_sink(topic: str, n: int) -> dict:
    """bench/minimal_sink.py in its own process, its CPU and the services' over its run."""
    out = RESULTS / f".minimal-{RUN}.json"
    prefix = f"bench:min:{uuid.uuid4().hex[:8]}:"
    base = services_baseline()
    subprocess.run(
        [
            *(PY, str(ROOT / "bench" / "minimal_sink.py"), "--topic", topic, "--messages", str(n)),
            *("--prefix", prefix, "--out", str(out)),
        ],
        cwd=ROOT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS},
        check=True,
        timeout=900,
    )
    figures = json.loads(out.read_text())
    out.unlink()
    figures["cpu"] = cpu_figures(
        messages=figures["messages"], clients=figures["run_cpu_seconds"], backends=None, base=base
    )
    limits.delete_prefix(redis_client(), prefix)
    return figures


def quix_sink(topic: str, n: int, *, tuned: bool) -> dict:
    """Quix Streams' RedisSink into this bench's Redis (whose CPU is counted), at its defaults
    or tuned for throughput (bench/peer_quix.py)."""
    quix_python()  # the virtualenv first: its making is no part of the run
    base = services_baseline()
    figures = quix_redis_sink(topic, n, tuned=tuned)
    if "run_cpu_seconds" in figures:
        figures["cpu"] = cpu_figures(messages=n, clients=figures["run_cpu_seconds"], backends=None, base=base)
    return figures


def consume_path(topic: str, *, processes: int, batch: int, profile: Path | None = None, partitions: int = 2) -> dict:
    """FeedConsumer in `processes` worker processes sharing the topic's partitions evenly, until drained."""
    cache_clear()
    group = f"bench-consume-{uuid.uuid4().hex[:8]}"
    shares = [",".join(str(p) for p in range(partitions) if p % processes == i) for i in range(processes)]
    outs = [RESULTS / f".worker-{RUN}-{i}.json" for i in range(processes)]
    procs = []
    # Workers start consuming together, once all are set up, so the 2-process span
    # is not one worker's start-up.
    go = RESULTS / f".go-{RUN}"
    ready = [RESULTS / f".ready-{RUN}-{i}" for i in range(processes)]
    for share, out, flag in zip(shares, outs, ready, strict=True):
        command = [
            PY,
            str(ROOT / "bench" / "consume_worker.py"),
            *("--topic", topic, "--partitions", share, "--group", group),
            *("--batch", str(batch), "--out", str(out), "--ready", str(flag), "--go", str(go)),
        ]
        if profile is not None:
            spy = [str(Path(PY).parent / "py-spy"), "record", "-r", "250", "-f", "raw", "-o", str(profile), "--"]
            command = spy + command
        procs.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL))
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready):
        if time.monotonic() > deadline or any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a consume worker did not get ready")
        time.sleep(0.01)
    base = services_baseline()
    busy_before = machine_busy_seconds()
    start_at = time.monotonic()
    go.touch()
    for proc in procs:
        if proc.wait(timeout=900) != 0:
            raise RuntimeError(f"consume worker exited {proc.returncode}")
    busy = machine_busy_seconds() - busy_before
    workers = [json.loads(out.read_text()) for out in outs]
    for path in [*outs, *ready, go]:
        path.unlink()
    # Steady state: each worker's messages after its first batch, over the span from the
    # first worker's first batch end to the last worker's last (conservative for 2 workers).
    steady = sum(w["steady_messages"] for w in workers)
    seconds = max(w["ended_at"] for w in workers) - min(w["started_at"] for w in workers)
    backends = [w["backend_cpu_seconds"] for w in workers]
    cpu_run = cpu_figures(
        messages=sum(w["messages"] for w in workers),
        clients=sum(w["run_cpu_seconds"] for w in workers),
        backends=None if None in backends else sum(backends),
        base=base,
    )
    return {
        "processes": processes,
        "batch": batch,
        "messages": sum(w["messages"] for w in workers),
        "steady_messages": steady,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(steady / seconds) if seconds else 0,
        "per_process_msgs_per_s": [w["msgs_per_s"] for w in workers],
        "batch_ms_p50": [w["batch_ms_p50"] for w in workers],
        "batch_ms_p95": [w["batch_ms_p95"] for w in workers],
        "rss_mb_first_batch": [round(w["rss_kb_first_batch"] / 1024, 1) for w in workers],
        "rss_mb_end": [round(w["rss_kb_end"] / 1024, 1) for w in workers],
        "rss_mb_peak": [round(w["rss_kb_peak"] / 1024, 1) for w in workers],
        # RSS halfway through the messages: after librdkafka's prefetch queue
        # (queued.max.messages.kbytes, 64 MB) and the pools have filled
        "rss_mb_half": [round(_at_half(w["rss_kb_curve"], w["messages"]) / 1024, 1) for w in workers],
        "rss_mb_curve": [[(m, round(kb / 1024, 1)) for m, kb in w["rss_kb_curve"]] for w in workers],
        "outcomes": [w["outcomes"] for w in workers],
        # Where the cores went: the workers vs everything (Kafka, Redis, PostgreSQL, others).
        "worker_cpu_seconds": [w["cpu_seconds"] for w in workers],
        "machine_busy_cpu_seconds": round(busy, 2),
        "machine_cpu_capacity_seconds": round((time.monotonic() - start_at) * (os.cpu_count() or 1), 2),
        "cpu": cpu_run,
    }


def _at_half(curve: list[list[int]], messages: int) -> int:
    """RSS (KB) of the first sample at or past half the messages (the last one if none)."""
    for seen, kb in curve:
        if seen >= messages / 2:
            return kb
    return curve[-1][1] if curve else 0


def script_json(script: str, args: list[str], env: dict[str, str]) -> dict:
    """Run another bench script in its own process and database; answer its --json figures."""
    out = RESULTS / f".{Path(script).stem}-{RUN}.json"
    subprocess.run(
        [PY, str(ROOT / "bench" / script), *args, "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=1800,
    )
    figures = json.loads(out.read_text())
    out.unlink()
    return figures


# --- the table ------------------------------------------------------------------------


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "us":
        return f"{value:.1f} us"
    return str(value)


def table(rows: list[dict]) -> str:
    head = (
        f"{'figure':<50}{'value':>13}  {'baseline (same run)':<34}{'ratio':>7}{'/min':>7}{'/quix':>7}  {'target':<22}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        limit = f"{_fmt(r.get('limit'), r.get('limit_unit', r['unit']))} {r.get('limit_name', '')}".strip()
        met = r.get("met")
        target = f"{r.get('target', '')}{'' if met is None else (' met' if met else ' MISSED')}"
        value = _fmt(r["value"], r["unit"])
        rat, vmin, vquix = ("" if r.get(k) is None else f"{r[k]:.2f}" for k in ("ratio", "vs_minimal", "vs_quix"))
        lines.append(f"{r['figure']:<50}{value:>13}  {limit[:34]:<34}{rat:>7}{vmin:>7}{vquix:>7}  {target:<22}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small N, well under a minute")
    parser.add_argument("--messages", type=int, help="messages of the feed runs (clients of the source)")
    parser.add_argument("--recon-messages", type=int)
    parser.add_argument("--page-messages", type=int)
    parser.add_argument("--no-peer", action="store_true", help="skip Kafka Connect")
    parser.add_argument("--profile", action="store_true", help="py-spy one 1-process batch-100 consume run")
    parser.add_argument(
        "--consume-only",
        action="store_true",
        help="the consume path alone (1-worker load, bare consume and SET limits, 1 and 2 processes at batch 100,"
        " the minimal sink and Quix at its defaults): a lever measured in minutes",
    )
    parser.add_argument(
        "--capacity",
        action="store_true",
        help="docs/capacity.md's check: the messages in 6 partitions, the consume path in 1 and 3 processes,"
        " each part's CPU per message and the model's rate beside the measured one",
    )
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/<time>.json)")
    parser.add_argument(
        "--shared-redis", action="store_true", help="use REDIS_URL, not a redis-server of the bench's own"
    )
    args = parser.parse_args()
    global private_redis
    if not args.shared_redis:
        private_redis = cpu.PrivateRedis()
        settings.REDIS_URL = os.environ["REDIS_URL"] = private_redis.url  # workers and peers inherit it
    try:
        _run(args)
    finally:
        if private_redis is not None:
            private_redis.stop()


def _run(args: argparse.Namespace) -> None:
    size = QUICK if args.quick else FULL
    n = args.messages or size["messages"]
    recon_n = args.recon_messages or size["recon"]
    pages_n = args.page_messages or size["pages"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_path = args.out or RESULTS / f"{stamp}{'-quick' if args.quick else ''}.json"

    call_command("migrate", verbosity=0)
    ledgers_clear()
    cache_clear()
    log(f"bench {RUN}: {n:,} messages, {os.cpu_count()} cores, database {connection.settings_dict['NAME']}")
    seeded = ods_seed_bench(n)
    topics_ensure(partitions=CAPACITY_PARTITIONS if args.capacity else None)
    topic = settings.KAFKA_TOPIC_BULK
    scratch = f"bench.run-{RUN}.scratch"
    # The 2-worker load's own topic: the consume runs read the 1-worker load's messages.
    second = f"bench.run-{RUN}.bulk2"
    topics_ensure([scratch, second])
    result: dict = {
        "run": RUN,
        "when": stamp,
        "quick": args.quick,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "redis": "shared (REDIS_URL)" if args.shared_redis else "the bench's own redis-server",
        "source": {**seeded, "accounts_per_client": ACCOUNTS, "cards_per_client": CARDS},
        "messages": n,
        "limits": {},
        "product": {},
    }
    if args.capacity:
        result["capacity_check"] = True
        try:
            _capacity_check(result, topic, n)
        finally:
            topics_delete([topic, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER, scratch, second])
            cache_clear()
        _results_write(result, out_path, began, (_capacity_rows,))
        return
    if args.consume_only:
        result["consume_only"] = True
        try:
            profile = RESULTS / f"{stamp}-consume-1p-b100.raw" if args.profile else None
            _consume_only(result, topic, n, profile_to=profile)
        finally:
            topics_delete([topic, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER, scratch, second])
            cache_clear()
        _results_write(result, out_path, began, CONSUME_SECTIONS)
        return
    try:
        log(f"product: bulk load (SQL source -> Kafka + publish ledger) in {LOAD_PARTS} parts, 1 and 2 workers")
        loads = result["product"]["load"] = {}
        loads["1_worker"] = bulk_load(feed_topics_ensure()["bulk"], n, workers=1)
        twin = Topic.objects.get_or_create(
            name=second, defaults={"kind": Topic.Kind.BULK, "consumer_group": settings.KAFKA_CONSUMER_GROUP}
        )[0]
        loads["2_workers"] = bulk_load(twin, n, workers=2)
        values = limits.fetch_values(topic, n)
        value_bytes = round(sum(map(len, values)) / len(values))
        result["value_bytes"] = value_bytes
        for key, run in loads.items():
            log(f"  {key}: {run['msgs_per_s']:,}/s, {run['cpu']['us_per_message_adjusted']} us a record")
        log(f"  values average {value_bytes} bytes")

        log("limits: bare consume, Kafka perf tools, bare produce, Redis")
        lim = result["limits"]
        lim["bare_consume"] = limits.bare_consume(topic, n)
        lim["kafka_consumer_perf"] = limits.kafka_consumer_perf(topic, messages=n)
        lim["bare_produce"] = bare_produce(scratch, values)
        lim["kafka_producer_perf"] = limits.kafka_producer_perf(scratch, records=n, record_size=value_bytes)
        lim["redis_set_p100"] = limits.redis_pipelined_set(values, pipeline=100)
        lim["redis_set_p1000"] = limits.redis_pipelined_set(values, pipeline=1000)
        lim["redis_benchmark_p100"] = limits.redis_benchmark(
            requests=max(n, 100_000), value_size=value_bytes, pipeline=100
        )
        del values

        log("product: consume path (FeedConsumer.run in worker processes)")
        result["product"]["consume"] = {}
        for processes, batch in ((1, 100), (1, 1000), (2, 100), (2, 1000)):
            key = f"{processes}p_b{batch}"
            profile = RESULTS / f"{stamp}-consume-1p-b100.raw" if args.profile and key == "1p_b100" else None
            _consume_run(result, topic, processes=processes, batch=batch, profile=profile)

        log("peer: the minimal sink (consume(100) -> redis-py pipeline SET -> offsets stored)")
        result["minimal_sink"] = minimal_sink(topic, n)
        log(f"  {result['minimal_sink']['msgs_per_s']:,}/s")
        if args.no_peer:
            result["peer"] = result["quix"] = result["quix_tuned"] = {"skipped": "--no-peer"}
        else:
            log("peer: Quix Streams RedisSink into this bench's Redis (own virtualenv), defaults and tuned")
            for key, tuned in (("quix", False), ("quix_tuned", True)):
                result[key] = quix_sink(topic, n, tuned=tuned)
                log(f"  {result[key].get('sink')}: {result[key].get('msgs_per_s') or result[key]}")
            log("peer: Kafka Connect standalone")
            result["peer"] = connect_file_sink(topic, n)

        log(f"reconcile: a window of {recon_n:,} messages (bench/recon_window.py)")
        result["product"]["reconcile"] = script_json(
            "recon_window.py", ["--messages", str(recon_n)], {"DATABASE_URL": os.environ["DATABASE_URL"]}
        )
        log(f"pages: over {pages_n:,} ledger rows (bench/dashboard_pages.py)")
        base = urlsplit(os.environ["DATABASE_URL"])
        pages_db = base._replace(path=base.path + "_pages").geturl()
        result["product"]["pages"] = script_json(
            "dashboard_pages.py",
            ["--messages", str(pages_n), "--requests", str(size["requests"])],
            {"DATABASE_URL": pages_db},
        )
    finally:
        gone = topics_delete([topic, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER, scratch, second])
        for name, state in gone.items():
            if state != "deleted":  # a topic left behind is no reason to lose the figures
                log(f"topic {name} not deleted: {state}")
        cache_clear()

    _results_write(result, out_path, began, SECTIONS)


def _consume_run(
    result: dict, topic: str, *, processes: int, batch: int, profile: Path | None, partitions: int = 2
) -> None:
    runs = result["product"].setdefault("consume", {})
    key = f"{processes}p_b{batch}" + (f"_{partitions}parts" if partitions != 2 else "")
    runs[key] = consume_path(topic, processes=processes, batch=batch, profile=profile, partitions=partitions)
    cpu_run = runs[key]["cpu"]
    log(
        f"  {key}: {runs[key]['msgs_per_s']:,}/s {runs[key]['per_process_msgs_per_s']},"
        f" {cpu_run['us_per_message_adjusted']} us a message (workers {cpu_run['clients_us_per_message']})"
    )
    if profile is not None:
        from bench.profile_summary import summarise

        total, top = summarise(profile)
        result["profile"] = {
            "file": str(profile.relative_to(ROOT)),
            "samples": total,
            "inclusive_share": {label: round(count / max(total, 1), 3) for label, count in top[:25]},
        }


def _consume_only(result: dict, topic: str, n: int, *, profile_to: Path | None) -> None:
    """--consume-only: the messages loaded once (1 worker), then what the consume path is set
    beside in the full run, in the same order: limits, the product, the minimal sink, Quix."""
    log(f"product: bulk load (SQL source -> Kafka + publish ledger) in {LOAD_PARTS} parts, 1 worker")
    result["product"]["load"] = {"1_worker": bulk_load(feed_topics_ensure()["bulk"], n, workers=1)}
    values = limits.fetch_values(topic, n)
    result["value_bytes"] = round(sum(map(len, values)) / len(values))
    lim = result["limits"]
    lim["bare_consume"] = limits.bare_consume(topic, n)
    lim["redis_set_p100"] = limits.redis_pipelined_set(values, pipeline=100)
    del values
    log("product: consume path, batch 100, 1 and 2 processes")
    for processes in (1, 2):
        _consume_run(result, topic, processes=processes, batch=100, profile=profile_to if processes == 1 else None)
    log("peer: the minimal sink")
    result["minimal_sink"] = minimal_sink(topic, n)
    log(f"  {result['minimal_sink']['msgs_per_s']:,}/s, {result['minimal_sink']['cpu']['us_per_message_adjusted']} us")
    log("peer: Quix Streams RedisSink at its defaults")
    result["quix"] = quix_sink(topic, n, tuned=False)
    log(f"  {result['quix'].get('msgs_per_s')}/s")


def _capacity_check(result: dict, topic: str, n: int) -> None:
    """--capacity: the model of docs/capacity.md against a measurement. The messages are
    loaded once into 6 partitions; the consume path runs in 1 process on all six, then in 3
    processes on two each. Every process shares this machine's cores, so the model's rate
    is cores / CPU per message (all processes); the figure that carries to a sized
    deployment is each part's CPU per message."""
    log(f"capacity: bulk load into {CAPACITY_PARTITIONS} partitions, 1 worker")
    result["product"]["load"] = {"1_worker": bulk_load(feed_topics_ensure()["bulk"], n, workers=1)}
    for processes in (1, CAPACITY_CONSUMERS):
        _consume_run(result, topic, processes=processes, batch=100, profile=None, partitions=CAPACITY_PARTITIONS)
    runs = result["product"]["consume"]
    cores = os.cpu_count() or 1
    check = result["capacity"] = {"cores": cores, "runs": {}}
    for key, run in runs.items():
        parts = {k: round(v / run["messages"] * 1e6, 1) for k, v in run["cpu"]["seconds"].items()}
        total = run["cpu"]["us_per_message_adjusted"]
        busy = run["machine_busy_cpu_seconds"] / max(run["machine_cpu_capacity_seconds"], 1e-9)
        modelled = round(cores * 1e6 / total) if total else 0
        check["runs"][key] = {
            "us_per_message": parts,
            "us_per_message_all": total,
            "modelled_msgs_per_s": modelled,
            "measured_msgs_per_s": run["msgs_per_s"],
            "machine_busy_share": round(busy, 2),
        }
        log(
            f"  {key}: measured {run['msgs_per_s']:,}/s, model {modelled:,}/s (cores / {total} us);"
            f" per message {parts}; machine busy {busy:.0%}"
        )


def _capacity_rows(r: dict) -> list[dict]:
    """--capacity's table: per run the measured rate beside the model's, and CPU per message."""
    rows = []
    for key, run in r.get("capacity", {}).get("runs", {}).items():
        rows.append(
            row(
                f"capacity {key}: msgs/s measured",
                run["measured_msgs_per_s"],
                "/s",
                baseline=run["modelled_msgs_per_s"],
                baseline_name="model: cores / CPU per message",
                baseline_unit="/s",
            )
        )
        rows.append(row(f"capacity {key}: CPU per message, all processes", run["us_per_message_all"], "us"))
        for part, us in run["us_per_message"].items():
            rows.append(row(f"capacity {key}: CPU per message, {part}", us, "us"))
    return rows


def _results_write(result: dict, out_path: Path, began: float, sections: tuple) -> None:
    result["seconds"] = round(time.perf_counter() - began, 1)
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["table"] = rows = [line for section in sections for line in section(result)]
    out_path.write_text(json.dumps(result, indent=2, default=str))
    log("")
    log(table(rows))
    log(f"\nJSON: {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}  ({result['seconds']} s)")


# --- the figures ------------------------------------------------------------------------
# The table is a list of sections, each a function of the run's JSON answering rows; a new
# figure is a row in a section (or a new section in SECTIONS). A row names its baseline
# from the same run (`limit`, `limit_name`: a limit of this machine, a peer, the product's
# own 1-process or 1-worker figure) with the ratio to it, and the target where there is one.


def row(
    figure: str,
    value,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str = "",
    baseline_unit: str | None = None,
    target: str | None = None,
    met: bool | None = None,
    **extra,
) -> dict:
    out: dict = {"figure": figure, "value": value, "unit": unit}
    if baseline is not None:
        out.update(limit=baseline, limit_name=baseline_name)
        if baseline_unit is not None:
            out["limit_unit"] = baseline_unit
        if isinstance(value, int | float):
            out["ratio"] = ratio(value, baseline)
    out.update(extra)
    if target is not None:
        out.update(target=target, met=met)
    return out


def _consume_limit(r: dict) -> tuple[float, str]:
    lim = r["limits"]
    rate = min(lim["bare_consume"]["msgs_per_s"], lim["redis_set_p100"]["ops_per_s"])
    return rate, "bare consume" if rate == lim["bare_consume"]["msgs_per_s"] else "redis-py SET P100"


def _peers(r: dict) -> tuple[float | None, float | None]:
    """The minimal sink's and Quix's (defaults) rates: every consume figure is set beside them."""
    return r.get("minimal_sink", {}).get("msgs_per_s"), r.get("quix", {}).get("msgs_per_s")


def _limit_rows(r: dict) -> list[dict]:
    lim = r["limits"]
    rows = [
        row("limit: bare confluent-kafka consume", lim["bare_consume"]["msgs_per_s"], "/s"),
        row("limit: kafka-consumer-perf-test", lim["kafka_consumer_perf"].get("msgs_per_s"), "/s"),
        row("limit: bare confluent-kafka produce (acks)", lim["bare_produce"]["msgs_per_s"], "/s"),
        row("limit: kafka-producer-perf-test", lim["kafka_producer_perf"].get("msgs_per_s"), "/s"),
        row("limit: redis-py pipelined SET, 100", lim["redis_set_p100"]["ops_per_s"], "/s"),
        row("limit: redis-py pipelined SET, 1000", lim["redis_set_p1000"]["ops_per_s"], "/s"),
        row("limit: redis-benchmark -P 100", lim["redis_benchmark_p100"].get("ops_per_s"), "/s"),
    ]
    bare_cpu = lim["bare_produce"].get("cpu")
    if bare_cpu:
        rows.append(row("CPU per message: bare produce, all processes", bare_cpu["us_per_message_adjusted"], "us"))
    return rows


def _peer_rows(r: dict) -> list[dict]:
    limit, limit_name = _consume_limit(r)
    minimal, quix = _peers(r)
    rows = [
        row(
            "peer: minimal sink consume(100)->SET pipeline",
            minimal,
            "/s",
            baseline=limit,
            baseline_name=limit_name,
            vs_quix=ratio(minimal, quix),
        )
    ]
    for key, name in (("quix", "defaults"), ("quix_tuned", "tuned")):
        rate = r.get(key, {}).get("msgs_per_s")
        if rate:
            rows.append(
                row(f"peer: Quix Streams RedisSink, {name}", rate, "/s", baseline=minimal, baseline_name="minimal sink")
            )
    return rows


def _consume_rows(r: dict) -> list[dict]:
    consume = r["product"]["consume"]
    limit, limit_name = _consume_limit(r)
    minimal, quix = _peers(r)
    rows = []
    for run in consume.values():
        per_process = min(run["per_process_msgs_per_s"])
        peers = {"vs_minimal": ratio(per_process, minimal), "vs_quix": ratio(per_process, quix)}
        target = {}
        if run["processes"] == 1 and minimal and quix:
            target = {
                "target": ">= 1.5x quix, >= 0.5 min",
                "met": per_process >= 1.5 * quix and per_process >= 0.5 * minimal,
            }
        name = f"consume path, {run['processes']} proc, batch {run['batch']}"
        if run["processes"] > 1:
            name += " (per proc)"
        rows.append(row(name, per_process, "/s", baseline=limit, baseline_name=limit_name, **peers, **target))
        if run["processes"] == 2:
            single = consume[f"1p_b{run['batch']}"]["msgs_per_s"]
            rows.append(
                row(
                    f"consume path, 2 proc, batch {run['batch']} (total)",
                    run["msgs_per_s"],
                    "/s",
                    baseline=single,
                    baseline_name="1 proc",
                    vs_minimal=ratio(run["msgs_per_s"], minimal),
                    vs_quix=ratio(run["msgs_per_s"], quix),
                    target=">= 1.70",
                    met=(ratio(run["msgs_per_s"], single) or 0) >= 1.7,
                )
            )
    return rows


def _cpu_rows(r: dict) -> list[dict]:
    """CPU per message across worker(s), PostgreSQL, Redis and the broker (others' load on the
    shared services, sampled just before each run, taken out; none on the bench's own Redis)."""
    consume = r["product"]["consume"]
    minimal = r.get("minimal_sink", {}).get("cpu", {}).get("us_per_message_adjusted")
    rows = [row("CPU per message: minimal sink, all processes", minimal, "us")]
    for key, name in (("quix", "defaults"), ("quix_tuned", "tuned")):
        us = r.get(key, {}).get("cpu", {}).get("us_per_message_adjusted")
        if us:
            rows.append(
                row(
                    f"CPU per message: Quix {name}, all processes",
                    us,
                    "us",
                    baseline=minimal,
                    baseline_name="minimal sink",
                )
            )
    for key, run in consume.items():
        us = run["cpu"]["us_per_message_adjusted"]
        if run["processes"] == 1:
            rows.append(
                row(
                    f"CPU per message: {key}, all processes",
                    us,
                    "us",
                    baseline=minimal,
                    baseline_name="minimal sink",
                    target="<= 2.0x min",
                    met=bool(minimal) and us <= 2 * minimal,
                )
            )
        else:
            single = consume[f"1p_b{run['batch']}"]["cpu"]["us_per_message_adjusted"]
            rows.append(
                row(
                    f"CPU per message: {key}, all processes",
                    us,
                    "us",
                    baseline=single,
                    baseline_name="1 proc",
                    target="within 10% of 1 proc",
                    met=bool(single) and abs(us / single - 1) <= 0.10,
                )
            )
    return rows


def _redis_us(run: dict) -> float | None:
    """Redis CPU per message of a run (the bench's own Redis: counted whole)."""
    cpu_run, messages = run.get("cpu") or {}, run.get("messages")
    seconds = (cpu_run.get("shared_adjusted_seconds") or {}).get("redis")
    return round(seconds * 1e6 / messages, 1) if seconds is not None and messages else None


def _redis_cpu_rows(r: dict) -> list[dict]:
    """Redis's share of CPU per message: the script's checks and writes against the minimal sink's SETs."""
    minimal = _redis_us(r.get("minimal_sink", {}))
    rows = [row("Redis CPU per message: minimal sink", minimal, "us")]
    for key, run in r["product"]["consume"].items():
        us = _redis_us(run)
        extra = {}
        if run["processes"] == 1:
            extra = {"target": "<= 2.0x min", "met": bool(minimal) and us is not None and us <= 2 * minimal}
        rows.append(
            row(f"Redis CPU per message: {key}", us, "us", baseline=minimal, baseline_name="minimal sink", **extra)
        )
    return rows


def _load_rows(r: dict) -> list[dict]:
    """The bulk load in parts, 1 and 2 workers: records/s against bare produce, and CPU per
    record (what carries to a bigger machine) against bare produce's CPU per message."""
    loads, bare = r["product"]["load"], r["limits"]["bare_produce"]
    one, two = loads["1_worker"], loads["2_workers"]
    bare_cpu = bare.get("cpu", {}).get("us_per_message_adjusted")
    share = ratio(one["msgs_per_s"], bare["msgs_per_s"]) or 0
    rows = [
        row(
            f"bulk load, 1 worker ({one['parts']} parts)",
            one["msgs_per_s"],
            "/s",
            baseline=bare["msgs_per_s"],
            baseline_name="bare produce",
            target=">= 0.30",
            met=share >= 0.3,
        ),
        row(
            f"bulk load, 2 workers ({two['parts']} parts)",
            two["msgs_per_s"],
            "/s",
            baseline=one["msgs_per_s"],
            baseline_name="1 worker",
        ),
    ]
    for key, run in (("1 worker", one), ("2 workers", two)):
        cpu_run = run["cpu"]
        rows.append(
            row(
                f"CPU per record: bulk load, {key}, all processes",
                cpu_run["us_per_message_adjusted"],
                "us",
                baseline=bare_cpu,
                baseline_name="bare produce",
                loading_us=cpu_run["clients_us_per_message"],
            )
        )
    return rows


def _connect_rows(r: dict) -> list[dict]:
    peer, one = r.get("peer", {}), r["product"]["consume"].get("1p_b100")
    if not (peer.get("msgs_per_s") and one):
        return []
    return [
        row(
            "peer: Kafka Connect FileStreamSink",
            peer["msgs_per_s"],
            "/s",
            baseline=one["msgs_per_s"],
            baseline_name="product 1 proc b100",
        )
    ]


def _reconcile_rows(r: dict) -> list[dict]:
    rec = r["product"]["reconcile"]
    worst = max(rec["clean_fast_path_s"], rec["clean_full_compare_s"], rec["discrepant_1pct_s"])
    return [
        row(
            f"reconcile {rec['messages']:,}-message window, 1% bad",
            rec["discrepant_1pct_s"],
            "s",
            baseline=rec["baseline_count_s"],
            baseline_name="COUNT(*) both ledgers",
            target="< 20 s",
            met=worst < 20,
        )
    ]


def _page_rows(r: dict) -> list[dict]:
    pages = r["product"]["pages"]
    rows = []
    for name in ("overview 24h", "overview 7d", "discrepancies", "discrepancies filtered"):
        page = pages["pages"][name]
        rows.append(
            row(
                f"page {name} p50 / p95 ({pages['messages']:,} rows)",
                f"{page['p50_ms']:.0f} / {page['p95_ms']:.0f} ms",
                "",
                baseline=300,
                baseline_name="target p95",
                baseline_unit="ms",
                ratio=ratio(page["p95_ms"], 300),
                target="p95 < 300 ms",
                met=page["p95_ms"] < 300,
            )
        )
    return rows


def _rss_rows(r: dict) -> list[dict]:
    one = r["product"]["consume"].get("1p_b100")
    if not one:
        return []
    first, half = one["rss_mb_first_batch"][0], one["rss_mb_half"][0]
    end, peak = one["rss_mb_end"][0], one["rss_mb_peak"][0]
    return [
        row(
            f"worker RSS end, 1p b100 (1st batch {first:.0f}, peak {peak:.0f})",
            end,
            "MB",
            baseline=half or first,
            baseline_name="halfway through",
            target="flat (<= 1.10)",
            met=end <= (half or first) * 1.10,
        )
    ]


SECTIONS = (
    _limit_rows,
    _peer_rows,
    _consume_rows,
    _cpu_rows,
    _redis_cpu_rows,
    _load_rows,
    _connect_rows,
    _reconcile_rows,
    _page_rows,
    _rss_rows,
)

# --consume-only: the consume path beside the minimal sink and Quix
CAPACITY_PARTITIONS = 6
CAPACITY_CONSUMERS = 3
CONSUME_SECTIONS = (_peer_rows, _consume_rows, _cpu_rows, _redis_cpu_rows)


def figures(r: dict) -> list[dict]:
    """The table: each figure beside its baseline from the same run, with the targets."""
    return [line for section in SECTIONS for line in section(r)]


if __name__ == "__main__":
    main()
