"""Reads of findings: their problems (recon.problems), their ageing against the SLA, the ones over it, a person's."""

import datetime as dt
import uuid as uuid_lib

from django.conf import settings
from django.db.models import Case, CharField, Count, F, IntegerField, Max, Min, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Concat

from core.masking import mask_sensitive
from recon import access
from recon.models import (
    Finding,
    ReasonCode,
    Topic,
    Window,
)
from recon.selectors.lists import in_range

# A finding's problem; one raised without a key (before problems, or written directly) is its own.
PROBLEM_KEY = Case(
    When(problem="", then=Concat(Value("one:"), Cast("id", CharField()))),
    default=F("problem"),
    output_field=CharField(),
)

AGEING_BUCKETS = (
    ("lt_1h", "< 1 h", dt.timedelta(0), dt.timedelta(hours=1)),
    ("h1_24", "1-24 h", dt.timedelta(hours=1), dt.timedelta(hours=24)),
    ("d1_7", "1-7 days", dt.timedelta(hours=24), dt.timedelta(days=7)),
    ("gt_7d", "> 7 days", dt.timedelta(days=7), None),
)


def findings_ageing(*, topics: QuerySet[Topic], now: dt.datetime) -> list[dict]:
    """Unresolved problems per topic and severity in the four age buckets (a problem in the bucket of
    each member's age), with the findings they hold and the oldest of each (a Finding).

    One grouped query (served by finding_topic_status_time) and one DISTINCT ON for the oldest."""
    counts = {  # problems, not findings: a reload of 5,000 keys is one line of work
        name: Count(
            PROBLEM_KEY,
            distinct=True,
            filter=Q(created_at__lte=now - low) & (Q(created_at__gt=now - high) if high else Q()),
        )
        for name, _, low, high in AGEING_BUCKETS
    }
    rows = (
        Finding.objects.filter(topic__in=topics, status__in=Finding.UNRESOLVED)
        .values("topic_id", "topic__name", "severity")
        .annotate(total=Count(PROBLEM_KEY, distinct=True), findings=Count("id"), oldest_at=Min("created_at"), **counts)
        .order_by("topic__name", "severity")
    )
    oldest = {
        (f.topic_id, f.severity): f
        for f in Finding.objects.filter(topic__in=topics, status__in=Finding.UNRESOLVED)
        .order_by("topic_id", "severity", "created_at", "id")
        .distinct("topic_id", "severity")
    }
    sla = settings.BREAK_SLA_HOURS
    out = []
    for values in rows:
        row: dict = dict(values)  # the bucket names are keys mypy cannot know
        limit = dt.timedelta(hours=sla.get(row["severity"], 0))
        out.append(
            {
                **row,
                "buckets": [(label, row[name]) for name, label, _, _ in AGEING_BUCKETS],
                "sla_hours": sla.get(row["severity"]),
                "over_sla": bool(limit) and now - row["oldest_at"] > limit,
                "oldest": oldest.get((row["topic_id"], row["severity"])),
            }
        )
    return out


def findings_over_sla(
    *,
    now: dt.datetime,
    topic_id: int | None = None,
    severities: list[str] | None = None,
    categories: list[str] | None = None,
) -> dict[int, int]:
    """{topic_id: unresolved findings older than the SLA of their severity} (BREAK_SLA_HOURS)."""
    findings = findings_past_sla(now=now, topic_id=topic_id, severities=severities, categories=categories)
    return dict(findings.values("topic_id").annotate(n=Count("id")).values_list("topic_id", "n"))


def findings_past_sla(
    *,
    now: dt.datetime,
    topic_id: int | None = None,
    severities: list[str] | None = None,
    categories: list[str] | None = None,
) -> QuerySet[Finding]:
    """The unresolved findings older than the SLA of their severity (BREAK_SLA_HOURS)."""
    late = Q()
    for severity, hours in settings.BREAK_SLA_HOURS.items():
        if severities is None or severity in severities:
            late |= Q(severity=severity, created_at__lt=now - dt.timedelta(hours=hours))
    if not late:
        return Finding.objects.none()
    findings = Finding.objects.filter(late, status__in=Finding.UNRESOLVED)
    if topic_id:
        findings = findings.filter(topic_id=topic_id)
    if categories:
        findings = findings.filter(category__in=categories)
    return findings


def findings_assigned(*, user, topics: QuerySet[Topic]) -> QuerySet[Finding]:
    """My findings: assigned to me or to a team of mine, not yet resolved or accepted."""
    mine = Q(assigned_user=user) | Q(assigned_group__in=user.groups.all())
    return (
        Finding.objects.filter(mine, topic__in=topics, status__in=(*Finding.UNRESOLVED, Finding.Status.FIXED))
        .select_related("topic", "assigned_user", "assigned_group")
        .order_by("created_at", "id")
    )


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
    problem: str = "",
    info: bool = True,
) -> QuerySet[Finding]:
    """Findings the user may see, filtered; `info` False hides info findings unless the
    severity asked for is info or one problem's members are asked for."""
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
    qs = in_range(qs, "created_at", since, until)
    if uuid is not None:
        qs = qs.filter(uuid=uuid)
    if key:
        qs = qs.filter(key=key)
    if window is not None:
        qs = qs.filter(window=window)
    if problem:
        qs = qs.filter(problem=problem)
    elif not info and not severity:
        qs = findings_without_info(qs)
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


# Worst first: the order of the problems list and the evidence pack.
SEVERITY_RANK = Case(
    When(severity=Finding.Severity.CRITICAL, then=Value(3)),
    When(severity=Finding.Severity.WARNING, then=Value(2)),
    When(severity=Finding.Severity.INFO, then=Value(1)),
    default=Value(0),
    output_field=IntegerField(),
)
RANKED = {3: Finding.Severity.CRITICAL, 2: Finding.Severity.WARNING, 1: Finding.Severity.INFO}


def findings_without_info(qs: QuerySet[Finding]) -> QuerySet[Finding]:
    """The default of every list: info findings hidden unless asked for."""
    return qs.exclude(severity=Finding.Severity.INFO)


def problems_of(qs: QuerySet[Finding], *, limit: int | None = None) -> list[dict]:
    """One row per (topic, problem) of `qs`, worst severity first, then oldest: its category,
    worst severity, member count, unresolved members, first and last seen, and its first
    member (`first`, a Finding) to show and open. One grouped query (finding_topic_problem)
    and one for the first members."""
    rows = (
        qs.order_by()
        .annotate(problem_key=PROBLEM_KEY)
        .values("topic_id", "topic__name", "problem_key")
        .annotate(
            category=Min("category"),
            rank=Max(SEVERITY_RANK),
            members=Count("id"),
            unresolved=Count("id", filter=Q(status__in=Finding.UNRESOLVED)),
            first_at=Min("created_at"),
            last_at=Max("created_at"),
            first_id=Min("id"),
        )
        .order_by("-rank", "first_at", "topic__name", "problem_key")
    )
    listed = list(rows[:limit] if limit else rows)
    first = Finding.objects.select_related("topic", "window", "acknowledged_by").in_bulk(
        [r["first_id"] for r in listed]
    )
    return [
        {
            **row,
            "problem": row["problem_key"],
            "severity": RANKED.get(row["rank"], ""),
            "first": first.get(row["first_id"]),
        }
        for row in listed
    ]


def reason_codes_listed() -> list[ReasonCode]:
    """The enabled reason codes, for the pages' choosers (accepting needs one)."""
    return list(ReasonCode.objects.filter(enabled=True))
