"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against a live server.

Logged in through the real login form (the `browser` and `login` fixtures: tests/browser.py).
"""

import datetime as dt

import pytest
from django.urls import reverse
from plotly import offline as plotly_offline

from recon.models import Finding, OperatorAction

pytestmark = [pytest.mark.browser, pytest.mark.integration]
DASH = "\N{EN DASH}"  # between a range's two ends on the page


def test_viewer_sees_no_action_buttons_and_a_forged_post_gets_403(transactional_db, live_server, login, data):
    page = login("viewer1")
    page.goto(live_server.url + reverse("dashboard:findings"))
    assert page.locator(f"tr[data-finding='{data['missing'].pk}']").count() == 1
    assert page.locator("form.ack button").count() == 0
    page.goto(live_server.url + reverse("dashboard:loads"))
    assert page.locator("#start-load").count() == 0
    # The viewer forges the operator's form post from inside their own session, CSRF token and all.
    status = page.evaluate(
        """async (url) => {
            const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
            const body = new URLSearchParams({comment: 'forged', csrfmiddlewaretoken: token});
            const r = await fetch(url, {method: 'POST', body, credentials: 'same-origin'});
            return r.status;
        }""",
        reverse("dashboard:finding-acknowledge", args=[data["missing"].pk]),
    )
    assert status == 403
    assert Finding.objects.get(pk=data["missing"].pk).status == Finding.Status.OPEN


def test_operator_acknowledges_a_finding_in_the_ui(transactional_db, live_server, login, data):
    missing = data["missing"]
    page = login("operator1")
    page.goto(live_server.url + reverse("dashboard:findings"))
    row = page.locator(f"tr[data-finding='{missing.pk}']")
    row.locator("summary", has_text="Actions").click()  # one actions menu per row
    row.locator("input[name=comment]").fill("checked with the ODS team")
    row.locator("button", has_text="Acknowledge").click()
    page.wait_for_selector(".msg")
    assert f"Finding {missing.pk} acknowledged." in page.inner_text(".msg")
    assert page.locator(f"tr[data-finding='{missing.pk}'] .badge.st-acknowledged").count() == 1
    missing.refresh_from_db()
    assert (missing.status, missing.comment) == (Finding.Status.ACKNOWLEDGED, "checked with the ODS team")
    assert OperatorAction.objects.filter(
        action="acknowledge", target=f"finding:{missing.pk}", outcome="accepted"
    ).exists()


def test_overview_chart_renders_with_data(transactional_db, live_server, login, data, topic_a):
    page = login("viewer1")
    page.goto(live_server.url + reverse("dashboard:overview") + "?range=6h")
    page.wait_for_selector("#flow-0.js-plotly-plot .main-svg", timeout=15000)
    section = page.locator(f"section[data-topic='{topic_a.name}']")
    # Bars were drawn: plotly renders one path per bar point.
    assert section.locator(".js-plotly-plot .barlayer .point").count() >= 2
    assert section.locator(".js-plotly-plot").count() == 2  # flow chart and categories chart
    # The plotly.js in the page is the copy inside the plotly package, served by us.
    assert page.evaluate("() => window.Plotly && Plotly.version") == plotly_offline.get_plotlyjs_version()


def test_operator_assigns_fixes_and_the_next_reconcile_verifies_a_break(transactional_db, live_server, login, data):
    from recon.services.windows import window_reconcile
    from tests.dashboard.conftest import consume

    missing = data["missing"]
    page = login("operator1")
    page.goto(live_server.url + reverse("dashboard:finding", args=[missing.pk]))
    assert page.get_attribute("#next-step", "data-next") == "replay"  # a lost message: the repair comes first
    page.click("#assign-me button")
    page.wait_for_selector(".msg")
    assert f"Finding {missing.pk} assigned." in page.inner_text(".msg")
    assert page.inner_text("#break-owner") == "operator1"
    assert page.locator("#assign-me").count() == 0  # mine now
    page.click("#more-actions summary")  # the lifecycle's other steps, folded away
    page.click("#investigate button")
    page.wait_for_selector("#break-status:has-text('Investigating')")
    page.click("#more-actions summary")
    page.fill("#fix input[name=comment]", "ODS re-sent the record")
    page.click("#fix button")
    page.wait_for_selector("#break-status:has-text('Fixed')")
    assert "ODS re-sent the record" in page.inner_text("#break-comments")
    # My breaks lists it until it is verified.
    page.goto(live_server.url + reverse("dashboard:my-breaks"))
    assert page.locator(f"tr[data-finding='{missing.pk}']").count() == 1

    # Verify: the message reaches the subscriber, the window is reconciled again, the break resolves.
    consume(missing.topic, [data["rows_a"][5]], group=missing.topic.consumer_group)
    window_reconcile(window_id=missing.window_id, now=data["now"] + dt.timedelta(days=1))
    page.goto(live_server.url + reverse("dashboard:finding", args=[missing.pk]))
    assert page.inner_text("#break-status") == "Resolved (verified)"
    history = page.locator("#break-history li").all_inner_texts()
    assert [h.split(" ")[2].rstrip(":") for h in history[1:]] == ["assign", "investigate", "fix", "resolve"]
    page.goto(live_server.url + reverse("dashboard:my-breaks"))
    assert page.locator(f"tr[data-finding='{missing.pk}']").count() == 0
    page.goto(live_server.url + reverse("dashboard:overview"))
    assert page.locator("#ageing").count() == 1


def test_pages_draw_under_the_csp_with_no_violation(transactional_db, live_server, login, data, topic_a):
    """The real CSP header (no inline script or style) is sent, and the pages with
    charts, filters and forms report no violation in the browser."""
    page = login("operator1")
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(f"{page.url} {m.text[:90]}") if "Content Security" in m.text else None
    )
    response = page.goto(live_server.url + reverse("dashboard:overview") + "?range=6h")
    policy = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["style-src-attr"] == "'unsafe-inline'"  # plotly's SVG attributes only (config/settings.py)
    page.wait_for_selector("#flow-0.js-plotly-plot .main-svg", timeout=15000)
    for name in ("dashboard:findings", "dashboard:replays", "dashboard:loads", "dashboard:alerts"):
        page.goto(live_server.url + reverse(name))
    # The alerts filter submits on change through static/kafkacache/page.js.
    with page.expect_navigation():
        page.select_option("select[name=status]", index=1)
    assert "status=" in page.url
    assert violations == [], (page.url, violations)


def test_on_call_sees_amber_while_the_consumer_is_down_and_finds_the_lost_message_by_key(
    transactional_db, live_server, login, data, topic_a
):
    from monitoring.models import LagSample
    from tests.dashboard.conftest import publish

    now = dt.datetime.now(dt.UTC)
    publish(topic_a, 4, at=now - dt.timedelta(seconds=30), key_prefix="late:")  # not consumed yet
    LagSample.objects.create(
        group=topic_a.consumer_group, topic=topic_a.name, partition=0, committed=1, end=5, lag=4, at=now
    )
    page = login("viewer1")
    page.goto(live_server.url + reverse("dashboard:overview"))
    card = page.locator(f"section.topic[data-topic='{topic_a.name}']")
    assert card.get_attribute("data-state") == "bad"  # the fixture's missing finding is open
    assert "not consumed yet, judged at" in card.inner_text()
    assert "sampled" in card.inner_text()
    lost = data["rows_a"][5]
    page.goto(live_server.url + reverse("dashboard:message-search"))
    page.fill("input[name=q]", lost.key)
    page.click("form[role=search] button[type=submit]")
    cell = page.locator(f"td[data-fate='{lost.uuid}']")
    assert "lost: published, never consumed" in cell.inner_text()


def test_operator_ticks_findings_and_assigns_them_to_themselves_in_one_click(
    transactional_db, live_server, login, data, topic_a
):
    """The list's bulk form: every finding the operator may act on has a tick box (the viewed-only
    topic's have none); one Apply assigns them all, each audited; every control is labelled."""
    from tests.browser import unlabelled_controls

    extra = [
        Finding.objects.create(
            topic=topic_a,
            key=f"client:{n}",
            category=Finding.Category.DUPLICATE,
            classification=Finding.Classification.EXCEPTION,
            severity=Finding.Severity.WARNING,
        )
        for n in (900, 901)
    ]
    mine = [data["missing"], *extra]
    page = login("operator1")
    page.goto(live_server.url + reverse("dashboard:findings") + "?rows=finding")
    assert page.locator(f"#pick-{data['altered_b'].pk}").count() == 0  # topic B: viewed only
    assert unlabelled_controls(page) == []
    page.check("#pick-all")  # page.js ticks every box of the bulk form
    assert all(page.is_checked(f"#pick-{f.pk}") for f in mine)
    page.select_option("#bulk-action", "assign_me")
    with page.expect_navigation():
        page.click("#bulk button[type=submit]:not([formaction])")
    assert page.inner_text(".msg") == "3 done."
    for f in mine:
        f.refresh_from_db()
        assert f.assigned_user.username == "operator1"
        assert OperatorAction.objects.filter(action="finding.assign", target=f"finding:{f.pk}").exists()

    # The finding page: one primary next step, the rest folded away, every control labelled.
    page.goto(live_server.url + reverse("dashboard:finding", args=[extra[0].pk]))
    assert page.get_attribute("#next-step", "data-next") == "acknowledge"
    assert page.locator("#next-step button:not(.secondary)").count() == 1
    page.click("#more-actions summary")
    assert unlabelled_controls(page) == []


def test_a_topic_admin_makes_a_second_operator_in_four_clicks(transactional_db, live_server, login, data, topic_a):
    """Topics -> the topic -> a username typed, the role chosen -> Add: the person operates the topic,
    audited. The role list starts at viewer (the least), so choosing operator counts as a click."""
    from recon import access
    from tests.browser import unlabelled_controls
    from tests.factories import PASSWORD, UserFactory

    lead = UserFactory(username="lead1", password=PASSWORD)
    access.topic_grant(lead, topic_a, "admin")
    second = UserFactory(username="second1", password=PASSWORD)
    clicks = 0
    page = login("lead1")
    with page.expect_navigation():
        page.click("header nav a:has-text('Topics')")
    clicks += 1
    with page.expect_navigation():
        page.click(f"#topics tr[data-topic='{topic_a.name}'] a")
    clicks += 1
    assert unlabelled_controls(page) == []
    page.fill("#add-member input[name=username]", "second1")  # typed, not a click
    page.select_option("#add-member select[name=role]", "operator")
    clicks += 1
    with page.expect_navigation():
        page.click("#add-member button")
    clicks += 1
    assert page.inner_text(".msg") == f"second1 is now operator of {topic_a.name}."
    assert page.inner_text("#members tr[data-member='second1'] [data-field=role]") == "operator"
    assert access.can_operate(second, topic_a)
    entry = OperatorAction.objects.get(action="topic.member_set", target="user:second1")
    assert (entry.user, entry.detail["before"], entry.detail["after"]) == (lead, None, "operator")
    assert clicks == 4
    # The lead's own row offers no change: another admin changes it.
    assert page.locator("#members form[data-change='lead1']").count() == 0


def _utc(value: str) -> dt.datetime:
    """A time as plotly keeps an axis range ("2026-01-01 10:00:00", its own zone dropped or kept) or ISO."""
    at = dt.datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def test_the_chosen_range_is_in_the_url_and_survives_reload_back_and_forward(
    transactional_db, live_server, login, data, topic_a
):
    """The range picker's choice lives in the URL: a reload, Back and Forward show the same range,
    and the flow chart's x range is the span of windows its note names (fitted to the data)."""
    overview = live_server.url + reverse("dashboard:overview")
    page = login("viewer1")  # lands on the overview, the default 24 h

    def shown() -> tuple[list[str], str]:
        page.wait_for_selector("#flow-0.js-plotly-plot .main-svg", timeout=15000)
        note = page.locator("#flow-0-span")
        drawn = [_utc(v) for v in page.evaluate("() => document.getElementById('flow-0').layout.xaxis.range")]
        asked = [_utc(note.get_attribute(name)) for name in ("data-from", "data-to")]
        assert drawn == asked  # the chart draws what the note says
        bar = page.locator("#flow-0 .barlayer .point path").first.bounding_box()
        assert bar is not None and bar["width"] >= 8  # not a sliver at the edge of the range
        return page.locator("#range a.button:not(.secondary)").all_inner_texts(), page.inner_text("#range-shown")

    def hours(printed: str) -> float:
        start, end = (
            dt.datetime.strptime(v.strip(), "%Y-%m-%d %H:%M") for v in printed.removesuffix(" UTC").split(DASH)
        )
        return (end - start).total_seconds() / 3600

    assert shown()[0] == ["24h"]
    with page.expect_navigation():
        page.click("#range a:has-text('6h')")
    assert page.url == overview + "?range=6h"
    preset, printed = shown()
    assert preset == ["6h"] and hours(printed) == 6
    page.reload()
    assert page.url == overview + "?range=6h" and shown()[0] == ["6h"]

    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    start, end = now - dt.timedelta(hours=3), now + dt.timedelta(minutes=1)
    page.fill("#range input[name=start]", f"{start:%Y-%m-%dT%H:%M}")
    page.fill("#range input[name=end]", f"{end:%Y-%m-%dT%H:%M}")
    with page.expect_navigation():
        page.click("#range button[type=submit]")
    assert f"start={start:%Y-%m-%dT%H%%3A%M}" in page.url and f"end={end:%Y-%m-%dT%H%%3A%M}" in page.url
    custom = shown()
    assert custom == ([], f"{start:%Y-%m-%d %H:%M} {DASH} {end:%Y-%m-%d %H:%M} UTC")
    custom_url = page.url
    page.reload()
    assert page.url == custom_url and shown() == custom

    page.go_back()
    assert page.url == overview + "?range=6h" and shown()[0] == ["6h"]
    page.go_forward()
    assert page.url == custom_url and shown() == custom
