"""Reads behind the dashboard pages and the API, always within what the user may see.

Every function takes the user and narrows to recon.access.topics_visible first.
Nothing here counts ledger rows: charts read the windows table (one row per topic
per window, kept up to date by the ledger writers), lists page by keyset on an
indexed time column, and a message is found through the ledgers' uuid indexes.
"""

import datetime as dt
import math
import re
import uuid as uuid_lib
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, DateTimeField, F, Func, Q, QuerySet, Sum, Value
from django.urls import reverse

from core.cache_records import cache_records_get, tombstones_get
from core.clients import redis_client
from core.hashing import content_hash
from core.masking import mask_sensitive
from core.records import client_id_of, record_decode, record_mask
from dashboard.lag import Lag, consumer_lag
from recon import access, audit
from recon.models import (
    ConsumedMessage,
    Finding,
    Load,
    OperatorAction,
    PublishedMessage,
    RebalanceEvent,
    ReplayItem,
    Topic,
    Window,
)

MAX_CHART_POINTS = 300  # more windows than this in a range are added up into wider buckets
REBALANCE_MARGIN = dt.timedelta(minutes=15)


# --- topics -------------------------------------------------------------------------------


def _in_range(qs: QuerySet, field: str, since: dt.datetime | None, until: dt.datetime | None) -> QuerySet:
    """Rows with since <= field < until; an open end is not filtered."""
    if since is not None:
        qs = qs.filter(**{f"{field}__gte": since})
    if until is not None:
        qs = qs.filter(**{f"{field}__lt": until})
    return qs


def topics_visible(user) -> QuerySet[Topic]:
    return access.topics_visible(user).order_by("name")


def topic_visible(user, *, name: str) -> Topic:
    """A topic by name, 404 for names the user may not see (or that do not exist)."""
    return access.topic_for_view(user, Topic.objects.filter(name=name).first())


# --- overview -----------------------------------------------------------------------------


@dataclass
class SeriesPoint:
    start: dt.datetime
    published: int
    consumed: int


@dataclass
class TopicOverview:
    topic: Topic
    series: list[SeriesPoint]
    bucket_seconds: int
    published: int
    consumed: int
    windows_by_status: dict[str, int]
    findings_by_category: dict[str, int]
    open_findings: int
    throughput_avg: float  # published messages per second over the range
    throughput_peak: float  # the busiest second's published messages (from the ledger)
    lag: Lag | None
    can_operate: bool
    findings_by_severity: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> severity -> n
    peak_scope: str = "range"  # "range": every second of it; "busiest windows": only theirs (a huge range)

    @property
    def gap(self) -> int:
        return self.published - self.consumed


def overview(*, user, start: dt.datetime, end: dt.datetime, with_lag: bool = True) -> list[TopicOverview]:
    topics = list(topics_visible(user))
    findings = _findings_by_category(topics, start, end)
    severities = _findings_by_severity(topics, start, end)
    open_counts = dict(
        Finding.objects.filter(topic__in=topics, status=Finding.Status.OPEN)
        .values_list("topic_id")
        .annotate(n=Count("id"))
        .values_list("topic_id", "n")
    )
    result = []
    for topic in topics:
        series, bucket_seconds, by_status = _window_series(topic, start, end)
        published = sum(p.published for p in series)
        consumed = sum(p.consumed for p in series)
        span = max((end - start).total_seconds(), 1.0)
        peak, peak_scope = _peak_per_second(topic, start, end, published)
        result.append(
            TopicOverview(
                topic=topic,
                series=series,
                bucket_seconds=bucket_seconds,
                published=published,
                consumed=consumed,
                windows_by_status=by_status,
                findings_by_category=findings.get(topic.pk, {}),
                open_findings=open_counts.get(topic.pk, 0),
                throughput_avg=published / span,
                throughput_peak=peak,
                lag=consumer_lag(topic.name, topic.consumer_group) if with_lag else None,
                can_operate=access.can_operate(user, topic),
                findings_by_severity=severities.get(topic.pk, {}),
                peak_scope=peak_scope,
            )
        )
    return result


# Above this many messages in the range, the busiest second is looked for only in the
# busiest windows (a bounded read of the ledger), and the page says so.
PEAK_SCAN_MAX = 200_000
PEAK_WINDOWS = 5
_PEAK_SQL = """
SELECT coalesce(max(n), 0) FROM (
    SELECT count(*) AS n FROM recon_publishedmessage
    WHERE topic_id = %s AND published_at >= %s AND published_at < %s
    GROUP BY date_trunc('second', published_at)
) s
"""


def _peak_per_second(topic: Topic, start: dt.datetime, end: dt.datetime, published: int) -> tuple[int, str]:
    """The true peak rate: the most messages published in one second, counted in the ledger."""
    if not published:
        return 0, "range"
    if published <= PEAK_SCAN_MAX:
        spans = [(start, end)]
        scope = "range"
    else:
        busiest = Window.objects.filter(topic=topic, start__gte=start, start__lt=end).order_by("-published_count")
        spans = list(busiest.values_list("start", "end")[:PEAK_WINDOWS])
        scope = "busiest windows"
    peak = 0
    with connection.cursor() as cursor:
        for span_start, span_end in spans:
            cursor.execute(_PEAK_SQL, [topic.pk, span_start, span_end])
            peak = max(peak, int(cursor.fetchone()[0]))
    return peak, scope


def _findings_by_severity(
    topics: list[Topic], start: dt.datetime, end: dt.datetime
) -> dict[int, dict[str, dict[str, int]]]:
    rows = (
        Finding.objects.filter(topic__in=topics, created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("topic_id", "category", "severity")
        .annotate(n=Count("id"))
    )
    out: dict[int, dict[str, dict[str, int]]] = {}
    for topic_id, category, severity, n in rows:
        out.setdefault(topic_id, {}).setdefault(category, {})[severity] = n
    return out


def _window_series(topic: Topic, start: dt.datetime, end: dt.datetime) -> tuple[list[SeriesPoint], int, dict]:
    windows = Window.objects.filter(topic=topic, start__gte=start, start__lt=end)
    by_status = dict(windows.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    span = (end - start).total_seconds()
    per_bucket = max(1, math.ceil(span / topic.window_seconds / MAX_CHART_POINTS))
    bucket_seconds = per_bucket * topic.window_seconds
    if per_bucket == 1:
        rows = windows.order_by("start").values_list("start", "published_count", "consumed_count")
    else:
        # date_bin (PostgreSQL 14+) folds windows into wider buckets inside the database.
        bucket = Func(
            Value(dt.timedelta(seconds=bucket_seconds)),
            F("start"),
            Value(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
            function="date_bin",
            output_field=DateTimeField(),
        )
        rows = (
            windows.annotate(bucket=bucket)
            .values("bucket")
            .annotate(p=Sum("published_count"), c=Sum("consumed_count"))
            .order_by("bucket")
            .values_list("bucket", "p", "c")
        )
    series = [SeriesPoint(start=s, published=int(p), consumed=int(c)) for s, p, c in rows]
    return series, bucket_seconds, by_status


def _findings_by_category(topics: list[Topic], start: dt.datetime, end: dt.datetime) -> dict[int, dict[str, int]]:
    rows = (
        Finding.objects.filter(topic__in=topics, created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("topic_id", "category")
        .annotate(n=Count("id"))
    )
    out: dict[int, dict[str, int]] = {}
    for topic_id, category, n in rows:
        out.setdefault(topic_id, {})[category] = n
    return out


# --- lists ------------------------------------------------------------------------------


def findings_filtered(
    *,
    user,
    topic: Topic | None = None,
    category: str = "",
    severity: str = "",
    status: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    uuid: uuid_lib.UUID | None = None,
    key: str = "",
    window: Window | None = None,
) -> QuerySet[Finding]:
    qs = Finding.objects.filter(topic__in=access.topics_visible(user)).select_related(
        "topic", "window", "acknowledged_by"
    )
    if topic is not None:
        qs = qs.filter(topic=topic)
    if category:
        qs = qs.filter(category=category)
    if severity:
        qs = qs.filter(severity=severity)
    if status:
        qs = qs.filter(status=status)
    qs = _in_range(qs, "created_at", since, until)
    if uuid is not None:
        qs = qs.filter(uuid=uuid)
    if key:
        qs = qs.filter(key=key)
    if window is not None:
        qs = qs.filter(window=window)
    return qs


def finding_visible(user, *, pk: int) -> Finding:
    finding = Finding.objects.select_related("topic").filter(pk=pk).first()
    access.topic_for_view(user, finding.topic if finding else None)
    assert finding is not None  # topic_for_view raised otherwise
    return finding


def finding_detail_for(user, finding: Finding) -> dict:
    """A finding's detail as this user may see it (card and account numbers masked)."""
    if access.can_view_payload(user, finding.topic):
        return finding.detail
    return mask_sensitive(finding.detail)


def windows_filtered(
    *,
    user,
    topic: Topic | None = None,
    status: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[Window]:
    qs = Window.objects.filter(topic__in=access.topics_visible(user)).select_related("topic")
    if topic is not None:
        qs = qs.filter(topic=topic)
    if status:
        qs = qs.filter(status=status)
    qs = _in_range(qs, "start", since, until)
    return qs


def window_visible(user, *, pk: int) -> Window:
    window = Window.objects.select_related("topic").filter(pk=pk).first()
    access.topic_for_view(user, window.topic if window else None)
    assert window is not None
    return window


def rebalances_filtered(
    *,
    user,
    group: str = "",
    kind: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[RebalanceEvent]:
    """Rebalances of the consumer groups of the topics the user may see."""
    groups = access.topics_visible(user).values_list("consumer_group", flat=True)
    qs = RebalanceEvent.objects.filter(group__in=groups)
    if group:
        qs = qs.filter(group=group)
    if kind:
        qs = qs.filter(kind=kind)
    qs = _in_range(qs, "at", since, until)
    return qs


def actions_filtered(
    *,
    user,
    topic: Topic | None = None,
    action: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[OperatorAction]:
    """The operator audit trail. Actions on no topic (user administration) are for admins."""
    visible = Q(topic__in=access.topics_visible(user))
    if user.is_superuser:
        visible |= Q(topic__isnull=True)
    qs = OperatorAction.objects.filter(visible).select_related("user", "topic")
    if topic is not None:
        qs = qs.filter(topic=topic)
    if action:
        qs = qs.filter(action=action)
    qs = _in_range(qs, "at", since, until)
    return qs


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
    qs = _in_range(qs, "created_at", since, until)
    return qs


def load_visible(user, *, pk: uuid_lib.UUID) -> Load:
    load = Load.objects.select_related("topic").filter(pk=pk).first()
    access.topic_for_view(user, load.topic if load else None)
    assert load is not None
    return load


# --- one message --------------------------------------------------------------------------


@dataclass
class CacheState:
    record_key: str
    present: bool = False
    uuid: str = ""  # the message uuid the cache entry came from
    holds_this_message: bool = False
    hash_matches: bool | None = None  # cached bytes hash == published hash
    schema_version: str = ""
    created_ms: str = ""
    source_version: str = ""  # the version the cache holds for the key ("" or "0": unordered)
    topic: str = ""  # the topic that wrote the cached record
    tombstone: str = ""  # the version of the key's last delete, while the cache remembers it
    error: str = ""


@dataclass
class TimelineEvent:
    at: dt.datetime
    kind: str  # published | consumed | finding | action
    summary: str
    ok: bool = True


@dataclass
class MessageTimeline:
    uuid: uuid_lib.UUID
    topic: Topic
    published: PublishedMessage | None
    deliveries: list[ConsumedMessage]
    findings: list[Finding]
    actions: list[OperatorAction]
    rebalances: list[RebalanceEvent]
    cache: CacheState | None
    headers: dict[str, str]
    load: Load | None
    events: list[TimelineEvent] = field(default_factory=list)
    can_operate: bool = False
    can_view_payload: bool = False
    finding_details: dict[int, Any] = field(default_factory=dict)
    audit_payload: Any = None  # recon's AuditPayload, decoded and masked, when the topic keeps payloads
    replays: list[ReplayItem] = field(default_factory=list)  # replays of this message, and the one it came from


def message_timeline(*, user, uuid: uuid_lib.UUID) -> MessageTimeline:
    """Everything known about one message. 404 when it is unknown or on a topic the user may not see."""
    published = PublishedMessage.objects.filter(uuid=uuid).select_related("topic").order_by("published_at").first()
    deliveries = list(ConsumedMessage.objects.filter(uuid=uuid).order_by("consumed_at", "id"))
    findings = list(Finding.objects.filter(uuid=uuid).order_by("created_at"))
    # An orphan (consumed, never published) or a finding alone still has a topic.
    source: PublishedMessage | ConsumedMessage | Finding | None = (
        published or next(iter(deliveries), None) or next(iter(findings), None)
    )
    topic = access.topic_for_view(user, Topic.objects.filter(pk=source.topic_id).first() if source else None)
    actions = list(OperatorAction.objects.filter(target=f"message:{uuid}").select_related("user").order_by("at"))

    can_payload = access.can_view_payload(user, topic)
    load = Load.objects.filter(pk=published.load_id).first() if published and published.load_id else None
    timeline = MessageTimeline(
        uuid=uuid,
        topic=topic,
        published=published,
        deliveries=deliveries,
        findings=findings,
        actions=actions,
        rebalances=_rebalances_around(topic, published, deliveries),
        cache=_cache_state(topic, published, uuid) if published else None,
        headers=_ledger_headers(topic, published, load, can_payload) if published else {},
        load=load,
        can_operate=access.can_operate(user, topic),
        can_view_payload=can_payload,
        finding_details={f.pk: f.detail if can_payload else mask_sensitive(f.detail) for f in findings},
        audit_payload=_audit_payload(topic, uuid) if can_payload and topic.method_audit else None,
    )
    timeline.replays = list(
        ReplayItem.objects.filter(Q(original_uuid=uuid) | Q(uuid=uuid))
        .select_related("replay", "replay__requested_by")
        .order_by("at")[:50]
    )
    timeline.events = _events(timeline)
    return timeline


def _ledger_headers(topic: Topic, published: PublishedMessage, load: Load | None, can_payload: bool) -> dict[str, str]:
    """The Kafka headers the ledger can vouch for (the shared-record contract's names)."""
    headers = {
        "uuid": str(published.uuid),
        "event": published.event_type,
        "created": str(int(published.published_at.timestamp() * 1000)),
        "hash": bytes(published.content_hash).hex(),
        "hash-alg": topic.hash_algorithm,
    }
    if load is not None:
        headers["source"] = load.source
        # The retrieval key reads the load's records back: shown only with payload permission.
        headers["load"] = load.retrieval_key if can_payload else "•" * 8
    if published.replay_of:
        headers["replay-of"] = str(published.replay_of)
    return headers


def _cache_state(topic: Topic, published: PublishedMessage, uuid: uuid_lib.UUID) -> CacheState:
    state = CacheState(record_key=published.key)
    try:
        client = redis_client()
        held = cache_records_get(client, [published.key]).get(published.key)
        deleted = tombstones_get(client, [published.key]).get(published.key)
    except Exception as exc:  # Redis down: the page says so instead of failing
        state.error = f"{type(exc).__name__}: {exc}"
        return state
    state.tombstone = "" if deleted is None else str(deleted)
    if held is None:
        return state
    state.source_version = str(held.version)
    state.topic = held.topic
    state.present = True
    state.uuid = held.uuid
    state.holds_this_message = state.uuid == str(uuid)
    state.schema_version = str(held.schema_version)
    state.created_ms = str(held.created_ms)
    if state.holds_this_message:
        state.hash_matches = content_hash(held.value, topic.hash_algorithm) == bytes(published.content_hash)
    return state


def _audit_payload(topic: Topic, uuid: uuid_lib.UUID) -> dict | None:
    """The kept payloads of one message, decoded with card and account numbers masked.

    Nothing is decrypted for display: the feed's record_mask shows the last four
    digits it keeps in the clear, and mask_sensitive catches anything else.
    """
    rows = audit.payloads_of(topic=topic, uuids=[uuid]).get(uuid, [])
    if not rows:
        return None
    out: dict[str, Any] = {"published": [], "consumed": [], "hashes": []}
    for row in rows:
        try:
            value = audit.unseal(row)
            out["hashes"].append(audit.payload_evidence(row, value, topic.hash_algorithm))
            record = record_mask(record_decode(value, schema_version=row.schema_version or 1, decrypt=False))
        except Exception as exc:  # a payload that no longer decodes is shown as such, not as a page error
            record = {"error": f"{type(exc).__name__}: {exc}"}
        out[row.side].append(mask_sensitive(record))
    diff = audit.message_diff(topic=topic, message_uuid=uuid)
    out["changed_fields"] = [d["path"] for d in diff.get("fields") or []]
    return out


def _rebalances_around(
    topic: Topic, published: PublishedMessage | None, deliveries: list[ConsumedMessage]
) -> list[RebalanceEvent]:
    moments = [d.consumed_at for d in deliveries] + ([published.published_at] if published else [])
    if not moments:
        return []
    groups = {topic.consumer_group} | {d.group for d in deliveries}
    return list(
        RebalanceEvent.objects.filter(
            group__in=groups, at__gte=min(moments) - REBALANCE_MARGIN, at__lte=max(moments) + REBALANCE_MARGIN
        ).order_by("at")[:50]
    )


def _events(t: MessageTimeline) -> list[TimelineEvent]:
    events = []
    if t.published:
        p = t.published
        events.append(
            TimelineEvent(p.published_at, "published", f"{p.event_type} to {t.topic.name}/{p.partition}@{p.offset}")
        )
    for number, d in enumerate(t.deliveries, 1):
        same = bytes(d.content_hash) == bytes(t.published.content_hash) if t.published else None
        note = "" if same is None else (", hash matches" if same else ", HASH DIFFERS")
        summary = f"delivery {number} to {d.group} ({d.get_outcome_display()}), {d.partition}@{d.offset}{note}"
        events.append(TimelineEvent(d.consumed_at, "consumed", summary, ok=same is not False))
    for f in t.findings:
        events.append(TimelineEvent(f.created_at, "finding", f"{f.get_category_display()} ({f.status})", ok=False))
    for a in t.actions:
        who = a.user.username if a.user else "system"
        events.append(TimelineEvent(a.at, "action", f"{a.action} by {who}: {a.outcome}"))
    for item in t.replays:
        replay = item.replay
        verb = "reprocess" if replay.way == replay.Way.DEAD_LETTER else f"replay ({replay.way})"
        who = replay.requested_by.username if replay.requested_by else "system"
        if item.original_uuid == t.uuid and item.uuid and item.uuid != t.uuid:
            summary = f"{verb} {replay.pk} by {who}: {item.get_outcome_display()} as {item.uuid}"
        elif item.original_uuid == t.uuid:
            summary = f"{verb} {replay.pk} by {who}: {item.get_outcome_display()}"
        else:
            summary = f"published by {verb} {replay.pk} in place of {item.original_uuid or 'an unknown message'}"
        ok = item.outcome not in (item.Outcome.DEAD, item.Outcome.FAILED)
        events.append(TimelineEvent(item.at, "replay", summary, ok=ok))
    for f in t.findings:
        if f.status == Finding.Status.RESOLVED and f.detail.get("resolved_at"):
            try:
                at = dt.datetime.fromisoformat(f.detail["resolved_at"])
            except ValueError:
                continue
            at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
            how = f"fixed by replay {f.detail['replay']}" if f.detail.get("replay") else "no longer found"
            if f.detail.get("verified_by_run"):
                how += f", verified by run {f.detail['verified_by_run']}"
            events.append(TimelineEvent(at, "resolved", f"{f.get_category_display()}: {how}"))
    return sorted(events, key=lambda e: e.at)


# --- message search ------------------------------------------------------------------------

SEARCH_ROWS = 50
# A partition/offset search reads the publish ledger of one topic over this many days back
# (by its topic + publish-time index): offsets are not indexed, recent messages are what is asked.
SEARCH_OFFSET_DAYS = 7
_PLACE = re.compile(r"^\s*(\d+)\s*[/@:]\s*(\d+)\s*$")


@dataclass
class MessageSearch:
    query: str
    kind: str  # uuid | load | key | place | empty
    redirect: str = ""  # one exact hit: go there
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
            return MessageSearch(query=text, kind="load", redirect=reverse("dashboard:load", args=[load.pk]))
        return MessageSearch(query=text, kind="uuid", redirect=reverse("dashboard:message", args=[wanted]))
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
