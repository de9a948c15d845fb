"""What the pages show: overview charts and counts, filters, CSV export, drill-down, masking."""

import csv
import datetime as dt
import io
import uuid

import pytest
from django.urls import reverse

from core.clients import redis_client
from recon.models import Finding, Load, PublishedMessage
from tests.cache_state import record_forge, records_drop
from tests.dashboard.conftest import CARD

pytestmark = pytest.mark.django_db

INJECTIONS = [
    "' OR 1=1 --",
    "'; DROP TABLE recon_finding; --",
    '"><script>alert(1)</script>',
    "<img src=x onerror=alert(1)>",
    "%' UNION SELECT password FROM auth_user --",
    "\x00",
]


def test_overview_shows_counts_and_charts(client_for, data, topic_a):
    response = client_for("viewer").get(reverse("dashboard:overview"), {"range": "6h"})
    assert response.status_code == 200
    items = {item.topic.pk: item for item in response.context["items"]}
    a = items[topic_a.pk]
    assert (a.published, a.consumed, a.gap) == (6, 5, 1)
    assert a.findings_by_category == {"missing": 1}
    assert a.open_findings == 1
    html = response.content.decode()
    assert 'src="/assets/plotly.min.js"' in html and "dashboard/charts.js" in html
    # Figures are JSON data blocks drawn by the static charts.js: no inline script.
    assert 'id="flow-0" data-chart' in html and '<script type="application/json" id="flow-0-figure">' in html
    assert "Plotly.newPlot" not in html and "<script>" not in html
    assert a.findings_by_severity == {"missing": {"critical": 1}}
    assert a.throughput_peak == 1  # one message a second: the busiest second
    assert "The chart as a table" in html and "peak: busiest second" in html


def test_charts_tell_the_truth(client_for, data, topic_a):
    import json
    import re

    response = client_for("viewer").get(reverse("dashboard:overview"), {"range": "6h"})
    html = response.content.decode()
    flow = json.loads(re.search(r'id="flow-0-figure">(.*?)</script>', html).group(1))
    layout = flow["layout"]
    # The gap on its own panel and axis, not on the scale of the message bars.
    gap = next(t for t in flow["data"] if t["name"] == "published - consumed")
    assert gap["yaxis"] == "y2" and all(t["yaxis"] == "y" for t in flow["data"] if t["type"] == "bar")
    # The x-axis is fitted to the windows present (an hour ago, in a 6 h range): from a bucket
    # before the first to a bucket after the last, and the page says the chart shows only that span.
    start, end = response.context["start"], response.context["end"]
    [item] = [i for i in response.context["items"] if i.topic.pk == topic_a.pk]
    bucket = dt.timedelta(seconds=item.bucket_seconds)
    first, last = item.series[0].start, item.series[-1].start
    assert start < first - bucket and last + 2 * bucket < end
    shown = [dt.datetime.fromisoformat(v).replace(tzinfo=dt.UTC) for v in layout["xaxis2"]["range"]]
    assert shown == [first - bucket, last + 2 * bucket] and layout["xaxis"]["range"] == layout["xaxis2"]["range"]
    note = re.search(r'<p class="muted chart-note" id="flow-0-span" data-from="([^"]+)" data-to="([^"]+)">', html)
    assert note and [dt.datetime.fromisoformat(v) for v in note.groups()] == shown
    assert "of the chosen range: the chart shows that span." in html
    # Bars as wide as their bucket allows, drawn in its middle (not a 1 ms sliver at its start).
    bars = [t for t in flow["data"] if t["type"] == "bar"]
    assert all(t["width"] == item.bucket_seconds * 400 and t["xperiodalignment"] == "middle" for t in bars)
    assert layout["xaxis2"]["title"]["text"] == "publish time (UTC)"
    assert layout["yaxis"]["title"]["text"] == "messages / 5 min" and layout["yaxis"]["dtick"] == 1
    assert layout["yaxis"]["tickformat"] == ",d"
    # The legend sits above the plot area (outside it), and the short gap panel has whole steps
    # of at least 1: no tick label printed twice.
    assert layout["legend"]["y"] >= 1 and layout["legend"]["yanchor"] == "bottom"
    assert layout["yaxis2"]["dtick"] >= 1 and layout["yaxis2"]["tickformat"] == ",d"
    categories = json.loads(re.search(r'id="categories-0-figure">(.*?)</script>', html).group(1))
    [critical] = categories["data"]
    # Severity colours, and each bar opens the findings list filtered to it.
    assert critical["name"] == "critical" and critical["marker"]["color"] == "#b3261e"
    url = critical["customdata"][0]
    assert (
        url.startswith(reverse("dashboard:findings") + "?") and "category=missing" in url and "severity=critical" in url
    )
    listed = client_for("viewer").get(url)  # one row per problem: the missing one
    assert [p["first_id"] for p in listed.context["problems"]["rows"]] == [data["missing"].pk]
    # The figures are plain dicts (dashboard/charts.py): plotly's graph objects, which check every
    # property name and value, accept both (a misspelt property raises ValueError here).
    from plotly import graph_objects as go

    for figure in (flow, categories):
        assert go.Figure(data=figure["data"], layout=figure["layout"]).layout.template.layout.font.color


def test_a_range_full_of_windows_is_charted_whole():
    """Windows from the first bucket to the last of the range: the x-axis is the range itself
    (flow_chart then adds no note); never wider than the range asked for."""
    from types import SimpleNamespace

    from dashboard.charts import data_span

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(hours=1)
    full = SimpleNamespace(bucket_seconds=300, series=[SimpleNamespace(start=start), SimpleNamespace(start=end)])
    assert data_span(full, start=start, end=end) == (start, end)  # type: ignore[arg-type]
    middle = SimpleNamespace(bucket_seconds=300, series=[SimpleNamespace(start=start + dt.timedelta(minutes=30))])
    assert data_span(middle, start=start, end=end) == (  # type: ignore[arg-type]
        start + dt.timedelta(minutes=25),
        start + dt.timedelta(minutes=40),
    )


def test_overview_range_picker_and_bad_range(client_for, data, topic_a):
    client = client_for("viewer")
    old = client.get(reverse("dashboard:overview"), {"start": "2001-01-01T00:00", "end": "2001-01-02T00:00"})
    assert {i.topic.pk: i.published for i in old.context["items"]}[topic_a.pk] == 0
    bad = client.get(reverse("dashboard:overview"), {"start": "2001-01-02T00:00", "end": "2001-01-01T00:00"})
    assert bad.status_code == 200
    assert b"The start must be before the end." in bad.content
    assert bad.context["preset"] == "24h"  # fell back to the default range
    # A value the form cannot read is named in the page with the range shown instead.
    garbled = client.get(reverse("dashboard:overview"), {"range": "2w"})
    assert garbled.context["preset"] == "24h"
    assert "Range &#x27;2w&#x27;: Select a valid choice." in garbled.content.decode()
    assert "Showing the last 24h instead." in garbled.content.decode()


def test_categories_orders_of_magnitude_apart_get_a_log_toggle(client_for, data, topic_a):
    import json
    import re

    def categories_figure() -> dict:
        html = client_for("viewer").get(reverse("dashboard:overview")).content.decode()
        return json.loads(re.search(r'id="categories-0-figure">(.*?)</script>', html).group(1))

    assert "updatemenus" not in categories_figure()["layout"]  # one category: nothing to compare
    Finding.objects.bulk_create(
        Finding(
            topic=topic_a,
            uuid=uuid.uuid4(),
            key=f"k{n}",
            category=Finding.Category.ALTERED,
            classification=Finding.Classification.EXCEPTION,
            severity=Finding.Severity.WARNING,
        )
        for n in range(100)
    )
    [toggle] = categories_figure()["layout"]["updatemenus"]  # 100 altered beside 1 missing
    assert [b["args"][0]["xaxis.type"] for b in toggle["buttons"]] == ["linear", "log"]


def test_default_range_bars_are_binned_to_the_range(client_for, data, topic_a):
    """24 h of 5-minute windows would be 288 groups of two 2-pixel bars: they are added up
    into at most MAX_CHART_POINTS buckets."""
    from dashboard.selectors.overview import MAX_CHART_POINTS

    response = client_for("viewer").get(reverse("dashboard:overview"))
    a = {i.topic.pk: i for i in response.context["items"]}[topic_a.pk]
    assert a.bucket_seconds == 15 * 60 and len(a.series) <= MAX_CHART_POINTS
    assert sum(p.published for p in a.series) == 6


def test_overview_buckets_long_ranges(client_for, data, topic_a):
    response = client_for("viewer").get(reverse("dashboard:overview"), {"range": "30d"})
    a = {i.topic.pk: i for i in response.context["items"]}[topic_a.pk]
    assert a.bucket_seconds > topic_a.window_seconds  # 30 days of 5-minute windows are folded into wider bars
    assert sum(p.published for p in a.series) == 6


def test_plotly_js_is_served_locally(client_for):
    response = client_for("viewer").get(reverse("dashboard:plotly-js"))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert len(body) > 1_000_000 and b"plotly" in body[:2000].lower()
    assert response["ETag"]


def test_findings_filters(client_for, data, topic_a):
    client = client_for("viewer")
    url = reverse("dashboard:findings")
    rows = {"rows": "finding"}  # one row per finding (the default is one per problem)
    assert [f.pk for f in client.get(url, rows).context["page"].rows] == [data["altered_b"].pk, data["missing"].pk]
    by_topic = client.get(url, {"topic": topic_a.name, **rows}).context["page"].rows
    assert [f.pk for f in by_topic] == [data["missing"].pk]
    altered = client.get(url, {"category": "altered", **rows}).context["page"].rows
    assert [f.pk for f in altered] == [data["altered_b"].pk]
    critical = client.get(url, {"severity": "critical", **rows}).context["page"].rows
    assert [f.pk for f in critical] == [data["missing"].pk]
    assert client.get(url, {"status": "acknowledged", **rows}).context["page"].rows == []
    future = (data["now"] + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert client.get(url, {"since": future, **rows}).context["page"].rows == []
    assert len(client.get(url, {"until": future, **rows}).context["page"].rows) == 2
    by_uuid = client.get(url, {"uuid": str(data["missing"].uuid)}).context["page"].rows
    assert [f.pk for f in by_uuid] == [data["missing"].pk]


def test_findings_keyset_pagination(client_for, topic_a, people):
    Finding.objects.bulk_create(
        Finding(topic=topic_a, category="missing", classification="exception", key=f"k{i}") for i in range(120)
    )
    client = client_for("viewer")
    url = reverse("dashboard:findings")
    seen, cursor = [], ""
    while True:
        page = client.get(url, {"rows": "finding", **({"cursor": cursor} if cursor else {})}).context["page"]
        seen.extend(f.pk for f in page.rows)
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 120
    assert page.count_label == "120"


@pytest.mark.parametrize("evil", INJECTIONS)
def test_filters_survive_injection(client_for, data, evil):
    client = client_for("viewer")
    for params in (
        {"topic": evil},
        {"category": evil},
        {"key": evil},
        {"uuid": evil},
        {"since": evil},
        {"cursor": evil},
    ):
        for name in ("dashboard:findings", "dashboard:windows", "dashboard:rebalances", "dashboard:actions"):
            response = client.get(reverse(name), params)
            assert response.status_code == 200, (name, params)
            assert b"<script>alert(1)</script>" not in response.content
            assert b"<img src=x onerror" not in response.content
        api = client.get(reverse("api-finding-list"), params)
        # DRF answers a cursor it did not make with 404 "Invalid cursor"; any other bad filter is a 400.
        assert api.status_code in ((200, 400, 404) if "cursor" in params else (200, 400)), params
        assert api.status_code == 200 or "error" in api.json()
    assert Finding.objects.count() == 2  # nothing dropped


def test_bad_filter_is_reported_and_escaped(client_for, data):
    response = client_for("viewer").get(reverse("dashboard:findings"), {"category": "<script>alert(1)</script>"})
    assert response.context["page"] is None
    assert b"Filter not applied" in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content


def test_csv_export(client_for, data, topic_a):
    response = client_for("viewer").get(reverse("dashboard:findings-csv"), {"topic": topic_a.name})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert (row["topic"], row["category"], row["uuid"]) == (topic_a.name, "missing", str(data["missing"].uuid))
    assert CARD not in row["detail"] and "1111" in row["detail"]  # masked for a viewer, last four kept


def test_csv_cells_cannot_become_formulas(client_for, topic_a, people):
    Finding.objects.create(topic=topic_a, category="invalid-data", classification="exception", key="=HYPERLINK(1)")
    body = b"".join(client_for("viewer").get(reverse("dashboard:findings-csv")).streaming_content).decode()
    assert "'=HYPERLINK(1)" in body


def test_csv_rejects_bad_filter(client_for, data):
    assert client_for("viewer").get(reverse("dashboard:findings-csv"), {"severity": "nope"}).status_code == 400


def test_card_numbers_masked_for_viewer_clear_for_operator(client_for, data):
    url = reverse("dashboard:finding", args=[data["missing"].pk])
    as_viewer = client_for("viewer").get(url).content.decode()
    as_operator = client_for("operator").get(url).content.decode()
    assert CARD not in as_viewer and "••••••••••••1111" in as_viewer
    assert CARD in as_operator
    api_viewer = client_for("viewer").get(reverse("api-finding-detail", args=[data["missing"].pk])).json()
    assert api_viewer["detail"]["cardNumber"] == "••••••••••••1111"
    # The operator only views topic B: its account number stays masked for them.
    b = client_for("operator").get(reverse("api-finding-detail", args=[data["altered_b"].pk])).json()
    assert b["detail"]["account_id"] == "•••••••8901"


@pytest.mark.integration
def test_message_drill_down_with_real_redis(client_for, data, topic_a):
    row = data["rows_a"][0]
    client = redis_client()
    record_forge(client, row.key, value=b"value-0", uuid=str(row.uuid), schema_version=1, created_ms=1)
    try:
        response = client_for("viewer").get(reverse("dashboard:message", args=[row.uuid]))
        t = response.context["t"]
        assert t.published.offset == row.offset and len(t.deliveries) == 1
        assert t.cache.present and t.cache.holds_this_message and t.cache.hash_matches is True
        assert t.headers["hash"] == row.content_hash.hex() and t.headers["event"] == "bulk"
        assert [e.kind for e in t.events] == ["published", "consumed"]
        assert t.rebalances and t.rebalances[0].member == "member-1"
        assert b"cached bytes hash to the published hash" in response.content
        # The cache now holds altered bytes: the page says so.
        record_forge(client, row.key, value=b"tampered")
        t = client_for("viewer").get(reverse("dashboard:message", args=[row.uuid])).context["t"]
        assert t.cache.hash_matches is False
        api = client_for("viewer").get(reverse("api-message", args=[row.uuid])).json()
        assert api["cache"]["hash_matches"] is False and api["published"]["offset"] == row.offset
    finally:
        records_drop(client, [row.key])
    missing = client_for("viewer").get(reverse("dashboard:message", args=[data["missing"].uuid])).context["t"]
    assert missing.deliveries == [] and not missing.cache.present
    assert [e.kind for e in missing.events] == ["published", "lost", "finding"]


def test_message_search_redirects_and_unknown_is_404(client_for, data):
    client = client_for("viewer")
    target = data["missing"].uuid
    response = client.get(reverse("dashboard:message-search"), {"uuid": str(target)})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:message", args=[target])
    assert client.get(reverse("dashboard:message-search"), {"uuid": "not-a-uuid"}).status_code == 200
    assert client.get(reverse("dashboard:message", args=[uuid.uuid4()])).status_code == 404


def test_loads_page_hides_retrieval_key_without_payload_permission(client_for, data, topic_a, people):
    load = Load.objects.create(topic=topic_a, source="sql", total=10, published=4, requested_by=people["operator"])
    as_viewer = client_for("viewer").get(reverse("dashboard:loads")).content.decode()
    as_operator = client_for("operator").get(reverse("dashboard:loads")).content.decode()
    assert str(load.pk)[:8] not in as_viewer or load.retrieval_key not in as_viewer
    assert load.retrieval_key not in as_viewer and load.retrieval_key in as_operator
    detail = client_for("operator").get(reverse("dashboard:load", args=[load.pk]))
    assert detail.status_code == 200 and b"40%" in detail.content


def test_windows_rebalances_and_audit_pages(client_for, data, topic_a):
    client = client_for("viewer")
    windows = client.get(reverse("dashboard:windows"), {"topic": topic_a.name}).context["page"].rows
    assert sum(w.published_count for w in windows) == 6 and sum(w.consumed_count for w in windows) == 5
    rebalances = client.get(reverse("dashboard:rebalances")).context["page"].rows
    assert [r.member for r in rebalances] == ["member-1"]
    actions = client.get(reverse("dashboard:actions")).context["page"].rows
    assert [a.action for a in actions if a.action != "grant"] == ["reconcile"]  # grants: recon.services.grants


def test_findings_rows_offer_only_what_applies(client_for, data, topic_a):
    import re

    orphan = Finding.objects.create(
        topic=topic_a,
        category="orphan",
        classification="exception",
        uuid=uuid.uuid4(),
        detail={"reason": "no usable uuid header"},
    )
    dead = Finding.objects.create(
        topic=topic_a,
        category="dead-lettered",
        classification="exception",
        key="client:7",
        detail={
            "reason": 'KafkaException: KafkaError{code=_MSG_TIMED_OUT,val=-192,str="Local: Message timed out"}',
            "partition": 0,
            "offset": 3,
            "attempts": 2,
        },
    )
    acked = Finding.objects.create(
        topic=topic_a, category="missing", classification="exception", uuid=uuid.uuid4(), status="acknowledged"
    )
    html = (
        client_for("operator")
        .get(reverse("dashboard:findings"), {"topic": topic_a.name, "rows": "finding"})
        .content.decode()
    )

    def row(finding) -> str:
        return re.search(rf'<tr data-finding="{finding.pk}">(.*?)</tr>', html, re.S).group(1)

    assert row(data["missing"]).count('<details class="menu">') == 1 and "Replay" in row(data["missing"])
    assert "Acknowledge" in row(orphan) and "Replay" not in row(orphan)  # a replay cannot fix an orphan
    assert "Reprocess" in row(dead) and "Replay" not in row(dead)
    assert "<details" not in row(acked)  # someone is on it: nothing to offer
    # Reason in words, not the raw exception text.
    assert (
        "Kafka did not acknowledge in time" in row(dead)
        and "(2 attempts)" in row(dead)
        and "KafkaError{" not in row(dead)
    )
    assert "no usable uuid header" in row(orphan)
    # Every input has a label.
    for input_id in re.findall(r'<input[^>]*\bid="([^"]+)"', html):
        assert f'for="{input_id}"' in html, input_id
    assert not re.search(r'<input(?![^>]*type="(?:hidden|checkbox)")(?![^>]*\bid=)[^>]*>', html.split("<table", 1)[1])


def test_findings_sort_oldest_first(client_for, data, topic_a):
    client = client_for("viewer")
    url = reverse("dashboard:findings")
    newest = [f.pk for f in client.get(url, {"rows": "finding"}).context["page"].rows]
    oldest = [f.pk for f in client.get(url, {"sort": "oldest", "rows": "finding"}).context["page"].rows]
    assert oldest == list(reversed(newest)) and len(oldest) >= 2


def test_message_search_by_key_client_id_place_and_load(client_for, data, topic_a):
    client = client_for("viewer")
    url = reverse("dashboard:message-search")
    published = PublishedMessage.objects.filter(topic=topic_a).order_by("offset")
    first = published[0]
    # A key, or a client id, lists the key's messages.
    for query in (first.key, first.key.split(":")[1]):
        result = client.get(url, {"q": query, "topic": topic_a.name}).context["result"]
        assert [p.uuid for p in result.published] == [first.uuid], query
    everywhere = client.get(url, {"q": first.key}).context["result"]  # both topics have a client:0
    assert {p.topic_id for p in everywhere.published} == {topic_a.pk, data["altered_b"].topic_id}
    # Partition/offset needs the topic, then finds the one message.
    assert "Choose the topic" in client.get(url, {"q": f"{first.partition}/{first.offset}"}).content.decode()
    result = client.get(url, {"q": f"{first.partition}/{first.offset}", "topic": topic_a.name}).context["result"]
    assert [p.uuid for p in result.published] == [first.uuid]
    # A load id opens the load; a message UUID its page.
    load = Load.objects.create(topic=topic_a, source="ods")
    assert client.get(url, {"q": str(load.pk)})["Location"] == reverse("dashboard:load", args=[load.pk])
    assert client.get(url, {"q": str(first.uuid)})["Location"] == reverse("dashboard:message", args=[first.uuid])
    # An outsider finds nothing of topic A.
    outsider = client_for("outsider").get(url, {"q": first.key}).context["result"]
    assert outsider.published == [] and outsider.consumed_only == []


def test_load_page_summarises_ids_and_says_what_was_skipped(client_for, topic_a, people):
    import datetime as dt

    from core.hashing import content_hash
    from recon.services.ledger import PublishedRow, published_record

    load = Load.objects.create(
        topic=topic_a,
        source="ods",
        status="done",
        client_ids=list(range(1, 101)),
        total=60,
        published=60,
        error='KafkaException: KafkaError{code=_MSG_TIMED_OUT,val=-192,str="Local: Message timed out"}',
    )
    at = dt.datetime.now(dt.UTC)
    published_record(
        topic=topic_a,
        rows=[
            PublishedRow(uuid.uuid4(), 0, i, f"client:{i}", "bulk", content_hash(b"x"), 10, at, load_id=load.pk)
            for i in range(1, 61)
        ],
    )
    html = client_for("viewer").get(reverse("dashboard:load", args=[load.pk])).content.decode()
    ids = html.split('id="load-ids">', 1)[1].split("</dd>", 1)[0]
    assert "100 requested (1, 2, 3" in ids and "and 80 more" in ids and "99, 100" not in ids
    assert "40 skipped: not in ods" in ids and "(61, 62," in ids and "and 20 more" in ids
    assert "Kafka did not acknowledge in time" in html  # the error in words, the raw text folded away
    assert html.index("Kafka did not acknowledge") < html.index("KafkaError{")


def test_audit_outcomes_are_coloured_by_meaning(client_for, data, topic_a, people):
    from recon.services.actions import operator_action_record

    for outcome in ("queued", "done: 3 stored", "done: 1 dead, 2 stored", "refused"):
        operator_action_record(user=people["operator"], action="replay", topic=topic_a, outcome=outcome)
    html = client_for("operator").get(reverse("dashboard:actions")).content.decode()
    assert '<td class="info">queued</td>' in html and '<td class="ok">done: 3 stored</td>' in html
    assert '<td class="warn">done: 1 dead, 2 stored</td>' in html and '<td class="bad">refused</td>' in html
