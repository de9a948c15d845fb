"""The message search page's read: one box that finds messages by UUID, load id, record key or
client id, or partition/offset; one exact hit is a page to go to."""

import datetime as dt
import re
import uuid as uuid_lib
from dataclasses import dataclass, field

from recon.models import (
    ConsumedMessage,
    Load,
    PublishedMessage,
    Topic,
)
from recon.selectors.topics import topics_visible

SEARCH_ROWS = 50


# A partition/offset search reads the publish ledger of one topic over this many days back
# (by its topic + publish-time index): offsets are not indexed, recent messages are what is asked.
SEARCH_OFFSET_DAYS = 7


_PLACE = re.compile(r"^\s*(\d+)\s*[/@:]\s*(\d+)\s*$")


@dataclass
class MessageSearch:
    query: str
    kind: str  # uuid | load | key | place | empty
    exact: uuid_lib.UUID | None = None  # one exact hit: the load (kind "load") or the message (kind "uuid")
    published: list[PublishedMessage] = field(default_factory=list)
    consumed_only: list[ConsumedMessage] = field(default_factory=list)  # orphans: consumed, never published
    note: str = ""


def message_search(*, user, query: str, topic: Topic | None = None, now: dt.datetime | None = None) -> MessageSearch:
    """Find messages by UUID, load id, record key or client id, or partition/offset ("3/1200")."""
    text = (query or "").strip()
    visible = topics_visible(user)
    if topic is not None and not visible.filter(pk=topic.pk).exists():
        topic = None
    topics = [topic] if topic else list(visible)
    if not text:
        return MessageSearch(query=text, kind="empty")
    try:
        wanted = uuid_lib.UUID(text)
    except ValueError:
        wanted = None
    if wanted is not None:
        load = Load.objects.filter(pk=wanted, topic__in=topics).first()
        if load is not None:
            return MessageSearch(query=text, kind="load", exact=load.pk)
        return MessageSearch(query=text, kind="uuid", exact=wanted)
    place = _PLACE.match(text)
    if place:
        if topic is None:
            return MessageSearch(
                query=text, kind="place", note="Choose the topic: a partition and offset name a message in one topic."
            )
        partition, offset = int(place.group(1)), int(place.group(2))
        since = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=SEARCH_OFFSET_DAYS)
        found = list(
            PublishedMessage.objects.filter(
                topic=topic, published_at__gte=since, partition=partition, offset=offset
            ).order_by("-published_at")[:SEARCH_ROWS]
        )
        return MessageSearch(
            query=text,
            kind="place",
            published=found,
            note=f"Searched the messages {topic.name} published in the last {SEARCH_OFFSET_DAYS} days.",
        )
    key = f"client:{text}" if text.isdigit() else text
    # The consume ledger is indexed by key; its UUIDs then find the publish rows (indexed by uuid).
    deliveries = list(
        ConsumedMessage.objects.filter(key=key, topic__in=topics).order_by("-published_at")[: SEARCH_ROWS * 2]
    )
    uuids = {d.uuid for d in deliveries if d.uuid}
    published = list(
        PublishedMessage.objects.filter(uuid__in=uuids, topic__in=topics).order_by("-published_at")[:SEARCH_ROWS]
    )
    seen = {p.uuid for p in published}
    orphans = [d for d in deliveries if d.uuid not in seen][:SEARCH_ROWS]
    note = (
        "" if published or orphans else f"No message with key {key} was consumed (the search reads the consume ledger)."
    )
    return MessageSearch(query=text, kind="key", published=published, consumed_only=orphans, note=note)
