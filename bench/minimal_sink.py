"""The minimal sink: the least a Kafka -> Redis feed can do, in its own process.

    .venv/bin/python bench/minimal_sink.py --topic T --messages N --prefix P --out m.json

confluent-kafka consume(100) -> one redis-py pipeline of SETs (key = prefix + the
message key, value = the message bytes) -> offsets stored for librdkafka's
auto-commit, the same at-least-once commit the product uses. No checks, no
hashing, no ledger, no version guard: what is left is the client libraries and
the services. The rate runs from the first message consumed to the last batch
written; its CPU seconds (librdkafka's threads included) over the same span.
No Django: settings come from the environment the bench sets.
"""

import argparse
import json
import os
import time
import uuid
from pathlib import Path

import redis
from confluent_kafka import Consumer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    consumer = Consumer(
        {
            "bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            "group.id": f"bench-minimal-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.offset.store": False,
        }
    )
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"))
    client.ping()
    prefix = args.prefix.encode()
    consumer.subscribe([args.topic])
    seen = 0
    first = cpu_first = None
    ended = time.perf_counter()
    deadline = time.monotonic() + args.timeout
    try:
        while seen < args.messages and time.monotonic() < deadline:
            messages = consumer.consume(num_messages=args.batch, timeout=1.0)
            if not messages:
                continue
            if first is None:  # the group join is not the sink's speed
                first, cpu_first = time.perf_counter(), sum(os.times()[:2])
            pipe = client.pipeline(transaction=False)
            for m in messages:
                if m.error() is None:
                    pipe.set(prefix + (m.key() or b""), m.value() or b"")
            pipe.execute()
            for m in messages:
                if m.error() is None:
                    consumer.store_offsets(m)
                    seen += 1
            ended = time.perf_counter()
        cpu = sum(os.times()[:2]) - (cpu_first or 0.0)
    finally:
        consumer.close()
    seconds = ended - (first or ended)
    Path(args.out).write_text(
        json.dumps(
            {
                "messages": seen,
                "seconds": round(seconds, 3),
                "msgs_per_s": round(seen / seconds) if seconds else 0,
                "run_cpu_seconds": round(cpu, 3),
                "batch": args.batch,
            }
        )
    )


if __name__ == "__main__":
    main()
