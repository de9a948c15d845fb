"""Plotly figures for the overview, rendered to HTML fragments.

plotly.js itself is served by the dashboard (views.plotly_js) from the copy inside
the plotly package: the pages work on a closed network. Trace names and labels are
fixed strings. A figure goes into the page as JSON data (json_script), drawn by
static/kafkacache/charts.js: the CSP allows no inline script.
"""

import json

from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString
from plotly import graph_objects as go
from plotly.io import to_json

from dashboard.selectors import TopicOverview
from recon.models import Finding

_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
_LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
    "height": 260,
    "legend": {"orientation": "h", "y": 1.15},
    "plot_bgcolor": "#fff",
    "paper_bgcolor": "#fff",
}
CATEGORY_LABELS = dict(Finding.Category.choices)


def flow_chart(item: TopicOverview, *, div_id: str) -> str:
    """Published vs consumed per window (or bucket of windows), and the gap between them."""
    x = [p.start for p in item.series]
    fig = go.Figure()
    fig.add_bar(x=x, y=[p.published for p in item.series], name="published", marker_color="#1d5fd1")
    fig.add_bar(x=x, y=[p.consumed for p in item.series], name="consumed", marker_color="#34a853")
    gap = [p.published - p.consumed for p in item.series]
    if any(gap):
        fig.add_scatter(x=x, y=gap, name="published - consumed", mode="lines+markers", line={"color": "#b3261e"})
    fig.update_layout(
        barmode="group",
        title={"text": f"messages per {_duration(item.bucket_seconds)} (publish time)", "font": {"size": 13}},
        **_LAYOUT,
    )
    return _chart_html(fig, div_id=div_id)


def categories_chart(item: TopicOverview, *, div_id: str) -> str:
    """Discrepancies found in the range, by category."""
    counts = sorted(item.findings_by_category.items(), key=lambda kv: -kv[1])
    fig = go.Figure()
    fig.add_bar(
        x=[n for _, n in counts],
        y=[CATEGORY_LABELS.get(c, c) for c, _ in counts],
        orientation="h",
        marker_color="#b3261e",
        name="findings",
    )
    layout = dict(_LAYOUT, margin={"l": 150, "r": 20, "t": 30, "b": 40})
    fig.update_layout(title={"text": "discrepancies by category", "font": {"size": 13}}, **layout)
    fig.update_yaxes(autorange="reversed")
    return _chart_html(fig, div_id=div_id)


def _chart_html(fig: go.Figure, *, div_id: str) -> SafeString:
    """The chart's div and its figure as a JSON data block (never executed)."""
    figure = json.loads(to_json(fig))
    figure["config"] = _CONFIG
    data_id = f"{div_id}-figure"
    return format_html(
        '<div id="{}" class="plotly-chart" data-figure="{}"></div>{}', div_id, data_id, json_script(figure, data_id)
    )


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
