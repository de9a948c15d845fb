"""Feed throughput against the real Kafka, Redis and PostgreSQL, next to this machine's limits.

    .venv/bin/python bench/feed_pipeline.py [--clients 20000] [--batch 100]

Own topics and consumer group per run, its own database (kafkacache_feed,
migrated here) and Redis database (9) unless DATABASE_URL / REDIS_URL say
otherwise; the source is a JSON-lines file in a temporary directory (no ODS
schema is touched). The limits next to the product's figures come from the same
run: a bare confluent-kafka consumer on the same topic (bench/limits.py),
redis-py pipelines, fastavro. Prints figures, asserts nothing.
"""

import argparse
import io
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A laptop run with DEBUG off and the development keys (config.secrets): never in production.
os.environ.setdefault("KAFKACACHE_ALLOW_DEV_SECRETS", "1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DATABASE_URL", "postgres://kafkacache:kafkacache@127.0.0.1:5432/kafkacache_feed")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("LOG_LEVEL", "WARNING")
RUN = uuid.uuid4().hex[:8]
os.environ["KAFKA_TOPIC_BULK"] = f"bench.bulk-{RUN}"
os.environ["KAFKA_TOPIC_CHANGE"] = f"bench.change-{RUN}"
os.environ["KAFKA_TOPIC_DEAD_LETTER"] = f"bench.dlq-{RUN}"
os.environ["KAFKA_CONSUMER_GROUP"] = f"bench-{RUN}"

import django  # noqa: E402

django.setup()

import fastavro  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench.limits import bare_consume  # noqa: E402
from core import avro  # noqa: E402
from core.clients import redis_client  # noqa: E402
from core.ods import demo_rows  # noqa: E402
from core.records import client_record_build, record_encode  # noqa: E402
from core.sources import document_of  # noqa: E402
from kafkacache.consumer import FeedConsumer  # noqa: E402
from kafkacache.services.loads import load_run, load_start  # noqa: E402
from kafkacache.services.topics import topics_delete, topics_ensure  # noqa: E402
from recon.services.feed import feed_topics_ensure  # noqa: E402


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f}/s"


def records(clients: int) -> list[dict]:
    client_rows, account_rows, card_rows = demo_rows(clients)
    accounts: dict[int, list] = {}
    cards: dict[int, list] = {}
    for a in account_rows:
        accounts.setdefault(a[1], []).append(
            dict(
                zip(
                    [
                        "account_number",
                        "client_id",
                        "product",
                        "currency",
                        "daily_limit_cents",
                        "overdraft_enabled",
                        "alerts_enabled",
                        "statement_day",
                        "language",
                    ],
                    a,
                    strict=False,
                )
            )
        )
    for c in card_rows:
        cards.setdefault(c[1], []).append(
            dict(zip(["card_id", "client_id", "card_number", "brand", "expiry", "status"], c, strict=False))
        )
    out = []
    for row in client_rows:
        client = dict(
            zip(["client_id", "name", "email", "segment", "status", "country", "updated_at"], row, strict=True)
        )
        out.append(client_record_build(client=client, accounts=accounts[row[0]], cards=cards[row[0]]))
    return out


def main() -> None:
    """The feed bench: the product's figures and this machine's limits, from one run.

    Long because it is the bench's script, one measured step after another, each printing
    its figure where it is taken."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=settings.CONSUMER_BATCH_SIZE)
    args = parser.parse_args()
    n = args.clients
    call_command("migrate", verbosity=0)
    print(f"feed bench: {n:,} clients, consumer batch {args.batch}, {os.cpu_count()} cores")

    plain = records(n)
    sample = record_encode(plain[0]).value
    print(f"record: {len(sample)} bytes Avro (encrypted numbers), schema v{avro.current_version()}")

    # --- limits of this machine, measured in this run ---------------------------------
    print("\nlimits (same run)")
    client = redis_client()
    values = [record_encode(p).value for p in plain[: min(n, 10000)]]
    started = time.perf_counter()
    for i in range(0, len(values), args.batch):
        pipe = client.pipeline(transaction=False)
        for j, value in enumerate(values[i : i + args.batch]):
            # a record-sized hash of four fields (the raw HSET rate; the cache's own writer is kafkacache.cache)
            pipe.hset(f"bench:{RUN}:{i + j}", mapping={"a": value, "b": "x", "c": 1, "d": 1})
        pipe.execute()
    print(f"  redis-py pipelined HSET, batch {args.batch:<5}      {rate(len(values), time.perf_counter() - started)}")
    for key in client.scan_iter(f"bench:{RUN}:*", count=5000):
        client.delete(key)
    schema = avro.parsed_schema(1)
    started = time.perf_counter()
    for value in values:
        fastavro.schemaless_reader(io.BytesIO(value), schema, None)
    print(f"  fastavro schemaless_reader (parsed once)   {rate(len(values), time.perf_counter() - started)}")
    started = time.perf_counter()
    for p in plain[: len(values)]:
        record_encode(p)
    print(f"  record_encode (2x AES-GCM per item + Avro) {rate(len(values), time.perf_counter() - started)}")

    # --- the product ------------------------------------------------------------------
    print("\nproduct")
    topics_ensure()
    topic = feed_topics_ensure()["bulk"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        with path.open("w") as handle:
            for p in plain:
                handle.write(json.dumps(document_of(p)) + "\n")
        settings.SOURCE_FILE_DIR = tmp
        load = load_start(topic=topic, source="file:bench.jsonl", client_ids=None, requested_by=None, queue=False)
        started = time.perf_counter()
        load = load_run(load_id=load.id)
        seconds = time.perf_counter() - started
    assert load.published == n, load
    print(f"  bulk load: read+build+encrypt+publish+ledger {rate(n, seconds)}  ({seconds:.1f} s)")

    bare = bare_consume(topic.name, n, batch=args.batch)
    print(f"  limit: bare consumer, no processing        {rate(bare['messages'], bare['seconds'])}")

    consumer = FeedConsumer(batch_size=args.batch)
    batch_ms: list[float] = []
    observe = consumer.latencies.observe

    def timed(*, batch_seconds: float, redis_seconds: float) -> None:
        # A batch's latency: planned, written (Redis and ledger), offsets stored.
        batch_ms.append(batch_seconds * 1000)
        observe(batch_seconds=batch_seconds, redis_seconds=redis_seconds)

    consumer.latencies.observe = timed  # type: ignore[method-assign]
    started = time.perf_counter()
    totals = consumer.run(drain=True, max_seconds=600)
    seconds = time.perf_counter() - started
    batch_ms.sort()
    print(f"  consume (wall, incl. group join)           {rate(totals['stored'], seconds)}  ({seconds:.1f} s)")
    print(
        f"  batch of {args.batch}: p50 {batch_ms[len(batch_ms) // 2]:.1f} ms, "
        f"p95 {batch_ms[int(len(batch_ms) * 0.95)]:.1f} ms, batches {len(batch_ms)}"
    )
    # tidy up: this run's topics and cache keys
    topics_delete([settings.KAFKA_TOPIC_BULK, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER])
    if settings.REDIS_URL.endswith("/9"):  # the bench's own database: leave it empty
        for key in client.scan_iter("kc:*", count=5000):
            client.delete(key)


if __name__ == "__main__":
    main()
