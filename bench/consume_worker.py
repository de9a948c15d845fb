"""One consume worker of the bench: the product's FeedConsumer in its own process.

    .venv/bin/python bench/consume_worker.py --topic T --partitions 0,1 --group G --batch 100 --out w.json

Runs kafkacache.consumer.FeedConsumer.run unchanged (per batch: check each
message or its seal, hash, one Redis script call, one ledger statement, offsets
stored, commits by librdkafka; both writes on the wire while the next batch is
fetched and planned) until its partitions are drained. The only difference from
the scheduled consumer is how partitions arrive: assigned here, instead of a
group join, so two workers split a 2-partition topic exactly and the figure is
the steady state, not the join. Writes messages, the steady-state span (first
batch end to last batch end) and the messages in it, batch latency and RSS
(after the first batch, at the end, peak) as JSON. The environment (database,
Redis, topics) comes from the parent, bench/run.py.
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A laptop run with DEBUG off and the development keys (config.secrets): never in production.
os.environ.setdefault("KAFKACACHE_ALLOW_DEV_SECRETS", "1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")

import django

django.setup()

from confluent_kafka import OFFSET_BEGINNING, TopicPartition  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench.cpu import process_seconds  # noqa: E402
from core.clients import make_consumer  # noqa: E402
from kafkacache.consumer import FeedConsumer  # noqa: E402


def rss_kb() -> dict[str, int]:
    """This process's resident set now (VmRSS) and its peak so far (VmHWM), in KB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


class AssignedConsumer(FeedConsumer):
    """FeedConsumer reading the partitions it is given (assign), not a group's share."""

    def __init__(self, *, topic: str, partitions: list[int], **kwargs):
        super().__init__(**kwargs)
        self.partition_list = [(topic, p) for p in partitions]

    def open(self) -> None:
        self.consumer = make_consumer(self.group, **{"session.timeout.ms": settings.CONSUMER_SESSION_TIMEOUT_MS})
        self.consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in self.partition_list])
        self.assigned = set(self.partition_list)
        self.assigned_at = time.monotonic()


def main() -> None:
    """One consume worker of the bench, measured from the start signal until drained.

    Long because it is one measured run: the timers and counters it sets up around the
    consumer are read back into its result, and split they would travel as a dozen arguments."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", required=True, help="comma-separated partition numbers")
    parser.add_argument("--group", required=True)
    parser.add_argument("--batch", type=int, default=settings.CONSUMER_BATCH_SIZE)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready", help="file to create once set up (the parent waits for every worker's)")
    parser.add_argument("--go", help="file whose appearance starts the run, so workers start together")
    args = parser.parse_args()

    consumer = AssignedConsumer(
        topic=args.topic,
        partitions=[int(p) for p in args.partitions.split(",")],
        group=args.group,
        batch_size=args.batch,
        # consume() waits up to this long to fill a batch: at the end of a partition
        # the last, partial batch would otherwise add the product's 1 s poll to the
        # span (under steady traffic batches fill at once, so it is no throughput cost).
        poll_timeout=0.05,
    )
    batch_ms: list[float] = []
    ends: list[tuple[float, int]] = []  # (perf_counter, messages so far) at each batch's end
    rss: dict[str, dict[str, int]] = {}
    # (messages so far, RSS KB) every 25 batches: flat, or growing with the count?
    rss_curve: list[tuple[int, int]] = []
    seen = [0]
    observe = consumer.latencies.observe

    def timed(*, batch_seconds: float, redis_seconds: float) -> None:
        # A batch's latency: planned, written (Redis and ledger), offsets stored.
        batch_ms.append(batch_seconds * 1000)
        observe(batch_seconds=batch_seconds, redis_seconds=redis_seconds)

    def on_batch(outcomes) -> None:
        seen[0] += sum(outcomes.values())
        ends.append((time.perf_counter(), seen[0]))
        if len(ends) == 1:
            rss["first_batch"] = rss_kb()
        if len(ends) % 25 == 0:
            rss_curve.append((seen[0], rss_kb()["VmRSS"]))

    consumer.latencies.observe = timed  # type: ignore[method-assign]
    rss["start"] = rss_kb()
    # The PostgreSQL backend serving this worker: its CPU is this worker's ledger cost.
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    if args.ready and args.go:
        Path(args.ready).touch()
        deadline = time.monotonic() + 120
        while not Path(args.go).exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    own_before, backend_before = sum(os.times()[:2]), process_seconds(backend)
    totals = consumer.run(drain=True, max_seconds=args.max_seconds, on_batch=on_batch)
    backend_now = connection.connection.info.backend_pid if connection.connection else backend
    own_cpu = sum(os.times()[:2]) - own_before
    backend_cpu = process_seconds(backend) - backend_before if backend_now == backend else None
    rss["end"] = rss_kb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    messages = sum(totals[k] for k in ("stored", "deleted", "invalid", "dead"))
    # Steady state: from the first batch's end to the last's, over the messages between
    # (the first batch carries the start-up: assignment, first fetch, connections).
    span = (ends[-1][0] - ends[0][0]) if len(ends) > 1 else 0.0
    steady = (ends[-1][1] - ends[0][1]) if len(ends) > 1 else 0
    batch_ms.sort()
    result = {
        "partitions": args.partitions,
        "batch": args.batch,
        "messages": messages,
        "outcomes": {k: v for k, v in totals.items() if k != "batches"},
        "batches": totals["batches"],
        "seconds": round(span, 3),
        "steady_messages": steady,
        "msgs_per_s": round(steady / span) if span else 0,
        "batch_ms_p50": round(batch_ms[len(batch_ms) // 2], 2) if batch_ms else None,
        "batch_ms_p95": round(batch_ms[int(len(batch_ms) * 0.95)], 2) if batch_ms else None,
        "rss_kb_first_batch": rss.get("first_batch", {}).get("VmRSS"),
        "rss_kb_end": rss["end"]["VmRSS"],
        "rss_kb_peak": rss["end"]["VmHWM"],
        "rss_kb_curve": rss_curve,
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),  # the whole process, imports included
        # from the start signal to drained (librdkafka's threads included): the run's own cost
        "run_cpu_seconds": round(own_cpu, 3),
        "backend_pid": backend,
        "backend_cpu_seconds": None if backend_cpu is None else round(backend_cpu, 3),
        "started_at": ends[0][0] if ends else None,
        "ended_at": ends[-1][0] if ends else None,
    }
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
