"""The findings pages: the list (and its CSV export, and one action on the ticked findings),
one finding with its lifecycle buttons (acknowledge, assign, investigate, fix, accept, reopen,
comment), and My findings.

Each post checks access through the service (recon.services.finding_lifecycle: outsider
404, viewer 403, recorded) and redirects back to the finding with what happened.
"""

import csv
import json
from collections.abc import Iterator
from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.errors import AppError
from core.masking import mask_sensitive, mask_text
from core.usernames import username_normalise
from dashboard import wording
from dashboard.forms.findings import AcknowledgeForm, BulkForm
from dashboard.paging import keyset_page
from dashboard.views.common import PAGE_SIZE, payload_topic_ids, query_without_cursor, safe_next
from recon import access
from recon.filters import FindingFilterForm
from recon.models import Finding
from recon.selectors.findings import (
    finding_detail_for,
    finding_visible,
    findings_assigned,
    findings_filtered,
    problems_of,
    reason_codes_listed,
)
from recon.services import finding_lifecycle
from recon.services.finding_bulk import findings_bulk_act, findings_bulk_check

EXPORT_MAX_ROWS = 100_000
PROBLEMS_SHOWN = 500  # problems on the grouped list, worst first (members are paged)
# Filters that name findings rather than problems: with one of them the page lists findings.
MEMBER_FILTERS = ("problem", "uuid", "key")
# A replay sends the published message again: it cannot help an orphan (never
# published by us), a duplicate or a delay (delivered already).
REPLAYABLE = (
    Finding.Category.MISSING,
    Finding.Category.ALTERED,
    Finding.Category.CACHE,
    Finding.Category.INVALID_DATA,
)


@login_required
@require_GET
def findings(request: HttpRequest) -> HttpResponse:
    form = FindingFilterForm(request.GET, user=request.user)
    page = None
    sort = request.GET.get("sort") if request.GET.get("sort") in ("newest", "oldest") else "newest"
    problems: dict | None = None
    per_finding = form.is_valid() and form.cleaned_data.get("rows") == "finding"
    if form.is_valid() and not per_finding and not any(form.cleaned_data.get(name) for name in MEMBER_FILTERS):
        # The default: one row per problem, worst first, info hidden unless asked for.
        listed = problems_of(findings_filtered(user=request.user, **form.filters()), limit=PROBLEMS_SHOWN + 1)
        operable = set(access.topics_operable(request.user).values_list("pk", flat=True))
        for row in listed:  # a one-finding problem is acted on from its row
            row["first"].can_operate = row["first"].topic_id in operable
        problems = {"rows": listed[:PROBLEMS_SHOWN], "more": len(listed) > PROBLEMS_SHOWN}
    elif form.is_valid():
        qs = findings_filtered(user=request.user, **form.filters())
        page = keyset_page(
            qs,
            time_field="created_at",
            cursor=form.cleaned_data["cursor"],
            size=PAGE_SIZE,
            descending=sort == "newest",
        )
        operable = set(access.topics_operable(request.user).values_list("pk", flat=True))
        for finding in page.rows:
            finding.can_operate = finding.topic_id in operable
        # The bulk reprocess form, when the page shows a dead letter the user may reprocess.
        page.extra["can_reprocess"] = any(
            f.can_operate and f.category == Finding.Category.DEAD_LETTERED and f.status == Finding.Status.OPEN
            for f in page.rows
        )
    shown = [p["first"] for p in problems["rows"] if p["members"] == 1] if problems else (page.rows if page else [])
    unsorted = request.GET.copy()
    for name in ("cursor", "sort"):
        unsorted.pop(name, None)
    context = {
        "form": form,
        "page": page,
        "problems": problems,
        "query": query_without_cursor(request),
        "query_unsorted": unsorted.urlencode(),
        "sort": sort,
        "replayable": REPLAYABLE,
        # The bulk form, when a row shown is one the user may act on (the service checks each again).
        "bulk": any(getattr(f, "can_operate", False) for f in shown),
        "bulk_actions": BulkForm.ACTIONS,
        "reason_codes": reason_codes_listed(),
    }
    return render(request, "dashboard/findings.html", context)


@login_required
@require_GET
def findings_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    form = FindingFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return HttpResponse(f"Invalid filter: {form.errors.as_text()}", status=400, content_type="text/plain")
    qs = findings_filtered(user=request.user, **form.filters()).order_by("-created_at", "-pk")
    payload_ids = payload_topic_ids(request)
    response = StreamingHttpResponse(_csv_rows(qs[:EXPORT_MAX_ROWS], payload_ids), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="findings.csv"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = [
    "id",
    "created_at",
    "topic",
    "category",
    "classification",
    "severity",
    "status",
    "uuid",
    "key",
    "detail",
    "acknowledged_by",
    "comment",
]


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell that starts with one of these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(qs, payload_ids: set[int]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for f in qs.iterator(chunk_size=2000):
        clear = f.topic_id in payload_ids
        detail = f.detail if clear else mask_sensitive(f.detail)
        row = [
            f.pk,
            f.created_at.isoformat(),
            f.topic.name,
            f.category,
            f.classification,
            f.severity,
            f.status,
            f.uuid or "",
            f.key,
            json.dumps(detail, sort_keys=True, default=str, ensure_ascii=False),
            f.acknowledged_by.username if f.acknowledged_by else "",
            f.comment if clear else mask_text(f.comment),
        ]
        yield writer.writerow([_csv_cell(v) for v in row])


@login_required
@require_GET
def finding_detail(request: HttpRequest, pk: int) -> HttpResponse:
    finding = finding_visible(request.user, pk=pk)
    return _finding_page(request, finding, AcknowledgeForm())


def _finding_page(request: HttpRequest, finding: Finding, ack_form, status: int = 200) -> HttpResponse:
    shown = finding_detail_for(request.user, finding)
    context = {
        "finding": finding,
        "detail": json.dumps(shown, indent=2, default=str, ensure_ascii=False),
        "detail_items": wording.detail_items(shown),
        "reason": wording.finding_reason(finding.category, shown),
        "can_operate": access.can_operate(request.user, finding.topic),
        "ack_form": ack_form,
        "replayable": REPLAYABLE,
    }
    return render(request, "dashboard/finding_detail.html", context, status=status)


@login_required
@require_POST
def finding_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    finding = finding_visible(request.user, pk=pk)
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        access.topic_for_operate(request.user, finding.topic)  # a viewer gets 403, not a form error
        return _finding_page(request, finding, form, status=400)
    try:
        finding_lifecycle.finding_acknowledge(finding=finding, user=request.user, comment=form.cleaned_data["comment"])
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Finding {finding.pk} acknowledged.")
    return redirect(safe_next(request, reverse("dashboard:finding", args=[finding.pk])))


def _act(request: HttpRequest, pk: int, verb: str, call) -> HttpResponse:
    finding = finding_visible(request.user, pk=pk)  # outsider: 404
    try:
        call(finding)
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Finding {finding.pk} {verb}.")
    return redirect(safe_next(request, reverse("dashboard:finding", args=[finding.pk])))


def _comment(request: HttpRequest) -> str:
    return (request.POST.get("comment") or "")[:4000]


@login_required
@require_POST
def finding_assign(request: HttpRequest, pk: int) -> HttpResponse:
    username = (request.POST.get("assignee") or "").strip()
    group_name = (request.POST.get("group") or "").strip()

    def call(finding: Finding) -> None:
        finding_lifecycle.finding_operate_check(finding, request.user, "assign")  # 403 before telling who exists
        assignee = User.objects.filter(username=username_normalise(username)).first() if username else None
        group = Group.objects.filter(name=group_name).first() if group_name else None
        if username and assignee is None:
            raise AppError(f"No user {username}.", code="bad_assignee")
        if group_name and group is None:
            raise AppError(f"No team {group_name}.", code="bad_assignee")
        finding_lifecycle.finding_assign(
            finding=finding, user=request.user, assignee=assignee, group=group, comment=_comment(request)
        )

    return _act(request, pk, "assigned", call)


@login_required
@require_POST
def finding_investigate(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "under investigation",
        lambda f: finding_lifecycle.finding_investigate(finding=f, user=request.user, comment=_comment(request)),
    )


@login_required
@require_POST
def finding_fix(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "marked fixed: the next reconcile verifies it",
        lambda f: finding_lifecycle.finding_fix(finding=f, user=request.user, comment=_comment(request)),
    )


@login_required
@require_POST
def finding_accept(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "accepted as-is",
        lambda f: finding_lifecycle.finding_accept(
            finding=f, user=request.user, reason_code=request.POST.get("reason_code", ""), comment=_comment(request)
        ),
    )


@login_required
@require_POST
def finding_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "reopened",
        lambda f: finding_lifecycle.finding_reopen(finding=f, user=request.user, comment=_comment(request)),
    )


@login_required
@require_POST
def finding_comment(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "commented",
        lambda f: finding_lifecycle.finding_comment(finding=f, user=request.user, text=_comment(request)),
    )


@login_required
@require_POST
def findings_bulk(request: HttpRequest) -> HttpResponse:
    """One action on the ticked findings, each through its own service; one summary message."""
    back = safe_next(request, reverse("dashboard:findings"))
    findings_bulk_check(user=request.user)  # 403 for someone who operates nothing
    form = BulkForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        messages.error(request, f"Nothing done: {errors}")
        return redirect(back)
    data = form.cleaned_data
    action, assignee = data["action"], None
    if action == "assign_me":
        action, assignee = "assign", cast(User, request.user)  # login_required: a real user
    elif action == "assign":
        assignee = User.objects.filter(username=username_normalise(data["assignee"]), is_active=True).first()
        if assignee is None:  # said only to an operator (findings_bulk_check), as the finding page does
            messages.error(request, f"Nothing done: no user {data['assignee']}.")
            return redirect(back)
    try:
        outcome = findings_bulk_act(
            user=request.user,
            ids=data["findings"],
            action=action,
            assignee=assignee,
            reason_code=data["reason_code"],
            comment=data["comment"],
        )
    except AppError as exc:
        messages.error(request, f"Nothing done: {exc.message}")
        return redirect(back)
    (messages.success if not outcome.refused else messages.warning)(request, outcome.summary() + ".")
    return redirect(back)


@login_required
@require_GET
def my_findings(request: HttpRequest) -> HttpResponse:
    rows = list(findings_assigned(user=request.user, topics=access.topics_visible(request.user))[:500])
    clear = {t.pk for t in access.topics_visible(request.user) if access.can_view_payload(request.user, t)}
    for f in rows:
        f.comment_shown = f.comment if f.topic_id in clear else mask_text(f.comment)  # type: ignore[attr-defined]
    return render(request, "dashboard/my_findings.html", {"rows": rows})
