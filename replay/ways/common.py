"""What every way shares: the originals a request names, and items in batches."""

import datetime as dt
import logging
import uuid
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import NamedTuple

from django.conf import settings

from config.errors import AppError
from recon.models import PublishedMessage, Replay, ReplayItem, Window
from replay.guard import replays_per_message

logger = logging.getLogger(__name__)


Outcome = ReplayItem.Outcome


Scope = Replay.Scope


class Original(NamedTuple):
    uuid: uuid.UUID
    key: str
    partition: int
    offset: int
    event_type: str
    published_at: dt.datetime
    load_id: uuid.UUID | None
    content_hash: bytes
    version: int | None = None  # source version; None: unordered, or published before versions


def batched(items: Sequence, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def created_ms(at: dt.datetime) -> int:
    return round(at.timestamp() * 1000)


def originals_of(replay: Replay, *, guard: bool = True) -> tuple[list[Original], list[ReplayItem]]:
    """The published messages a replay's scope names (oldest first), and items for UUIDs not found
    (and, with `guard`, for messages replayed REPLAY_MAX_PER_MESSAGE times already: the replay guard)."""
    topic, target = replay.topic, replay.target
    rows = PublishedMessage.objects.filter(topic=topic)
    if replay.scope == Scope.MESSAGES:
        rows = rows.filter(uuid__in=target["uuids"])
    elif replay.scope == Scope.WINDOW:
        window = Window.objects.get(pk=target["window"], topic=topic)
        rows = rows.filter(published_at__gte=window.start, published_at__lt=window.end)
    elif replay.scope == Scope.RANGE:
        rows = rows.filter(published_at__gte=target["start"], published_at__lt=target["end"])
    elif replay.scope == Scope.LOAD:
        rows = rows.filter(load_id=target["load"])
    else:
        raise AppError(f"scope {replay.scope} names no published messages", code="bad_scope")
    limit = settings.REPLAY_MAX_MESSAGES
    found = [
        Original(u, k, p, o, e, at, load_id, bytes(h), v)
        for u, k, p, o, e, at, load_id, h, v in rows.order_by("published_at", "id").values_list(
            *("uuid", "key", "partition", "offset", "event_type", "published_at", "load_id", "content_hash"),
            "source_version",
        )[: limit + 1]
    ]
    if len(found) > limit:
        raise AppError(f"the scope holds more than {limit} messages (REPLAY_MAX_MESSAGES): narrow it")
    missing: list[ReplayItem] = []
    if replay.scope == Scope.MESSAGES:
        known = {o.uuid for o in found}
        missing = [
            ReplayItem(original_uuid=u, outcome=Outcome.SKIPPED, detail=f"not in the publish ledger of {topic.name}")
            for u in map(uuid.UUID, target["uuids"])
            if u not in known
        ]
    if guard:
        limit = settings.REPLAY_MAX_PER_MESSAGE
        times = replays_per_message(o.uuid for o in found)
        over = {u for u, n in times.items() if n >= limit}
        missing += [
            ReplayItem(
                original_uuid=o.uuid,
                key=o.key,
                partition=o.partition,
                offset=o.offset,
                outcome=Outcome.SKIPPED,
                detail=f"replay guard: replayed {times[o.uuid]} times already (REPLAY_MAX_PER_MESSAGE={limit})",
            )
            for o in found
            if o.uuid in over
        ]
        found = [o for o in found if o.uuid not in over]
    return found, missing


def item_with(item: ReplayItem, outcome: str, detail: str = "", new_uuid: uuid.UUID | None = None) -> ReplayItem:
    item.outcome, item.detail, item.uuid = outcome, detail, new_uuid
    return item
