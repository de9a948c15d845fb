"""Reads of findings: their problems (recon.problems), their ageing against the SLA, the ones over it, a person's."""

import datetime as dt
import uuid as uuid_lib

from django.conf import settings
from django.db import connection
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


def _ageing_counts(unresolved: QuerySet[Finding], now: dt.datetime) -> dict[tuple[int, str], dict]:
    """(topic id, severity) -> problems (total), findings and each bucket's problems, and the first time.

    A finding raised without a problem key (before problems, or written directly) is its own
    problem: those are counted per topic and severity in one pass. The others are grouped per
    problem first (few groups: a problem holds many findings), then per topic and severity.
    Distinct counts per bucket instead sorted every unresolved finding once per bucket."""
    in_bucket = {
        name: Count("id", filter=Q(created_at__lte=now - low) & (Q(created_at__gt=now - high) if high else Q()))
        for name, _, low, high in AGEING_BUCKETS
    }
    groups: dict[tuple[int, str], dict] = {  # the bucket names are keys mypy cannot know
        (keyless["topic_id"], keyless["severity"]): dict(keyless)
        for keyless in unresolved.filter(problem="")
        .values("topic_id", "severity")
        .annotate(total=Count("id"), findings=Count("id"), oldest_at=Min("created_at"), **in_bucket)
    }
    problems = (
        unresolved.exclude(problem="")
        .values("topic_id", "severity", "problem")
        .annotate(members=Count("id"), first_at=Min("created_at"), **in_bucket)
        .values("topic_id", "severity", "members", "first_at", *in_bucket)
    )
    inner, params = problems.query.sql_with_params()
    per_bucket = ", ".join(f'count(*) FILTER (WHERE "{name}" > 0)' for name in in_bucket)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT topic_id, severity, count(*), sum(members), min(first_at), {per_bucket}"  # noqa: S608 (our names)
            f" FROM ({inner}) problems GROUP BY topic_id, severity",
            params,
        )
        grouped = cursor.fetchall()
    for topic_id, severity, total, held, first_at, *counts in grouped:
        group = groups.setdefault(
            (topic_id, severity),
            {"topic_id": topic_id, "severity": severity, "total": 0, "findings": 0, "oldest_at": first_at}
            | dict.fromkeys(in_bucket, 0),
        )
        group["total"] += total
        group["findings"] += int(held)
        group["oldest_at"] = min(group["oldest_at"], first_at)
        for name, count in zip(in_bucket, counts, strict=True):
            group[name] += count
    return groups


def findings_ageing(*, topics: QuerySet[Topic], now: dt.datetime) -> list[dict]:
    """Unresolved problems per topic and severity in the four age buckets (a problem in the bucket of
    each member's age), with the findings they hold and the oldest of each (a Finding)."""
    groups = _ageing_counts(Finding.objects.filter(topic__in=topics, status__in=Finding.UNRESOLVED), now)
    names = dict(Topic.objects.filter(pk__in={t for t, _ in groups}).values_list("pk", "name"))
    rows: list[dict] = sorted(
        ({**group, "topic__name": names[group["topic_id"]]} for group in groups.values()),
        key=lambda group: (group["topic__name"], group["severity"]),
    )
    # The oldest of each: the findings at each group's first time (index probes), not a sort of all.
    at_first = Q()
    for row in rows:
        at_first |= Q(topic_id=row["topic_id"], severity=row["severity"], created_at=row["oldest_at"])
    oldest = (
        {
            (f.topic_id, f.severity): f
            for f in Finding.objects.filter(at_first, status__in=Finding.UNRESOLVED)
            .order_by("topic_id", "severity", "id")
            .distinct("topic_id", "severity")
        }
        if rows
        else {}
    )
    sla = settings.BREAK_SLA_HOURS
    out = []
    for row in rows:
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
