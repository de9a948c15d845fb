"""Each way of replaying checked against what exists now, for the dry run: is the original
offset still in Kafka (at or above the partition's log start), is the published payload
in the audit log, is the record in the system of record. The dry run suggests the first
way that reaches every message, so a request never goes ahead on a way that cannot work.

Read-only: one watermark call per partition, one audit query, one source read per batch.
"""

import logging
from collections.abc import Sequence

from confluent_kafka import KafkaException, TopicPartition
from django.conf import settings

from core.clients import make_consumer
from core.records import client_id_of
from core.sources import SourceError, source_get
from recon.models import AuditPayload, Replay, Topic
from replay.ways.common import Original, batched

logger = logging.getLogger(__name__)

Way = Replay.Way

# The order a way is suggested in when several reach every message: the original bytes first.
PREFERENCE = (Way.KAFKA, Way.AUDIT, Way.SOURCE)


def kafka_unreachable(topic: Topic, originals: Sequence[Original]) -> dict[str, str]:
    """{uuid: why the kafka way cannot re-read it}: its offset below the partition's log start
    (retention or delete_records took it) or beyond its end."""
    partitions = sorted({o.partition for o in originals})
    if not partitions:
        return {}
    reader = make_consumer("kafkacache-replay-dry-run", **{"enable.auto.commit": False})
    bounds: dict[int, tuple[int, int] | str] = {}
    try:
        for p in partitions:
            try:
                bounds[p] = reader.get_watermark_offsets(TopicPartition(topic.name, p), timeout=10, cached=False)
            except KafkaException as exc:  # no such partition (any more), or Kafka not answering
                bounds[p] = f"Kafka cannot say what partition {p} holds: {exc.args[0].str()}"
    finally:
        reader.close()
    out = {}
    for o in originals:
        held = bounds[o.partition]
        if isinstance(held, str):
            out[str(o.uuid)] = held
            continue
        low, high = held
        if o.offset < low:
            out[str(o.uuid)] = f"offset {o.offset} is no longer in Kafka (partition {o.partition} starts at {low})"
        elif o.offset >= high:
            out[str(o.uuid)] = f"offset {o.offset} is beyond the end of partition {o.partition} ({high})"
    return out


def audit_unreachable(topic: Topic, originals: Sequence[Original]) -> dict[str, str]:
    """{uuid: why the audit way cannot republish it}: no published payload kept."""
    if not topic.method_audit:
        return {str(o.uuid): f"{topic.name} keeps no audit payloads" for o in originals}
    kept = set(
        AuditPayload.objects.filter(
            topic=topic, uuid__in=[o.uuid for o in originals], side=AuditPayload.Side.PUBLISHED
        ).values_list("uuid", flat=True)
    )
    return {str(o.uuid): "no published payload in the audit log" for o in originals if o.uuid not in kept}


def source_unreachable(originals: Sequence[Original], *, source_name: str) -> dict[str, str]:
    """{uuid: why the source way cannot rebuild it}: not a client key, or not in the source."""
    try:
        source = source_get(source_name)
    except SourceError as exc:
        return {str(o.uuid): f"source {source_name}: {exc}" for o in originals}
    out: dict[str, str] = {}
    for chunk in batched(list(originals), settings.REPLAY_BATCH_SIZE):
        ids = {o.uuid: client_id_of(o.key) for o in chunk}
        wanted = [i for i in ids.values() if i is not None]
        found: set[str] = set()
        if wanted:
            try:
                batches = source.batches(client_ids=wanted, batch_size=len(wanted))
                found = {item.key for batch in batches for item in batch if item.record is not None}
            except Exception as exc:  # a source that cannot be read answers "no" with why, never crashes the dry run
                logger.warning("dry run: source %s unreadable: %s", source.name, exc)
                return {str(o.uuid): f"source {source.name} unreadable: {type(exc).__name__}" for o in originals}
        for o in chunk:
            if ids[o.uuid] is None:
                out[str(o.uuid)] = "not a client key"
            elif o.key not in found:
                out[str(o.uuid)] = f"not in the source {source.name}"
    return out


def ways_check(*, topic: Topic, originals: Sequence[Original], source_name: str) -> tuple[dict, dict[str, dict]]:
    """Per way, how many of the messages it can reach and why not the others (a few reasons
    shown), and the way suggested: the first of PREFERENCE that reaches all of them; with
    every reason per way ({way: {uuid: reason}})."""
    checks = {
        Way.KAFKA: kafka_unreachable(topic, originals),
        Way.AUDIT: audit_unreachable(topic, originals),
        Way.SOURCE: source_unreachable(originals, source_name=source_name),
    }
    ways = {
        str(way): {
            "reachable": len(originals) - len(failing),
            "unreachable": len(failing),
            "reasons": dict(list(failing.items())[: settings.REPLAY_PREVIEW_MAX]),
        }
        for way, failing in checks.items()
    }
    suggested = next((str(w) for w in PREFERENCE if not checks[w]), None)
    return {"ways": ways, "suggested": suggested}, {str(w): failing for w, failing in checks.items()}
