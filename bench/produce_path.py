"""The bulk-load produce path alone, against its baseline in the same run.

    .venv/bin/python bench/produce_path.py                 # 20,000 records of ~1 KB
    .venv/bin/python bench/produce_path.py -n 50000 --repeat 2
    .venv/bin/python bench/produce_path.py --profile       # also py-spy a second load (bench/results/*.raw)
    .venv/bin/python bench/profile_summary.py bench/results/<run>-produce.raw --root load_run
    .venv/bin/python bench/produce_path.py --stages        # also CPU per record of each stage, run alone

Runs the unchanged product path, `kafkacache.services.loads.load_run` on a load of the demo
SQL source (read, build, validate, encrypt, Avro, seal, publish with acks=all,
idempotent, zstd, publish ledger, counters), on N clients of ~1 KB (bench/data.py)
onto a 2-partition topic; then, in the same run, a bare confluent-kafka producer with
the product's settings on the very values the load published (bench/limits.py). It
prints the rate of each, their ratio (the target is >= 0.30) and CPU per message from
/proc: the loading process (librdkafka's threads included), its PostgreSQL backend,
and PostgreSQL's shared processes and the broker, whose rate in the 2 s before each
run is taken out (other runs share them). Its own database (DATABASE_URL's name +
`_perf`), its own topics (deleted at the end); Redis is not used.

--stages runs the load's stages one at a time on the same records, each with the
product's own function, and prints CPU per record of each (this process with
librdkafka's threads, and its PostgreSQL backend): the source read (SQL and the
records built), encryption and Avro (record_encode), the checks and the message
(the rest of message_record), the seal (messages_seal per batch), producing with
acknowledgements (Publishing, its seal taken out), and the ledger (batch_record in
the part's transaction). Their sum is close to, not the same as, the load's own
figure: run together they share caches and the other core.
"""

import argparse
import datetime as dt
import json
import os
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
os.environ.setdefault("LOG_LEVEL", "WARNING")
_base_url = os.environ.get("DATABASE_URL", "postgres://kafkacache:kafkacache@127.0.0.1:5432/kafkacache")
if not os.environ.get("PRODUCE_BENCH_CHILD"):
    # Never the tests' database: the bench truncates the ledgers and reseeds `ods`.
    _parts = urlsplit(_base_url)
    os.environ["DATABASE_URL"] = _parts._replace(path=_parts.path.rstrip("/") + "_perf").geturl()
os.environ["DJANGO_DEBUG"] = "0"  # DEBUG keeps every query in memory
os.environ["KAFKA_TOPIC_PARTITIONS"] = "2"
os.environ.setdefault("KAFKA_TOPIC_BULK", f"bench.produce-{RUN}.bulk")
os.environ.setdefault("KAFKA_TOPIC_CHANGE", f"bench.produce-{RUN}.change")
os.environ.setdefault("KAFKA_TOPIC_DEAD_LETTER", f"bench.produce-{RUN}.dlq")

from bench.data import database_ensure  # noqa: E402

database_ensure(os.environ["DATABASE_URL"])

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from bench import cpu, limits  # noqa: E402
from bench.data import ods_seed_bench  # noqa: E402
from core.records import record_encode  # noqa: E402
from core.sources import source_get  # noqa: E402
from kafkacache.producer import Publishing, messages_seal  # noqa: E402
from kafkacache.services.loads import load_run, load_start  # noqa: E402
from kafkacache.services.publishing import Pending, batch_record, message_record  # noqa: E402
from kafkacache.services.topics import topics_delete, topics_ensure  # noqa: E402
from recon.models import Load  # noqa: E402
from recon.services.feed import feed_topics_ensure  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BASELINE_S = 2.0


def log(text: str) -> None:
    print(text, flush=True)


def services() -> cpu.Services:
    kafka_port = int(settings.KAFKA_BOOTSTRAP_SERVERS.split(",")[0].rsplit(":", 1)[1])
    return cpu.Services(
        kafka_port=kafka_port,
        redis_port=urlsplit(settings.REDIS_URL).port or 6379,
        postgres_port=int(connection.settings_dict.get("PORT") or 5432),
    )


class Meter:
    """CPU seconds of this process, its PostgreSQL backend and the shared services over a run;
    the services' rate in the BASELINE_S before is taken as other runs' load during it."""

    def __init__(self, svc: cpu.Services):
        self.svc = svc
        connection.ensure_connection()
        self.backend = connection.connection.info.backend_pid
        before = svc.sample()
        time.sleep(BASELINE_S)
        self.start = svc.sample()
        self.rate = {k: v / BASELINE_S for k, v in cpu.delta(before, self.start).items()}
        self.own = sum(os.times()[:2])
        self.backend_s = cpu.process_seconds(self.backend)
        self.wall = time.perf_counter()
        self.load_before = os.getloadavg()[0]

    def done(self, messages: int) -> dict:
        seconds = time.perf_counter() - self.wall
        own = sum(os.times()[:2]) - self.own
        backend = cpu.process_seconds(self.backend) - self.backend_s
        shared = cpu.delta(self.start, self.svc.sample())
        adjusted = {k: max(0.0, v - self.rate[k] * seconds) for k, v in shared.items()}
        per = 1e6 / messages
        return {
            "messages": messages,
            "seconds": round(seconds, 3),
            "msgs_per_s": round(messages / seconds),
            "loadavg_1m": [round(self.load_before, 2), round(os.getloadavg()[0], 2)],
            "us_per_message": {
                "client": round(own * per, 1),
                "postgres_backend": round(backend * per, 1),
                **{k: round(v * per, 1) for k, v in adjusted.items()},
                "all": round((own + backend + sum(adjusted.values())) * per, 1),
            },
        }


def product_load(n: int) -> dict:
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    meter = Meter(services())
    load = load_run(load_id=load.id)
    figures = meter.done(n)
    if load.status != "done" or load.published != n:
        raise RuntimeError(f"bulk load did not publish {n}: {load.status} {load.published} {load.error}")
    return figures


def bare_produce(topic: str, values: list[bytes]) -> dict:
    meter = Meter(services())
    result = limits.bare_produce(topic, values)
    if result["failed"]:
        raise RuntimeError(f"bare producer: {result['failed']} not acknowledged")
    return meter.done(len(values))


def fmt(name: str, r: dict) -> str:
    us = r["us_per_message"]
    return (
        f"{name:<22} {r['msgs_per_s']:>8,}/s  {r['seconds']:>7.2f} s  load {r['loadavg_1m'][0]:.1f}->"
        f"{r['loadavg_1m'][1]:.1f}  CPU µs/msg: client {us['client']:.1f}, its postgres {us['postgres_backend']:.1f},"
        f" postgres shared {us.get('postgres_shared', 0):.1f}, broker {us.get('kafka', 0):.1f}, all {us['all']:.1f}"
    )


class _Clock:
    """CPU seconds of this process (all threads) and of its PostgreSQL backend, per stage."""

    def __init__(self) -> None:
        connection.ensure_connection()
        self.backend = connection.connection.info.backend_pid
        self.seconds: dict[str, list[float]] = {}

    def __call__(self, stage: str, work):
        own, backend = time.process_time(), cpu.process_seconds(self.backend)
        out = work()
        spent = self.seconds.setdefault(stage, [0.0, 0.0])
        spent[0] += time.process_time() - own
        spent[1] += cpu.process_seconds(self.backend) - backend
        return out


def stages(n: int) -> dict:
    """CPU per record of each stage of a load batch, each run alone with the product's function."""
    topic = feed_topics_ensure()["bulk"]
    load = Load.objects.create(topic=topic, source="ods")  # for the messages' load header; never run
    source = source_get("ods")
    clock = _Clock()
    batches = clock(
        "read (SQL, records built)", lambda: [b.items for b in source.read(batch_size=settings.LOAD_BATCH_SIZE)]
    )
    records = [item.record for batch in batches for item in batch]
    clock("encrypt + Avro (record_encode)", lambda: [record_encode(r) for r in records])

    def build(items):
        pending = Pending()
        out = [
            message_record(topic=topic, item=i, event="bulk", source="ods", pending=pending, load=load) for i in items
        ]
        return [m for m in out if m is not None]

    built = clock("build (message_record)", lambda: [build(items) for items in batches])
    clock("seal (messages_seal)", lambda: [messages_seal(b, topic=topic.name) for b in built])

    def produce():
        publishing = [Publishing(b, topic=topic.name) for b in built]
        return [p.wait() for p in publishing]

    deliveries = clock("produce (Publishing)", produce)
    with transaction.atomic():
        clock(
            "ledger (batch_record)",
            lambda: [batch_record(topic=topic, deliveries=d, pending=Pending()) for d in deliveries],
        )
        transaction.set_rollback(True)  # the bench's ledger stays as the load left it
    per = {k: [round(v[0] * 1e6 / n, 1), round(v[1] * 1e6 / n, 1)] for k, v in clock.seconds.items()}
    # The stages as the load runs them: message_record includes record_encode, Publishing seals.
    build_total, encode = per.pop("build (message_record)"), per["encrypt + Avro (record_encode)"]
    per["checks + message (message_record - record_encode)"] = [round(build_total[0] - encode[0], 1), build_total[1]]
    seal = per["seal (messages_seal)"]
    produce_total = per.pop("produce (Publishing)")
    per["produce + acks (Publishing - seal)"] = [round(produce_total[0] - seal[0], 1), produce_total[1]]
    order = [
        "read (SQL, records built)",
        "encrypt + Avro (record_encode)",
        "checks + message (message_record - record_encode)",
        "seal (messages_seal)",
        "produce + acks (Publishing - seal)",
        "ledger (batch_record)",
    ]
    out = {stage: {"client_us": per[stage][0], "postgres_us": per[stage][1]} for stage in order}
    out["sum"] = {
        "client_us": round(sum(v["client_us"] for v in out.values()), 1),
        "postgres_us": round(sum(v["postgres_us"] for v in out.values()), 1),
    }
    for stage, v in out.items():
        log(f"  {stage:<52} {v['client_us']:>7.1f} us/record  (its PostgreSQL backend {v['postgres_us']:.1f})")
    return out


def profile_child(n: int, out: Path) -> None:
    """A second load of the same records, in a process py-spy starts (it must be py-spy's child)."""
    spy = str(Path(sys.executable).parent / "py-spy")
    env = {**os.environ, "PRODUCE_BENCH_CHILD": "1"}
    command = [spy, "record", "-r", "200", "-f", "raw", "-o", str(out), "--", sys.executable, __file__, "--child"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    log(f"profile of a second load of {n:,} records: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="product and baseline runs, alternating")
    parser.add_argument("--profile", action="store_true", help="py-spy a further load (raw stacks)")
    parser.add_argument("--stages", action="store_true", help="CPU per record of each stage, each run alone")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # the profiled load: same database and source, already seeded
        product_load(settings_clients())
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    n = args.messages
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE recon_publishedmessage, recon_window CASCADE")
    ods_seed_bench(n)
    topics_ensure()
    scratch = f"bench.produce-{RUN}.scratch"
    topics_ensure([scratch])
    log(
        f"bench {RUN}: {n:,} records, {os.cpu_count()} cores, batch {settings.LOAD_BATCH_SIZE}, "
        f"{settings.LOAD_BATCHES_IN_FLIGHT} in flight, database {connection.settings_dict['NAME']}"
    )
    runs: list[dict] = []
    stage_figures: dict = {}
    try:
        values: list[bytes] = []
        for i in range(args.repeat):
            product = product_load(n)
            log(fmt("product bulk load", product))
            if not values:
                values = limits.fetch_values(settings.KAFKA_TOPIC_BULK, n)
            bare = bare_produce(scratch, values)
            log(fmt("bare producer", bare))
            ratio = round(product["msgs_per_s"] / bare["msgs_per_s"], 3)
            log(f"run {i + 1}: ratio {ratio} (target >= 0.30: {'met' if ratio >= 0.30 else 'missed'})")
            runs.append({"product": product, "bare_produce": bare, "ratio": ratio})
        if args.profile:
            os.environ["KAFKA_TOPIC_BULK"] = settings.KAFKA_TOPIC_BULK  # the child loads onto the same topic
            profile_child(n, RESULTS / f"{stamp}-produce.raw")
        if args.stages:
            log("stages, each alone, CPU per record:")
            stage_figures = stages(n)
    finally:
        topics_delete(
            [settings.KAFKA_TOPIC_BULK, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER, scratch]
        )
    value_bytes = round(sum(map(len, values)) / len(values)) if values else None
    out = RESULTS / f"{stamp}-produce.json"
    result = {"run": RUN, "when": stamp, "value_bytes": value_bytes, "runs": runs, "stages": stage_figures}
    out.write_text(json.dumps(result, indent=2))
    log(f"values average {value_bytes} bytes; {out}")


def settings_clients() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ods.clients")
        return cursor.fetchone()[0]


if __name__ == "__main__":
    main()
