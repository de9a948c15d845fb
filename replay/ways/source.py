"""The source way: the clients rebuilt from the system of record (core.sources) and
published through the feed's load path (kafkacache.services.publishing.items_publish): new
UUIDs, `replay-of` the message they stand in for when one is known.
"""

import uuid
from collections.abc import Sequence

from django.conf import settings

from config.errors import AppError
from core import avro
from core.records import client_id_of
from core.sources import SourceError, source_get
from kafkacache.messages import message_build
from kafkacache.services.publishing import items_publish, messages_publish
from recon.models import Finding, Load, Replay, ReplayItem, Topic
from replay.guard import replays_per_message
from replay.services.progress import Progress
from replay.ways.common import Outcome, Scope, batched, item_with, originals_of


def _stand_ins(replay: Replay) -> tuple[dict[str, uuid.UUID | None], list[ReplayItem]]:
    """Record keys to rebuild, each with the message its rebuild stands in for (if known)."""
    if replay.scope == Scope.CLIENTS:
        keys = replay.target["keys"]
        # The message a rebuild of this key stands in for: the key's latest open missing/altered finding.
        latest: dict[str, uuid.UUID | None] = dict.fromkeys(keys)
        for key, message_uuid in (
            Finding.objects.filter(
                topic=replay.topic,
                key__in=keys,
                category__in=(Finding.Category.MISSING, Finding.Category.ALTERED),
                uuid__isnull=False,
            )
            .exclude(status=Finding.Status.RESOLVED)
            .order_by("created_at")
            .values_list("key", "uuid")
        ):
            latest[key] = message_uuid
        # The replay guard, for the messages the rebuilds stand in for.
        limit = settings.REPLAY_MAX_PER_MESSAGE
        times = replays_per_message(latest.values())
        guarded = [
            ReplayItem(
                original_uuid=u,
                key=k,
                outcome=Outcome.SKIPPED,
                detail=f"replay guard: replayed {times[u]} times already (REPLAY_MAX_PER_MESSAGE={limit})",
            )
            for k, u in latest.items()
            if u is not None and times.get(u, 0) >= limit
        ]
        return {k: u for k, u in latest.items() if not (u is not None and times.get(u, 0) >= limit)}, guarded
    originals, unknown = originals_of(replay)
    by_key: dict[str, uuid.UUID | None] = {}
    for o in originals:  # oldest first: the latest message of a key wins
        by_key[o.key] = o.uuid
    return by_key, unknown


def _deletes_publish(topic: Topic, source, keys: Sequence[str], by_key: dict[str, uuid.UUID | None]) -> list:
    """Keys a versioned source no longer holds: a delete each, at a version the source
    draws now (newer than any it gave the key), so the cache drops what it still serves."""
    draw = getattr(source, "version_draw", None)
    if not keys or draw is None:
        return []  # a file source cannot say when a record went: nothing to order a delete by
    version = draw()
    messages = [
        message_build(
            key=key,
            event="delete",
            value=None,
            problems=[],  # built here: sealed like the rest
            source=f"replay:{source.name}",
            schema_version=avro.current_version(),
            hash_algorithm=topic.hash_algorithm,
            replay_of=by_key.get(key),
            version=version,
        )
        for key in keys
    ]
    return messages_publish(topic=topic, messages=messages)


def replay_source(replay: Replay, progress: Progress) -> None:
    topic = replay.topic
    by_key, unknown = _stand_ins(replay)
    progress.total(len(by_key) + len(unknown))
    progress.record(unknown)
    load = Load.objects.get(pk=replay.target["load"]) if replay.scope == Scope.LOAD else None
    name = load.source if load else replay.target.get("source", "ods")
    try:
        source = source_get(name)
    except SourceError as exc:
        raise AppError(str(exc), code="bad_source") from None
    event = "bulk" if topic.kind == Topic.Kind.BULK else "add"
    not_clients = [k for k in by_key if client_id_of(k) is None]
    progress.record(
        [
            ReplayItem(original_uuid=by_key[k], key=k, outcome=Outcome.SKIPPED, detail="not a client key")
            for k in not_clients
        ]
    )
    keys = [k for k in by_key if k not in not_clients]
    for chunk in batched(keys, settings.REPLAY_BATCH_SIZE):
        ids = [i for i in (client_id_of(k) for k in chunk) if i is not None]
        found = [item for batch in source.batches(client_ids=ids, batch_size=len(ids)) for item in batch]
        deliveries, refused = items_publish(
            topic=topic,
            items=found,
            event=event,
            source=source.name,
            load=load if event == "bulk" else None,
            replay_of={k: u for k, u in by_key.items() if u is not None},
        )
        published = {d.message.key: d for d in deliveries}
        gone = [k for k in chunk if k not in published and k not in refused]
        for delivery in _deletes_publish(topic, source, gone, by_key):
            published[delivery.message.key] = delivery
        items = []
        for key in chunk:
            item = ReplayItem(original_uuid=by_key[key], key=key)
            delivery = published.get(key)
            if delivery is not None and delivery.error:
                items.append(item_with(item, Outcome.FAILED, f"Kafka did not acknowledge: {delivery.error}"))
            elif delivery is not None and delivery.message.event == "delete":
                detail = (
                    f"not in {source.name} any more: a delete at version {delivery.message.version} published as"
                    f" {topic.name}/{delivery.partition}@{delivery.offset}"
                )
                items.append(item_with(item, Outcome.PUBLISHED, detail, delivery.message.uuid))
            elif delivery is not None:
                detail = f"rebuilt from {source.name}, published as {topic.name}/{delivery.partition}@{delivery.offset}"
                items.append(item_with(item, Outcome.PUBLISHED, detail, delivery.message.uuid))
            elif key in refused:
                items.append(item_with(item, Outcome.SKIPPED, f"not publishable: {refused[key]}"))
            else:
                items.append(item_with(item, Outcome.SKIPPED, f"not in the source {source.name}"))
        progress.record(items)
