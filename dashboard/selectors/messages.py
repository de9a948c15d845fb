"""The message search page's read: one box that finds messages by UUID, load id, record key or
client id, or partition/offset; one exact hit is a page to go to."""

import datetime as dt
import logging
import re
import uuid as uuid_lib
from dataclasses import dataclass, field

from core.cache_records import cache_records_get
from core.clients import redis_client
from recon.models import (
    ConsumedMessage,
    Load,
    PublishedMessage,
    Topic,
)
from recon.selectors.messages import message_fate
from recon.selectors.topics import topics_visible

logger = logging.getLogger(__name__)

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
    # A key search's published rows also carry `fate` (lost, pending, stored, deleted, dead, invalid)
    # and `cached` (Redis holds this very message for the key), for the page.


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
    return _key_search(text=text, key=key, topics=topics)


def _key_search(*, text: str, key: str, topics: list[Topic]) -> MessageSearch:
    """Every message of a key: published (pub_topic_key_version), consumed or dead-lettered (con_key_hash),
    and what Redis holds for it now. A message published and never delivered is "lost" once its
    window is judged ("pending" before): the publish ledger is read first, so the message ops
    most need is never left out."""
    published = list(
        PublishedMessage.objects.filter(topic__in=topics, key=key)
        .select_related("topic")
        .order_by("-published_at")[:SEARCH_ROWS]
    )
    deliveries = list(
        ConsumedMessage.objects.filter(key=key, topic__in=topics).order_by("-published_at")[: SEARCH_ROWS * 2]
    )
    by_uuid: dict[uuid_lib.UUID, list[ConsumedMessage]] = {}
    for d in deliveries:
        if d.uuid:
            by_uuid.setdefault(d.uuid, []).append(d)
    seen = {p.uuid for p in published}
    # A delivery whose publish row is older than the newest SEARCH_ROWS is still a published message.
    older = {p.uuid: p for p in PublishedMessage.objects.filter(uuid__in=set(by_uuid) - seen, topic__in=topics)}
    orphans = [d for d in deliveries if d.uuid not in seen and d.uuid not in older][:SEARCH_ROWS]
    now = dt.datetime.now(dt.UTC)
    fates = {
        p.uuid: message_fate(
            p.topic,
            p.published_at,
            [d.outcome for d in sorted(by_uuid.get(p.uuid, []), key=lambda d: d.consumed_at)],
            now=now,
        )
        for p in published
    }
    cached = _cached_uuid(key) if published or orphans else {}
    for p in published:
        p.fate = fates[p.uuid]  # type: ignore[attr-defined]
        p.cached = cached.get(key) == str(p.uuid)  # type: ignore[attr-defined]
    note = "" if published or orphans else f"No message with key {key} was published or consumed."
    return MessageSearch(
        query=text,
        kind="key",
        published=published,
        consumed_only=orphans,
        note=note,
    )


def _cached_uuid(key: str) -> dict[str, str]:
    """{key: uuid of the message Redis holds for it}; empty when Redis holds none or does not answer."""
    try:
        held = cache_records_get(redis_client(), [key]).get(key)
    except Exception:  # Redis down: the search still answers from the ledgers
        logger.warning("cache entry of %s not read", key, exc_info=True)
        return {}
    return {key: held.uuid} if held is not None else {}
