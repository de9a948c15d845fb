"""The ops pages. Each view checks access, calls a selector (or one service), renders.

Every view needs a login; what a user sees is narrowed to their topics by the
selectors (recon.access), actions are refused by the services with 403, and the
buttons are hidden by the same recon.access checks.
"""

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import plotly
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import etag, require_GET, require_POST
from plotly import offline as plotly_offline

from config.errors import AppError
from core.masking import mask_sensitive, mask_text
from dashboard import charts, forms, selectors, wording
from dashboard.paging import keyset_page
from dashboard.plotly_assets import plotly_styles
from kafkacache.services import loads as feed_loads
from recon import access
from recon.models import Finding, Load, ReconRun
from recon.services import finding_lifecycle

PAGE_SIZE = 50
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
EXPORT_MAX_ROWS = 100_000
REPLAYABLE = (
    Finding.Category.MISSING,
    Finding.Category.ALTERED,
    Finding.Category.CACHE,
    Finding.Category.INVALID_DATA,
)


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    form = forms.RangeForm(request.GET)
    start, end, preset = form.bounds()
    items = selectors.overview(user=request.user, start=start, end=end)
    for n, item in enumerate(items):
        item.flow_html = charts.flow_chart(item, div_id=f"flow-{n}", start=start, end=end)  # type: ignore[attr-defined]
        item.categories_html = (  # type: ignore[attr-defined]
            charts.categories_chart(item, div_id=f"categories-{n}", start=start, end=end)
            if item.findings_by_category
            else ""
        )
        item.category_rows = sorted(  # type: ignore[attr-defined]
            (
                (charts.CATEGORY_LABELS.get(c, c), c, by.get("critical", 0), by.get("warning", 0), by.get("info", 0))
                for c, by in item.findings_by_severity.items()
            ),
            key=lambda row: -(row[2] + row[3] + row[4]),
        )
    context = {
        "form": form,
        "items": items,
        "start": start,
        "end": end,
        "until": charts.minute_after(end),
        "preset": preset,
        "ranges": forms.RANGES,
    }
    return render(request, "dashboard/overview.html", context)


@login_required
@require_GET
def findings(request: HttpRequest) -> HttpResponse:
    form = forms.FindingFilterForm(request.GET, user=request.user)
    page = None
    sort = request.GET.get("sort") if request.GET.get("sort") in ("newest", "oldest") else "newest"
    if form.is_valid():
        qs = selectors.findings_filtered(user=request.user, **form.filters())
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
    unsorted = request.GET.copy()
    for name in ("cursor", "sort"):
        unsorted.pop(name, None)
    context = {
        "form": form,
        "page": page,
        "query": _query_without_cursor(request),
        "query_unsorted": unsorted.urlencode(),
        "sort": sort,
        "replayable": REPLAYABLE,
    }
    return render(request, "dashboard/findings.html", context)


@login_required
@require_GET
def findings_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    form = forms.FindingFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return HttpResponse(f"Invalid filter: {form.errors.as_text()}", status=400, content_type="text/plain")
    qs = selectors.findings_filtered(user=request.user, **form.filters()).order_by("-created_at", "-pk")
    payload_ids = set(_payload_topic_ids(request))
    response = StreamingHttpResponse(_csv_rows(qs[:EXPORT_MAX_ROWS], payload_ids), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="discrepancies.csv"'
    return response


def _payload_topic_ids(request: HttpRequest) -> list[int]:
    return list(access.topics_payload(request.user).values_list("pk", flat=True))


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
    finding = selectors.finding_visible(request.user, pk=pk)
    return _finding_page(request, finding, forms.AcknowledgeForm())


def _finding_page(request: HttpRequest, finding: Finding, ack_form, status: int = 200) -> HttpResponse:
    shown = selectors.finding_detail_for(request.user, finding)
    context = {
        "finding": finding,
        "detail": json.dumps(shown, indent=2, default=str, ensure_ascii=False),
        "detail_items": wording.detail_items(shown),
        "reason": wording.finding_reason(finding.category, shown),
        "can_operate": access.can_operate(request.user, finding.topic),
        "ack_form": ack_form,
        # A replay sends the published message again: it cannot help an orphan (never
        # published by us), a duplicate or a delay (delivered already).
        "replayable": REPLAYABLE,
    }
    return render(request, "dashboard/finding_detail.html", context, status=status)


@login_required
@require_POST
def finding_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    finding = selectors.finding_visible(request.user, pk=pk)
    form = forms.AcknowledgeForm(request.POST)
    if not form.is_valid():
        access.topic_for_operate(request.user, finding.topic)  # a viewer gets 403, not a form error
        return _finding_page(request, finding, form, status=400)
    try:
        finding_lifecycle.finding_acknowledge(finding=finding, user=request.user, comment=form.cleaned_data["comment"])
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Finding {finding.pk} acknowledged.")
    return redirect(_safe_next(request, reverse("dashboard:finding", args=[finding.pk])))


@login_required
@require_GET
def message_search(request: HttpRequest) -> HttpResponse:
    """One box: a message UUID, a load id, a record key or client id, or partition/offset."""
    form = forms.MessageSearchForm(request.GET or None, user=request.user)
    result = None
    if form.is_valid():
        result = selectors.message_search(
            user=request.user, query=form.cleaned_data["q"], topic=form.cleaned_data.get("topic")
        )
        if result.redirect:
            return redirect(result.redirect)
    return render(request, "dashboard/message_search.html", {"form": form, "result": result})


@login_required
@require_GET
def message_detail(request: HttpRequest, uuid) -> HttpResponse:
    timeline = selectors.message_timeline(user=request.user, uuid=uuid)
    return render(request, "dashboard/message_detail.html", {"t": timeline})


@login_required
@require_GET
def windows(request: HttpRequest) -> HttpResponse:
    form, page = _filtered_page(request, forms.WindowFilterForm, selectors.windows_filtered, time_field="start")
    return render(
        request, "dashboard/windows.html", {"form": form, "page": page, "query": _query_without_cursor(request)}
    )


@login_required
@require_GET
def window_detail(request: HttpRequest, pk: int) -> HttpResponse:
    window = selectors.window_visible(request.user, pk=pk)
    page = keyset_page(
        selectors.findings_filtered(user=request.user, window=window), time_field="created_at", size=PAGE_SIZE
    )
    summary = json.dumps(window.summary, indent=2, default=str, ensure_ascii=False)
    context = {
        "window": window,
        "page": page,
        "summary": summary,
        "can_operate": access.can_operate(request.user, window.topic),
    }
    return render(request, "dashboard/window_detail.html", context)


@login_required
@require_GET
def loads(request: HttpRequest) -> HttpResponse:
    form = forms.LoadFilterForm(request.GET, user=request.user)
    page = None
    if form.is_valid():
        qs = selectors.loads_filtered(user=request.user, **form.filters())
        page = keyset_page(qs, time_field="created_at", cursor=form.cleaned_data["cursor"], size=PAGE_SIZE)
        payload = set(_payload_topic_ids(request))
        for load in page.rows:
            load.show_key = load.topic_id in payload
    start_form = forms.LoadStartForm(user=request.user)
    context = {
        "form": form,
        "page": page,
        "query": _query_without_cursor(request),
        "start_form": start_form if start_form.fields["topic"].choices else None,  # type: ignore[attr-defined]
        "live": page is not None
        and any(load.status in (Load.Status.QUEUED, Load.Status.RUNNING) for load in page.rows),
    }
    return render(request, "dashboard/loads.html", context)


@login_required
@require_POST
def load_start(request: HttpRequest) -> HttpResponse:
    form = forms.LoadStartForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, f"Load not started: {form.errors.as_text()}")
        return redirect("dashboard:loads")
    topic = access.topic_for_operate(request.user, form.cleaned_data["topic"])
    try:
        load = feed_loads.load_start(
            topic=topic,
            source=form.cleaned_data["source"],
            client_ids=form.cleaned_data["client_ids"],
            requested_by=request.user,
        )
    except AppError as exc:
        messages.error(request, f"Load not started: {exc.message}")
        return redirect("dashboard:loads")
    messages.success(request, f"Load {load.pk} queued.")
    return redirect("dashboard:load", pk=load.pk)


@login_required
@require_GET
def load_detail(request: HttpRequest, pk) -> HttpResponse:
    load = selectors.load_visible(request.user, pk=pk)
    context = {
        "load": load,
        "show_key": access.can_view_payload(request.user, load.topic),
        "can_operate": access.can_operate(request.user, load.topic),
        "live": load.status in (Load.Status.QUEUED, Load.Status.RUNNING),
        "runs": list(ReconRun.objects.filter(load=load).order_by("-started_at")[:20]),
        "ids": selectors.load_ids(load),
    }
    return render(request, "dashboard/load_detail.html", context)


@login_required
@require_GET
def rebalances(request: HttpRequest) -> HttpResponse:
    form, page = _filtered_page(request, forms.RebalanceFilterForm, selectors.rebalances_filtered, time_field="at")
    if page is not None:
        for event in page.rows:
            event.partitions = access.partitions_visible(request.user, event.partitions)
    return render(
        request, "dashboard/rebalances.html", {"form": form, "page": page, "query": _query_without_cursor(request)}
    )


@login_required
@require_GET
def actions(request: HttpRequest) -> HttpResponse:
    form, page = _filtered_page(request, forms.ActionFilterForm, selectors.actions_filtered, time_field="at")
    if page is not None:
        payload = set(_payload_topic_ids(request))
        for action in page.rows:
            detail = action.detail if action.topic_id in payload else mask_sensitive(action.detail)
            action.detail_text = json.dumps(detail, sort_keys=True, default=str, ensure_ascii=False) if detail else ""
    return render(
        request, "dashboard/actions.html", {"form": form, "page": page, "query": _query_without_cursor(request)}
    )


@login_required
@require_GET
@etag(lambda request: plotly_offline.get_plotlyjs_version())
def plotly_js(request: HttpRequest) -> FileResponse:
    """plotly.js from the plotly package, so charts draw without any CDN."""
    response = FileResponse(PLOTLY_JS.open("rb"), content_type="text/javascript")
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_GET
@etag(lambda request: plotly_offline.get_plotlyjs_version())
def plotly_css(request: HttpRequest) -> HttpResponse:
    """plotly.js's own rules as a stylesheet (dashboard.plotly_assets): no inline <style> under the CSP."""
    response = HttpResponse(plotly_styles()[0], content_type="text/css")
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _filtered_page(request: HttpRequest, form_class, selector, *, time_field: str):
    """A list page's filter form and, when it is valid, one keyset page of the selector's rows."""
    form = form_class(request.GET, user=request.user)
    if not form.is_valid():
        return form, None
    qs = selector(user=request.user, **form.filters())
    return form, keyset_page(qs, time_field=time_field, cursor=form.cleaned_data["cursor"], size=PAGE_SIZE, count=False)


def _query_without_cursor(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("cursor", None)
    return query.urlencode()


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default
