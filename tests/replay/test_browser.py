"""End to end in headless Chromium: an operator's replay click restores a lost message in Redis.

The click posts the finding page's form to the live server, which queues the
replay; a real Celery worker process runs it (Kafka re-read, the feed's consumer
logic, Redis, ledger); the next reconcile resolves the finding naming the replay.
"""

import time

import pytest
from django.urls import reverse

from kafkacache.consumer import FeedConsumer
from kafkacache.services.change_feed import change_publish
from recon.models import Finding, Replay
from tests.cache_state import cached
from tests.documents import client_doc
from tests.factories import UserFactory

from .conftest import fetch, finding_of, reconcile

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_an_operators_replay_click_restores_the_lost_message_in_redis(
    transactional_db,
    live_server,
    login,
    feed,
    people,
    client_ids,
    cache,
    celery_worker_process,
):
    topic = feed.change
    kept, lost = (change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(2))
    messages = fetch(topic.name, kept.offset, 2)
    FeedConsumer().process_batch(messages[:1])  # the subscriber never got the second one
    reconcile(topic)
    missing = finding_of(topic, "missing", lost.uuid)
    assert cached(cache, lost.key) is None

    page = login("operator1")
    page.goto(live_server.url + reverse("dashboard:finding", args=[missing.pk]))
    page.fill(f"#replay-{lost.uuid} input[name=reason]", "lost between Kafka and Redis")
    page.click(f"#replay-{lost.uuid} button[value=kafka]")
    page.wait_for_selector("#replay-status")
    replay = Replay.objects.get()
    assert page.url == live_server.url + reverse("dashboard:replay", args=[replay.pk])
    assert "queued." in page.inner_text(".msg")

    deadline = time.monotonic() + 60
    while cached(cache, lost.key) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cached(cache, lost.key).value == messages[1].value()
    page.wait_for_function("() => document.querySelector('#replay-status').textContent === 'done'", timeout=20000)
    assert page.locator("tr[data-item] .badge").all_inner_texts() == ["Stored in Redis"]
    replay.refresh_from_db()
    assert (replay.status, replay.outcome, replay.requested_by) == ("done", {"stored": 1}, people["operator"])

    reconcile(topic)
    missing.refresh_from_db()
    assert (missing.status, missing.detail["replay"]) == (Finding.Status.RESOLVED, str(replay.pk))


def test_four_eyes_request_approve_replay_verified(
    transactional_db,
    live_server,
    login,
    feed,
    people,
    client_ids,
    cache,
    celery_worker_process,
):

    from recon import access
    from recon.models import OperatorAction
    from tests.factories import PASSWORD

    topic = feed.change
    topic.approval_always = True
    topic.save()
    checker = UserFactory(username="checker1", password=PASSWORD)
    access.topic_grant(checker, topic, "operator")
    kept, lost = (change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(2))
    messages = fetch(topic.name, kept.offset, 2)
    FeedConsumer().process_batch(messages[:1])
    reconcile(topic)
    missing = finding_of(topic, "missing", lost.uuid)

    maker = login("operator1")
    maker.goto(live_server.url + reverse("dashboard:finding", args=[missing.pk]))
    maker.fill(f"#replay-{lost.uuid} input[name=reason]", "lost between Kafka and Redis")
    maker.click(f"#replay-{lost.uuid} button[value=kafka]")
    maker.wait_for_selector("#replay-status")
    replay = Replay.objects.get()
    assert "awaits a second operator" in maker.inner_text(".msg")
    assert maker.inner_text("#replay-status") == "pending"
    assert maker.locator("#approve").count() == 0  # never the requester's own
    assert maker.locator(f"#preview tr[data-preview='{lost.uuid}'] .badge").inner_text() == "apply"
    time.sleep(1)
    assert cached(cache, lost.key) is None  # nothing runs while it waits

    approver = login("checker1")
    approver.goto(live_server.url + reverse("dashboard:replay", args=[replay.pk]))
    # The approver sees the same dry run the requester saw.
    assert approver.locator(f"#preview tr[data-preview='{lost.uuid}']").count() == 1
    approver.fill("#approve input[name=comment]", "one message, checked")
    approver.click("#approve button")
    approver.wait_for_selector(".msg")
    deadline = time.monotonic() + 60
    while cached(cache, lost.key) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cached(cache, lost.key).value == messages[1].value()
    approver.wait_for_function("() => document.querySelector('#replay-status').textContent === 'done'", timeout=20000)
    assert "checker1" in approver.inner_text("#approval")
    replay.refresh_from_db()
    assert (replay.requested_by, replay.decided_by, replay.status) == (people["operator"], checker, "done")
    entry = OperatorAction.objects.get(action="replay.approve", outcome="approved: queued")
    assert (entry.detail["requested_by"], entry.detail["decided_by"]) == ("operator1", "checker1")

    reconcile(topic)  # verified: the reconcile resolves the finding naming the replay
    missing.refresh_from_db()
    assert (missing.status, missing.detail["replay"]) == (Finding.Status.RESOLVED, str(replay.pk))


def test_an_ops_engineer_closes_a_missing_message_from_the_overview_in_four_clicks(
    transactional_db,
    live_server,
    login,
    feed,
    people,
    client_ids,
    cache,
    celery_worker_process,
):
    """Find it on the overview, drill to the message, fix it, see it verified and closed.

    Typing a reason is not a click; every click and page change is counted.
    """
    topic = feed.change
    kept, lost = (change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(2))
    messages = fetch(topic.name, kept.offset, 2)
    FeedConsumer().process_batch(messages[:1])  # the subscriber never got the second one
    reconcile(topic)
    missing = finding_of(topic, "missing", lost.uuid)
    clicks = 0

    page = login("operator1")  # lands on the overview
    section = page.locator(f"section[data-topic='{topic.name}']")
    bar = section.locator("[id^=categories-] .barlayer .point path").first
    bar.wait_for(timeout=15000)
    # 1. The red "Missing" bar of the findings chart opens the list filtered to it.
    bar.scroll_into_view_if_needed()  # below the fold: the overview also shows break ageing and lag status
    box = bar.bounding_box()
    assert box is not None
    with page.expect_navigation():
        # plotly hears the click through its drag layer, over the bar: a real mouse click there.
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    clicks += 1
    assert "category=missing" in page.url and "severity=" in page.url
    row = page.locator(f"tr[data-finding='{missing.pk}']")
    assert "published, never consumed" in row.inner_text()

    # 2. Its message: the timeline says what happened.
    with page.expect_navigation():
        row.locator(f"a[href*='{lost.uuid}']").click()
    clicks += 1
    assert "Not consumed (yet)." in page.inner_text("body")

    # 3. Fix it: re-read from Kafka (the reason is typed, not clicked).
    page.fill(f"#replay-{lost.uuid} input[name=reason]", "lost between Kafka and Redis")
    with page.expect_navigation():
        page.click(f"#replay-{lost.uuid} button[value=kafka]")
    clicks += 1
    replay = Replay.objects.get()
    # The page follows the replay and then its verification by itself (no click).
    page.wait_for_selector("#verify-h", timeout=30000)
    page.wait_for_function("() => document.body.innerText.includes('all verified')", timeout=60000)
    assert cached(cache, lost.key).value == messages[1].value()

    # 4. Back to the message: its finding is closed, fixed by the replay and verified by a run.
    with page.expect_navigation():
        page.locator(f"tr[data-item] a[href*='{lost.uuid}']").first.click()
    clicks += 1
    body = page.inner_text("body")
    assert "fixed by replay" in body and "verified by run" in body
    missing.refresh_from_db()
    assert missing.status == Finding.Status.RESOLVED
    assert (missing.detail["replay"], missing.detail["resolved_by"]) == (str(replay.pk), "replay")
    assert missing.detail["verified_by_run"]
    assert clicks == 4


def test_an_approver_sees_the_request_counted_in_the_header_and_approves_it_from_the_inbox(
    transactional_db,
    live_server,
    login,
    feed,
    people,
    client_ids,
    cache,
    celery_worker_process,
):
    """Four eyes as people use it: the operator asks; the approver, on any page, sees the count
    in the header, opens the inbox and approves in one click; the replay runs and says who approved."""
    from recon import access
    from tests.factories import PASSWORD

    topic = feed.change
    topic.approval_always = True
    topic.save()
    checker = UserFactory(username="checker1", password=PASSWORD)
    access.topic_grant(checker, topic, "operator")
    kept, lost = (change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(2))
    messages = fetch(topic.name, kept.offset, 2)
    FeedConsumer().process_batch(messages[:1])
    reconcile(topic)
    missing = finding_of(topic, "missing", lost.uuid)

    maker = login("operator1")
    maker.goto(live_server.url + reverse("dashboard:finding", args=[missing.pk]))
    maker.fill(f"#replay-{lost.uuid} input[name=reason]", "lost between Kafka and Redis")
    maker.click(f"#replay-{lost.uuid} button[value=kafka]")
    maker.wait_for_selector("#replay-status")
    replay = Replay.objects.get()
    assert "Verification starts when the replay ends" in maker.inner_text("#verify-note")
    assert maker.locator("#approvals-count").count() == 0  # nothing waits for the requester

    approver = login("checker1")  # lands on the overview
    assert approver.inner_text("#approvals-count .badge") == "1"
    with approver.expect_navigation():
        approver.click("#approvals-count")
    row = approver.locator(f"#approvals tr[data-replay='{replay.pk}']")
    assert "operator1" in row.inner_text() and "lost between Kafka and Redis" in row.inner_text()
    with approver.expect_navigation():
        row.locator("button", has_text="Approve and run").click()
    assert approver.url == live_server.url + reverse("dashboard:approvals")
    assert "approved and queued" in approver.inner_text(".msg")
    assert approver.locator("#approvals-count").count() == 0
    assert approver.locator("#inbox-empty").count() == 1

    deadline = time.monotonic() + 60
    while cached(cache, lost.key) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cached(cache, lost.key).value == messages[1].value()
    approver.goto(live_server.url + reverse("dashboard:replay", args=[replay.pk]))
    assert approver.inner_text("#approved-by") == "checker1"
    assert "Approved by checker1" in approver.inner_text("#approval")
    replay.refresh_from_db()
    assert (replay.requested_by, replay.decided_by) == (people["operator"], checker)


def test_the_on_call_loop_with_four_eyes_takes_seven_clicks(
    transactional_db,
    live_server,
    login,
    feed,
    people,
    client_ids,
    cache,
    celery_worker_process,
):
    """docs/operations.md "The on-call loop in clicks", with a second operator approving: see the
    problem, follow it to its cause, ask for the fix, have it approved, see it verified. Typing is
    not a click; every click is counted, each person's included."""
    from recon import access
    from tests.factories import PASSWORD

    topic = feed.change
    topic.approval_always = True
    topic.save()
    checker = UserFactory(username="checker1", password=PASSWORD)
    access.topic_grant(checker, topic, "operator")
    kept, lost = (change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(2))
    messages = fetch(topic.name, kept.offset, 2)
    FeedConsumer().process_batch(messages[:1])  # the subscriber never got the second one
    reconcile(topic)
    missing = finding_of(topic, "missing", lost.uuid)
    clicks = 0

    # See it: the red bar of the findings chart on the overview (where the login lands).
    maker = login("operator1")
    bar = maker.locator(f"section[data-topic='{topic.name}'] [id^=categories-] .barlayer .point path").first
    bar.wait_for(timeout=15000)
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box is not None
    with maker.expect_navigation():
        maker.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # plotly's drag layer
    clicks += 1
    row = maker.locator(f"tr[data-finding='{missing.pk}']")
    assert "published, never consumed" in row.inner_text()

    # Follow it to its cause: the message's timeline.
    with maker.expect_navigation():
        row.locator(f"a[href*='{lost.uuid}']").click()
    clicks += 1
    assert "Not consumed (yet)." in maker.inner_text("body")

    # Fix it: a replay from Kafka, which this topic runs only once a second operator approves.
    maker.fill(f"#replay-{lost.uuid} input[name=reason]", "lost between Kafka and Redis")
    with maker.expect_navigation():
        maker.click(f"#replay-{lost.uuid} button[value=kafka]")
    clicks += 1
    assert "awaits a second operator" in maker.inner_text(".msg")
    time.sleep(1)
    assert cached(cache, lost.key) is None  # nothing runs before the approval

    # The second operator: the count in the header on any page, the inbox, Approve and run.
    approver = login("checker1")
    with approver.expect_navigation():
        approver.click("#approvals-count")
    clicks += 1
    replay = Replay.objects.get()
    with approver.expect_navigation():
        approver.locator(f"#approvals tr[data-replay='{replay.pk}'] button", has_text="Approve and run").click()
    clicks += 1

    # See it verified: the replay page follows the run and then its verification by itself.
    with approver.expect_navigation():
        approver.click(".msg a#decided")
    clicks += 1
    approver.wait_for_function("() => document.body.innerText.includes('all verified')", timeout=60000)
    assert cached(cache, lost.key).value == messages[1].value()
    with approver.expect_navigation():
        approver.locator(f"tr[data-item] a[href*='{lost.uuid}']").first.click()
    clicks += 1
    body = approver.inner_text("body")
    assert "fixed by replay" in body and "verified by run" in body
    missing.refresh_from_db()
    assert missing.status == Finding.Status.RESOLVED and missing.detail["verified_by_run"]
    replay.refresh_from_db()
    assert (replay.requested_by, replay.decided_by) == (people["operator"], checker)
    assert clicks == 7
