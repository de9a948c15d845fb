"""Which time a message counts at: the producer's `created`, bounded by the broker's clock.

Windows and delays are measured at a message's publish time. A producer's clock
can be wrong: ahead, it would push messages into later windows and hide real
delays; behind, it would fake delays. The feed's topics are created with
LogAppendTime (kafkacache.services.topics), so every message also carries the broker's
own time of arrival, which the delivery report hands the producer and the
message hands the consumer: both ledgers see the same two numbers.

The rule, the same on both sides: a message counts at `created` when that lies
within CLOCK_SKEW_MAX_MS of the broker's time, otherwise at the broker's time,
with a clock-skew finding naming both. So a skewed clock can move a message at
most CLOCK_SKEW_MAX_MS, and never unnoticed beyond that; and the cache never
looks at either clock (writes are ordered by source version, kafkacache.cache).
A message without a broker time (a topic made elsewhere with CreateTime, which
is the producer's clock again) counts at `created`.
"""

from typing import NamedTuple

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME


class PublishTime(NamedTuple):
    ms: int  # the time the message counts at, epoch ms
    skew_ms: int  # created - broker time; 0 when there is no broker time
    skewed: bool  # beyond the bound: counted at the broker's time


def publish_time(created_ms: int, timestamp: tuple[int, int] | None, *, max_skew_ms: int) -> PublishTime:
    """`timestamp` is confluent-kafka's (type, ms) of the message or its delivery report."""
    if timestamp is None or timestamp[0] != TIMESTAMP_LOG_APPEND_TIME or timestamp[1] <= 0:
        return PublishTime(created_ms, 0, False)
    broker_ms = timestamp[1]
    skew = created_ms - broker_ms
    if abs(skew) > max_skew_ms:
        return PublishTime(broker_ms, skew, True)
    return PublishTime(created_ms, skew, False)


def skew_detail(created_ms: int, broker_ms: int, *, max_skew_ms: int) -> dict:
    """A clock-skew finding's detail: both times, the difference and the bound."""
    skew = created_ms - broker_ms
    return {
        "created_ms": created_ms,
        "broker_ms": broker_ms,
        "skew_ms": skew,
        "limit_ms": max_skew_ms,
        "reason": (
            f"the producer's clock was {abs(skew) / 1000:.1f} s {'ahead of' if skew > 0 else 'behind'} the broker's"
            f" (limit {max_skew_ms / 1000:.0f} s): counted at the broker's time"
        ),
    }
