"""Partition leaders and in-sync replicas of the feed's topics, watched like rebalances.

A broker that dies, comes back or is moved changes the leader and the ISR of its
partitions. The consumer and producer follow on their own (librdkafka refreshes
metadata); this records each change as a RebalanceEvent of kind "leader", so the
rebalances page and the reconcile of that hour show it beside the group's own
rebalances. The last look is kept in Redis (kc:leaders:{group}), so every beat
process sees the same history and a restart does not record everything again.
"""

import json
import logging

from django.conf import settings

from core.clients import make_admin, redis_client
from kafkacache.services.topics import feed_topics
from recon.models import RebalanceEvent
from recon.services.feed import rebalance_record

logger = logging.getLogger(__name__)

TIMEOUT_S = 5.0
WATCHER = "leader-watch"


def _state_key(group: str) -> str:
    return f"kc:leaders:{group}"


def leaders_now(topics: list[str], *, timeout_s: float = TIMEOUT_S) -> dict[str, dict]:
    """{"topic/partition": {"leader": broker id, "isr": [broker ids]}} of the topics that exist."""
    metadata = make_admin(**{"socket.connection.setup.timeout.ms": int(timeout_s * 1000)}).list_topics(
        timeout=timeout_s
    )
    out = {}
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None:
            continue
        for partition, p in meta.partitions.items():
            out[f"{topic}/{partition}"] = {"leader": p.leader, "isr": sorted(p.isrs)}
    return out


def leaders_watch(*, topics: list[str] | None = None) -> list[RebalanceEvent]:
    """Compare with the last look; record one event listing every partition that changed."""
    group = settings.KAFKA_CONSUMER_GROUP
    now = leaders_now(topics or feed_topics())
    client = redis_client()
    raw = client.get(_state_key(group))
    before: dict[str, dict] = json.loads(raw) if raw else {}
    changed = []
    for name, state in sorted(now.items()):
        previous = before.get(name)
        if previous is not None and previous != state:
            topic, partition = name.rsplit("/", 1)
            changed.append(
                {
                    "topic": topic,
                    "partition": int(partition),
                    "leader": state["leader"],
                    "previous_leader": previous["leader"],
                    "isr": state["isr"],
                    "previous_isr": previous["isr"],
                }
            )
    client.set(_state_key(group), json.dumps(now))
    if not changed:
        return []
    moved = sum(1 for c in changed if c["leader"] != c["previous_leader"])
    logger.warning("partition leaders changed for %s: %d partitions (%d new leaders)", group, len(changed), moved)
    return [rebalance_record(group=group, member=WATCHER, kind=RebalanceEvent.Kind.LEADER, partitions=changed)]
