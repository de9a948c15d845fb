"""Reads of runs: the runs of visible topics, a transport run's report."""

import datetime as dt
from collections import defaultdict

from django.conf import settings
from django.db.models import Count, QuerySet, Sum

from recon import access
from recon.engine import ENGINE_CATEGORIES
from recon.models import CacheScrub, Finding, ReconRun, Topic, Window


def runs_visible(topics: QuerySet[Topic]) -> QuerySet[ReconRun]:
    return ReconRun.objects.filter(topic__in=topics).select_related("topic", "requested_by")


def run_report(*, topic: Topic, start: dt.datetime, end: dt.datetime, window_ids: list[int], now: dt.datetime) -> dict:
    """A run's report: window states, totals, and the UUIDs of each category still standing."""
    windows = Window.objects.filter(pk__in=window_ids)
    states = dict(windows.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n"))
    totals = windows.aggregate(published=Sum("published_count"), consumed=Sum("consumed_count"))
    summaries = list(windows.values_list("summary", flat=True))
    cap = settings.RECON_REPORT_MAX_UUIDS
    findings: dict[str, dict] = {}
    classification: dict[str, int] = defaultdict(int)
    standing = (
        Finding.objects.filter(window_id__in=window_ids, category__in=ENGINE_CATEGORIES)
        .exclude(status=Finding.Status.RESOLVED)
        .order_by("category", "uuid")
        .values_list("category", "uuid", "classification")
    )
    for category, message_uuid, verdict in standing.iterator(chunk_size=5000):
        entry = findings.setdefault(category, {"count": 0, "uuids": [], "truncated": False})
        entry["count"] += 1
        classification[verdict] += 1
        if message_uuid is not None:
            if len(entry["uuids"]) < cap:
                entry["uuids"].append(str(message_uuid))
            else:
                entry["truncated"] = True
    n_windows = len(window_ids)
    return {
        "topic": topic.name,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "as_of": now.isoformat(),
        "windows": {
            "total": n_windows,
            "matched": states.get(Window.Status.MATCHED, 0),
            "discrepant": states.get(Window.Status.DISCREPANT, 0),
            "open": states.get(Window.Status.OPEN, 0),
        },
        "published": totals["published"] or 0,
        "consumed": totals["consumed"] or 0,
        "pending": sum(s.get("pending", 0) for s in summaries),
        "all_matched": states.get(Window.Status.MATCHED, 0) == n_windows and not findings,
        "findings": findings,
        "classification": dict(classification),
        "truncated": any(s.get("truncated") for s in summaries),
        "methods": {
            "counts": topic.method_counts,
            "uuid": topic.method_uuid,
            "hash": topic.method_hash,
            "audit": topic.method_audit,
        },
    }


def keys_reproved(topic: Topic, *, at: dt.datetime) -> dict:
    """Whether every key of the topic was compared with its reference (the system of record, or
    its last load from another source) within CACHE_REPROVED_HOURS before `at`: by the last
    whole-topic cache leg that started by then and finished (recon.services.cache_check). The
    run's start is the proof's time: a key it read later was proved later, never earlier.

    A leg by digests compares what the cache's writer counted: it proves the cache only
    together with a scrub pass (recon.models.CacheScrub) that read every record within the
    period, so both must be recent; the older start of the two is the proof's time."""
    hours = settings.CACHE_REPROVED_HOURS
    since = at - dt.timedelta(hours=hours)
    run = (
        ReconRun.objects.filter(
            topic=topic,
            kind=ReconRun.Kind.CACHE,
            status=ReconRun.Status.DONE,
            started_at__lte=at,
            report__whole_topic=True,
        )
        .order_by("-started_at")
        .first()
    )
    if run is None:
        return {"within_hours": hours, "met": False, "run": None}
    report = run.report
    proved_at: dt.datetime | None = run.started_at
    out = {
        "within_hours": hours,
        "run": str(run.pk),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "method": report.get("method", "keys"),
        "reference": report.get("reference", ""),
        "checked": report.get("checked", 0),
        "all_matched": bool(report.get("all_matched")),
        "problems": sum(p.get("count", 0) for p in report.get("problems", {}).values()),
    }
    if out["method"] == "digest":
        scrub = (
            CacheScrub.objects.filter(finished_at__isnull=False, finished_at__lte=at).order_by("-started_at").first()
        )
        out["scrub_started_at"] = scrub.started_at if scrub else None
        out["scrub_finished_at"] = scrub.finished_at if scrub else None
        proved_at = min(run.started_at, scrub.started_at) if scrub else None
    out["met"] = proved_at is not None and proved_at >= since
    return out


def runs_of_load(load, *, limit: int = 20) -> list[ReconRun]:
    """A load's runs (its verification, and any asked for), newest first."""
    return list(ReconRun.objects.filter(load=load).order_by("-started_at")[:limit])


def run_visible(user, *, pk) -> ReconRun:
    """A run by id, 404 when it is unknown or on a topic the user may not see."""
    run = ReconRun.objects.select_related("topic", "requested_by", "load", "replay").filter(pk=pk).first()
    access.topic_for_view(user, run.topic if run else None)
    assert run is not None  # topic_for_view raised otherwise
    return run
