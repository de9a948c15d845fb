"""Reads of the feed: loads, a load's records back from the Redis cache, what became of a change."""

import uuid
from typing import Any

from django.db.models import QuerySet

from core.avro import AvroError
from core.cache_records import cache_records_get, load_keys
from core.clients import redis_client
from core.crypto import CryptoError
from core.records import record_decode, record_mask
from recon.access import topics_visible
from recon.models import ConsumedMessage, Load, PublishedMessage


def load_get(load_id: uuid.UUID | str) -> Load | None:
    return Load.objects.select_related("topic", "requested_by").filter(id=load_id).first()


def load_by_retrieval_key(retrieval_key: str) -> Load | None:
    return Load.objects.select_related("topic").filter(retrieval_key=retrieval_key).first()


def loads_visible(user) -> QuerySet[Load]:
    return Load.objects.select_related("topic", "requested_by").filter(topic__in=topics_visible(user))


def load_records(
    *, load: Load, payload_topics: set[str], offset: int = 0, limit: int = 100
) -> tuple[int, list[dict[str, Any]]]:
    """One page of the records a load delivered, as the cache holds them now.

    A record is decrypted only when the caller may see payloads of the topic that
    wrote it (`payload_topics`, by name): a key of the load that a change topic
    wrote since is that topic's to show. Everyone else gets account and card
    numbers masked, without touching the key. A record without its topic (written
    before records kept one) is shown masked, topic None, to everyone. A key whose
    record has since been deleted is listed with record None.
    """
    client = redis_client()
    keys = load_keys(client, load.retrieval_key)
    page = keys[offset : offset + limit]
    cached = cache_records_get(client, page)
    items = []
    for key in page:
        hit = cached.get(key)
        if hit is None:
            items.append({"key": key, "state": "deleted", "record": None})
            continue
        # A record written before records kept their topic decrypts for nobody: whose payload
        # it is cannot be told until cache_topics_set sets it from the publish ledger.
        written_by = hit.topic or None
        decrypt = written_by is not None and written_by in payload_topics
        item: dict[str, Any] = {
            "key": key,
            "state": "cached",
            "uuid": hit.uuid,
            "schema_version": hit.schema_version,
            "created_ms": hit.created_ms,
            "version": hit.version,
            "topic": written_by,
            "decrypted": decrypt,
        }
        try:
            record = record_decode(hit.value, schema_version=hit.schema_version, decrypt=decrypt, key=key)
            item["record"] = record if decrypt else record_mask(record)
        except (AvroError, CryptoError) as exc:
            item.update(state="unreadable", record=None, error=str(exc))
        items.append(item)
    return len(keys), items


def change_status(message_uuid: uuid.UUID) -> dict[str, Any] | None:
    """What became of a published change: "published" until the feed consumed it, then its
    latest delivery's outcome as the consume ledger has it (stored, deleted, refused-older,
    refused-unordered, dead, ...), with every delivery listed. None: no such message."""
    published = PublishedMessage.objects.select_related("topic").filter(uuid=message_uuid).first()
    if published is None:
        return None
    deliveries = list(
        ConsumedMessage.objects.filter(uuid=message_uuid, topic_id=published.topic_id)
        .order_by("consumed_at", "id")
        .values("group", "outcome", "consumed_at", "partition", "offset")
    )
    return {
        "uuid": published.uuid,
        "topic": published.topic,
        "key": published.key,
        "event": published.event_type,
        "version": published.source_version,
        "partition": published.partition,
        "offset": published.offset,
        "status": deliveries[-1]["outcome"] if deliveries else "published",
        "deliveries": deliveries,
    }
