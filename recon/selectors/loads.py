"""Reads of loads: the lists and one load within what the user may see, and a load's client ids
summarised (asked for, published, skipped)."""

import datetime as dt
import uuid as uuid_lib
from dataclasses import dataclass

from django.db.models import QuerySet

from core.records import client_id_of
from recon import access
from recon.models import (
    Load,
    PublishedMessage,
    Topic,
)
from recon.selectors.lists import in_range


def loads_filtered(
    *,
    user,
    topic: Topic | None = None,
    status: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[Load]:
    qs = Load.objects.filter(topic__in=access.topics_visible(user)).select_related("topic", "requested_by")
    if topic is not None:
        qs = qs.filter(topic=topic)
    if status:
        qs = qs.filter(status=status)
    qs = in_range(qs, "created_at", since, until)
    return qs


def load_visible(user, *, pk: uuid_lib.UUID) -> Load:
    load = Load.objects.select_related("topic").filter(pk=pk).first()
    access.topic_for_view(user, load.topic if load else None)
    assert load is not None
    return load


@dataclass
class LoadIds:
    requested: int  # 0: every client of the source
    shown: list[int]
    published: int
    skipped: list[int]  # asked for, not published: not in the source (or refused, see exceptions)
    skipped_count: int

    @property
    def requested_more(self) -> int:
        return self.requested - len(self.shown)

    @property
    def skipped_more(self) -> int:
        return self.skipped_count - len(self.skipped)


LOAD_IDS_SHOWN = 20


def load_ids(load: Load) -> LoadIds:
    """The load's client ids summarised: how many were asked for, and which were skipped and why."""
    requested = sorted({int(i) for i in load.client_ids or []})
    published_keys = PublishedMessage.objects.filter(load=load).values_list("key", flat=True)
    published = {cid for cid in map(client_id_of, published_keys) if cid is not None}
    skipped = [i for i in requested if i not in published] if load.status in ("done", "failed") else []
    return LoadIds(
        requested=len(requested),
        shown=requested[:LOAD_IDS_SHOWN],
        published=len(published),
        skipped=skipped[:LOAD_IDS_SHOWN],
        skipped_count=len(skipped),
    )
