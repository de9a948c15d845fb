"""The consume loop's batch and Redis-write latencies, kept as histogram buckets in Redis
where they are measured (several processes write them); monitoring.metrics reads them
at scrape time."""

import logging
import time
from collections import Counter

from core.clients import redis_client

logger = logging.getLogger(__name__)

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HISTOGRAMS = {
    "batch": "kafkacache_consume_batch_seconds",
    "redis": "kafkacache_redis_write_seconds",
}
LATENCY_KEY = "kc:metrics:hist:{name}:{group}"


class BatchLatencies:
    """One consume loop's batch and Redis-write latencies, as histogram buckets in Redis.

    Counted in the process and added to Redis at most once per `flush_seconds`
    (a round trip per batch was 8% of a batch of 100): a crash loses at most that
    much of the histogram, never a message. Never raises: a metrics hiccup must
    not stop the consume loop.
    """

    def __init__(self, *, group: str, flush_seconds: float = 1.0):
        self.group = group
        self.flush_seconds = flush_seconds
        self.client = redis_client()
        self.pending: dict[str, Counter] = {name: Counter() for name in HISTOGRAMS}
        self.sums: dict[str, float] = dict.fromkeys(HISTOGRAMS, 0.0)
        self.flushed_at = time.monotonic()

    def observe(self, *, batch_seconds: float, redis_seconds: float) -> None:
        for name, value in (("batch", batch_seconds), ("redis", redis_seconds)):
            self.pending[name][next((str(b) for b in BUCKETS if value <= b), "+Inf")] += 1
            self.pending[name]["count"] += 1
            self.sums[name] += value
        if time.monotonic() - self.flushed_at >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self.flushed_at = time.monotonic()
        if not any(self.pending.values()):
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for name, counts in self.pending.items():
                key = LATENCY_KEY.format(name=name, group=self.group)
                for bucket, n in counts.items():
                    pipe.hincrby(key, bucket, n)
                pipe.hincrbyfloat(key, "sum", self.sums[name])
            pipe.execute()
        except Exception:
            logger.warning("could not record batch latencies for %s", self.group, exc_info=True)
            return  # kept: added with the next flush
        self.pending = {name: Counter() for name in HISTOGRAMS}
        self.sums = dict.fromkeys(HISTOGRAMS, 0.0)
