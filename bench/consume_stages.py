"""The consume path's stages one at a time, CPU per message of each (a lever measured in seconds).

    .venv/bin/python bench/consume_stages.py [--messages 20000] [--repeat 3]

Builds N sealed ~1 KB messages as the producer does (record_encode, message_build,
messages_seal), publishes them once to a topic of its own, reads them back as real
confluent-kafka messages, then runs each stage of the consume path on batches of 100 with
the product's own function: the plan (kafkacache.batch_plan: headers, hash, seal, the
ops and the ledger rows), the cache write (kafkacache.cache.cache_apply: this process and
the Redis server, from INFO), and the ledger (recon.services.ledger.consumed_record: this
process and its PostgreSQL backend, from /proc). Uses DATABASE_URL and REDIS_URL as set
(the Redis database is flushed before each cache pass: use a Redis of your own), prints
figures, asserts nothing. `make bench` measures the whole path with its peers.
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A laptop run with DEBUG off and the development keys (config.secrets): never in production.
os.environ.setdefault("KAFKACACHE_ALLOW_DEV_SECRETS", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench import cpu  # noqa: E402
from bench.data import bench_rows  # noqa: E402
from core.clients import redis_client  # noqa: E402
from core.record_checks import record_problems  # noqa: E402
from core.records import client_record_from_rows, record_encode, record_key  # noqa: E402
from kafkacache.batch_plan import batch_plan  # noqa: E402
from kafkacache.cache import cache_apply_send, cache_apply_wait  # noqa: E402
from kafkacache.messages import message_build  # noqa: E402
from kafkacache.producer import messages_seal  # noqa: E402
from kafkacache.services.topics import topics_ensure  # noqa: E402
from recon.models import Topic  # noqa: E402
from recon.services.ledger import consumed_record  # noqa: E402

BATCH = 100


def records(n: int) -> list[dict]:
    """N clients of ~1 KB, the bench's own rows (bench/data.py: 6 account settings and 6 cards
    each), built as the SQL source builds them."""
    clients, accounts, cards = bench_rows(n)
    mine: dict[int, tuple[list, list]] = {client[0]: ([], []) for client in clients}
    for row in accounts:  # (account_number, client_id, *columns, updated_at)
        mine[row[1]][0].append((row[0], *row[2:-1]))
    for row in cards:  # (card_id, client_id, *columns, updated_at)
        mine[row[1]][1].append((row[0], *row[2:-1]))
    return [client_record_from_rows(client, *mine[client[0]]) for client in clients]


def messages_make(topic: str, n: int) -> list:
    """N sealed bulk messages on `topic`, read back from Kafka."""
    out = []
    for i, plain in enumerate(records(n)):
        encoded = record_encode(plain)
        key = record_key(plain["client_id"])
        out.append(
            message_build(
                key=key,
                event="bulk",
                value=encoded.value,
                source="bench",
                schema_version=encoded.schema_version,
                hash_algorithm="blake2b",
                key_id=encoded.key_id,
                problems=record_problems(plain, key=key),
                load="bench-stages",
                version=i + 1,
            )
        )
    sealed = []
    for start in range(0, n, 500):
        sealed += messages_seal(out[start : start + 500], topic=topic)
    topics_ensure([topic], partitions=1)
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "linger.ms": 20})
    errors: list = []
    for m in sealed:
        producer.produce(
            topic, key=m.key, value=m.value, headers=m.headers, partition=0, on_delivery=lambda e, _m: errors.append(e)
        )
        producer.poll(0)
    producer.flush()
    if any(errors):
        raise RuntimeError(f"publish failed: {next(e for e in errors if e)}")
    consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": f"stages-{uuid.uuid4()}"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list = []
    while len(got) < n:
        got += [m for m in consumer.consume(500, timeout=5) if m.error() is None]
    consumer.close()
    return got[:n]


def us(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:7.1f} us"


def backend_seconds() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return cpu.process_seconds(pid)


def redis_seconds(client) -> float:
    info = client.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    name = f"{settings.KAFKA_TOPIC_BULK}.stages"
    topic, _ = Topic.objects.get_or_create(name=name)
    messages = messages_make(name, args.messages)
    batches = [messages[i : i + BATCH] for i in range(0, len(messages), BATCH)]
    n = len(messages)
    print(f"{n} messages of {len(messages[0].value())} bytes, load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    topics = {name: topic}
    client = redis_client()
    stages = ("plan", "cache", "redis", "ledger", "postgres")
    taken: list[tuple[float, ...]] = []
    for round_ in range(args.repeat):
        began = time.process_time()
        plans = [batch_plan(b, topics=topics, group="stages") for b in batches]
        plan_cpu = time.process_time() - began
        client.flushdb()
        began, server = time.process_time(), redis_seconds(client)
        for plan in plans:  # as the consumer's pipelined loop writes a batch
            cache_apply_wait(client, cache_apply_send(client, plan.ops))
        cache_cpu, cache_server = time.process_time() - began, redis_seconds(client) - server
        backend_seconds()  # connect first
        began, backend = time.process_time(), backend_seconds()
        for plan in plans:
            ((_, rows),) = plan.rows.items()
            consumed_record(topic=topic, rows=rows)
        ledger_cpu, ledger_backend = time.process_time() - began, backend_seconds() - backend
        taken.append((plan_cpu, cache_cpu, cache_server, ledger_cpu, ledger_backend))
        print(f"round {round_ + 1}: " + _line(stages, taken[-1], n))
    # The first round verifies each tree's signature once and warms the caches: the median of the rest.
    steady = taken[1:] or taken
    medians = tuple(statistics.median(column) for column in zip(*steady, strict=True))
    print("median: " + _line(stages, medians, n))


def _line(stages: tuple[str, ...], seconds: tuple[float, ...], n: int) -> str:
    parts = dict(zip(stages, seconds, strict=True))
    return (
        f"plan {us(parts['plan'], n)} | cache {us(parts['cache'], n)} + redis {us(parts['redis'], n)}"
        f" | ledger {us(parts['ledger'], n)} + postgres {us(parts['postgres'], n)} | sum {us(sum(seconds), n)}"
    )


if __name__ == "__main__":
    main()
