"""The overview page: per visible topic, the flow of its windows, its findings by category and
severity, the busiest second and the consumer lag over a range; and plotly.js for its charts,
served by the dashboard (no CDN: the pages work on a closed network)."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import etag, require_GET
from plotly import offline as plotly_offline

from dashboard import charts
from dashboard.forms.overview import RANGES, RangeForm
from dashboard.plotly_assets import PLOTLY_JS, plotly_styles
from dashboard.selectors.overview import overview as overview_read


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    form = RangeForm(request.GET)
    start, end, preset = form.bounds()
    items = overview_read(user=request.user, start=start, end=end)
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
        "ranges": RANGES,
    }
    return render(request, "dashboard/overview.html", context)


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
