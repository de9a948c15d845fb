"""Plotly figures for the overview, as JSON the page's static charts.js draws.

No inline script (the pages run under a strict Content-Security-Policy): each chart
is a <div data-chart> holding its figure as a JSON data block, and
dashboard/static/dashboard/charts.js calls Plotly.newPlot on it, follows clicks on
a bar to the filtered findings list (the point's customdata) and picks colours for
dark mode. plotly.js itself is served by the dashboard (views.plotly_js) from the
copy inside the plotly package: the pages work on a closed network.

What the charts promise: counts on integer axes with titles and units; the gap
(published - consumed) on its own panel, never on the scale of thousands of
messages; the x-axis spans the data present in the chosen range (a bucket either side),
with a note saying so when that is less than the range; findings coloured by severity.
"""

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from plotly import io as plotly_io

from dashboard.selectors.overview import TopicOverview
from recon.models import Finding

CATEGORY_LABELS = dict(Finding.Category.choices)
# Severity colours, as the badges: red critical, amber warning, grey info.
SEVERITY_COLOURS = {"critical": "#b3261e", "warning": "#d68a00", "info": "#7a8796"}
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
_FONT = {"family": "system-ui, sans-serif", "size": 12}
# Above the plot area at the right, opposite the title: never drawn over a bar.
_LEGEND = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1, "yanchor": "bottom"}
# The figures are plain dicts in plotly.js's own terms: plotly's graph objects validate every
# property on every request (~100 ms a flow chart), which the figures gain nothing from. Its
# default template, once, keeps the look the graph objects gave.
_TEMPLATE = plotly_io.templates[plotly_io.templates.default].to_plotly_json()


def flow_chart(item: TopicOverview, *, div_id: str, start: dt.datetime, end: dt.datetime) -> str:
    """Published and consumed per window (or bucket of windows); the gap on a panel of its own."""
    x = [p.start.isoformat() for p in item.series]
    unit = duration_words(item.bucket_seconds)
    span = data_span(item, start=start, end=end)
    shown = [t.isoformat() for t in span]
    # Each point drawn in the middle of its bucket (x is the bucket's start).
    period = {"xperiod": item.bucket_seconds * 1000, "xperiodalignment": "middle"}
    # Bars as wide as their bucket allows (two side by side): plotly's own guess for a lone bar on a date axis is 1 ms.
    bars = {"type": "bar", "width": item.bucket_seconds * 1000 * 0.4, "x": x, "xaxis": "x", "yaxis": "y", **period}
    gap = [p.gap for p in item.series]
    data = [
        {**bars, "name": "published", "marker": {"color": "#1d5fd1"}, "y": [p.published for p in item.series]},
        {**bars, "name": "consumed", "marker": {"color": "#34a853"}, "y": [p.consumed for p in item.series]},
        {
            "type": "scatter",
            "name": "published - consumed",
            "mode": "lines+markers",
            "line": {"color": "#b3261e"},
            "x": x,
            "y": gap,
            "xaxis": "x2",
            "yaxis": "y2",
            **period,
        },
    ]
    top = max([*(p.published for p in item.series), *(p.consumed for p in item.series), 0])
    low, high = min([*gap, 0]), max([*gap, 0])
    # Two rows on one time axis: the counts on 0.72 of the height, the gap on 0.28, 0.06 apart.
    time_axis = {"range": shown, "type": "date"}
    counts_axis = {"anchor": "x", "domain": [0.3232, 1.0], "title": {"text": f"messages / {unit}"}}
    gap_axis = {"anchor": "x2", "domain": [0.0, 0.2632], "title": {"text": "gap"}, "zeroline": True}
    layout: dict[str, Any] = {
        "xaxis": {"anchor": "y", "domain": [0.0, 1.0], "matches": "x2", "showticklabels": False, **time_axis},
        "xaxis2": {"anchor": "y2", "domain": [0.0, 1.0], "title": {"text": "publish time (UTC)"}, **time_axis},
        "yaxis": {**counts_axis, "rangemode": "tozero", **_count_ticks(top)},
        "yaxis2": {**gap_axis, **_gap_ticks(high - low)},
        "barmode": "group",
        "height": 320,
        "margin": {"l": 64, "r": 16, "t": 48, "b": 44},
        "legend": _LEGEND,
        "font": _FONT,
        "title": {"text": f"Messages per {unit} of publish time", "font": {"size": 13}, "x": 0, "xanchor": "left"},
    }
    label = f"Published and consumed messages of {item.topic.name}"
    chart = _chart_html({"data": data, "layout": layout}, div_id=div_id, label=label)
    if span == (start, end):
        return chart
    note = format_html(
        '<p class="muted chart-note" id="{}-span" data-from="{}" data-to="{}">Windows only from {} to {} UTC of the '
        "chosen range: the chart shows that span.</p>",
        div_id,
        shown[0],
        shown[1],
        f"{span[0]:%Y-%m-%d %H:%M}",
        f"{span[1]:%Y-%m-%d %H:%M}",
    )
    return format_html("{}{}", note, chart)


def data_span(item: TopicOverview, *, start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The part of [start, end] holding windows, widened by a bucket either side (never past the range)."""
    if not item.series:
        return start, end
    bucket = dt.timedelta(seconds=item.bucket_seconds)
    return max(start, item.series[0].start - bucket), min(end, item.series[-1].start + 2 * bucket)


def categories_chart(item: TopicOverview, *, div_id: str, start: dt.datetime, end: dt.datetime) -> str:
    """Findings raised in the range, by category, stacked by severity; a bar opens its list."""
    by_category: dict[str, dict[str, int]] = item.findings_by_severity
    order = sorted(by_category, key=lambda c: -sum(by_category[c].values()))
    labels = [CATEGORY_LABELS.get(c, c) for c in order]
    data = []
    for severity in ("critical", "warning", "info"):
        counts = [by_category[c].get(severity, 0) for c in order]
        if not any(counts):
            continue
        data.append(
            {
                "type": "bar",
                "x": counts,
                "y": labels,
                "orientation": "h",
                "name": severity,
                "marker": {"color": SEVERITY_COLOURS[severity]},
                "customdata": [_findings_url(item, c, severity, start, end) for c in order],
                "hovertemplate": "%{y}: %{x:,d} " + severity + "<extra>click to list them</extra>",
            }
        )
    top = max((sum(v.values()) for v in by_category.values()), default=0)
    totals = [sum(v.values()) for v in by_category.values() if sum(v.values())]
    toggle = bool(totals) and max(totals) >= LOG_TOGGLE_RATIO * min(totals)
    layout: dict[str, Any] = {
        "barmode": "stack",
        "height": max(200, 90 + 34 * len(order)) + (40 if toggle else 0),
        "margin": {"l": 170, "r": 16, "t": 48, "b": 84 if toggle else 44},
        "legend": _LEGEND,
        "font": _FONT,
        "title": {"text": "Findings raised in the range, by category", "font": {"size": 13}, "x": 0, "xanchor": "left"},
        "yaxis": {"autorange": "reversed"},
        "xaxis": {"title": {"text": "findings"}, "rangemode": "tozero", **_count_ticks(top)},
    }
    if toggle:
        layout["updatemenus"] = [_scale_toggle()]
    label = f"Findings of {item.topic.name} by category and severity"
    return _chart_html({"data": data, "layout": layout}, div_id=div_id, label=label)


# Categories this many times apart get a linear/log switch: a bar of 3 beside one of 3,000 is
# otherwise invisible.
LOG_TOGGLE_RATIO = 100


def _scale_toggle() -> dict:
    """Plotly's own buttons (no script of ours) switching the count axis between linear and log."""
    return {
        "type": "buttons",
        "direction": "right",
        "x": 0,
        "xanchor": "left",
        "y": -0.12,
        "yanchor": "top",
        "showactive": True,
        "buttons": [
            {"label": "linear", "method": "relayout", "args": [{"xaxis.type": "linear", "xaxis.dtick": None}]},
            {"label": "log scale", "method": "relayout", "args": [{"xaxis.type": "log", "xaxis.dtick": None}]},
        ],
    }


def _findings_url(item: TopicOverview, category: str, severity: str, start: dt.datetime, end: dt.datetime) -> str:
    query = {
        "topic": item.topic.name,
        "category": category,
        "severity": severity,
        "since": start.strftime("%Y-%m-%dT%H:%M"),
        "until": minute_after(end),
    }
    return reverse("dashboard:findings") + "?" + urlencode(query)


def minute_after(at: dt.datetime) -> str:
    """The end of a range to the minute, rounded up so the list holds all the chart counted."""
    return (at.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")


def _count_ticks(top: int) -> dict:
    """Whole numbers only: no 0.5 tick on a count axis."""
    if top <= 6:
        return {"tick0": 0, "dtick": 1, "tickformat": ",d"}
    return {"tickformat": ",d"}


def _gap_ticks(span: int) -> dict:
    """At most four whole-number ticks on the short gap panel (1, 2, 5, 10, 20, ... apart):
    a step under 1 would print the same rounded label twice."""
    step = next(m * 10**e for e in range(19) for m in (1, 2, 5) if span / (m * 10**e) <= 3)
    return {"tick0": 0, "dtick": step, "tickformat": ",d"}


def _chart_html(figure: dict, *, div_id: str, label: str) -> str:
    figure = {**figure, "layout": {**figure["layout"], "template": _TEMPLATE}, "config": _CONFIG}
    # A JSON data block, not a script: escaped so no text can close the element.
    payload = json.dumps(figure, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")
    payload = payload.replace("&", "\\u0026")
    return format_html(
        '<div class="chart" id="{}" data-chart role="figure" aria-label="{}"></div>'
        '<script type="application/json" id="{}-figure">{}</script>',
        div_id,
        label,
        div_id,
        SafeString(payload),  # escaped above for the inside of a JSON data block
    )


def duration_words(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
