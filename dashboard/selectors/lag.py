"""Consumer lag per topic for pages: the total of monitoring.lag over the topic's partitions.

Asked of the brokers, so a page shows what Kafka knows rather than what the
ledger guesses. Answers are
cached for a few seconds: a dashboard refreshed by a room of people must not turn
into a stream of admin requests, and a slow or absent broker costs one timeout,
not one per page view.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Max, Sum

from monitoring.lag import consumer_lag as partition_lags
from monitoring.models import LagSample

logger = logging.getLogger(__name__)

CACHE_SECONDS = 15
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Lag:
    topic: str
    group: str
    messages: int | None  # None: Kafka did not answer (the page says "unavailable")
    partitions: int = 0
    error: str = ""
    at: dt.datetime | None = None  # when the beat's sampler took it (None: asked of Kafka now)

    def age_seconds(self, now: dt.datetime) -> int | None:
        return None if self.at is None else max(int((now - self.at).total_seconds()), 0)


def sampled_lag(topic: str, group: str) -> Lag:
    """The topic's lag as the beat's sampler last saw it (monitoring.services.lag_sample), with its time.

    Pages read this, never Kafka: two queries served by lagsample_group_topic_time, whatever
    Kafka's state. No sample yet: messages None and the page says so."""
    rows = LagSample.objects.filter(group=group, topic=topic)
    at = rows.aggregate(at=Max("at"))["at"]
    if at is None:
        return Lag(topic=topic, group=group, messages=None, error="no lag sample yet (is the beat running?)")
    latest = rows.filter(at=at).aggregate(n=Sum("lag"), partitions=Max("partition"))
    return Lag(topic=topic, group=group, messages=int(latest["n"] or 0), partitions=latest["partitions"] + 1, at=at)


def consumer_lag(topic: str, group: str) -> Lag:
    key = f"dashboard:lag:{topic}:{group}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    try:
        lag = _ask_kafka(topic, group)
    except Exception as exc:  # any broker failure is shown as "unavailable", never as a page error
        logger.warning("consumer lag of %s/%s unavailable: %r", topic, group, str(exc))
        lag = Lag(topic=topic, group=group, messages=None, error=f"{type(exc).__name__}: {exc}")
    cache.set(key, lag, CACHE_SECONDS)
    return lag


def _ask_kafka(topic: str, group: str) -> Lag:
    partitions = partition_lags(group, [topic], timeout_s=TIMEOUT_S)
    if not partitions:
        raise LookupError(f"topic {topic} not in Kafka")
    return Lag(topic=topic, group=group, messages=sum(p.lag for p in partitions), partitions=len(partitions))
