"""One finding per problem, on the real Kafka, Redis and PostgreSQL: a reload of unchanged
data is one problem with a count and its keys as members; the default list hides info and
puts the worst first; the ageing table and the evidence pack count problems, not keys."""

import pytest
from django.urls import reverse
from django.utils import timezone

from core.ods import ods_seed
from kafkacache.consumer import FeedConsumer
from kafkacache.services.change_feed import change_publish
from kafkacache.services.loads import load_run, load_start
from recon.models import Finding, Topic
from recon.selectors.evidence import evidence_pack
from recon.selectors.findings import findings_ageing, findings_filtered, problems_of
from tests.documents import client_doc
from tests.people import people_make
from tests.replay import conftest as replay_fixtures
from tests.replay.conftest import feed_topics_make, fetch, reconcile

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

N = 12
client_ids = replay_fixtures.client_ids  # the fixture, shared


@pytest.fixture
def feed(settings, unique_name):
    return feed_topics_make(settings, unique_name)


@pytest.fixture
def people(feed):
    return people_make(viewed=[feed.bulk, feed.change], operated=[feed.bulk], roles=("viewer", "operator"))


def _reload_unchanged(topic: Topic):
    """The same N clients loaded twice, unchanged, and consumed: every key republished."""
    ods_seed(clients=N, using="default")
    loads = [
        load_run(load_id=load_start(topic=topic, source="ods", client_ids=[], requested_by=None, queue=False).id)
        for _ in range(2)
    ]
    FeedConsumer().process_batch(fetch(topic.name, 0, 2 * N))
    reconcile(topic)
    return loads


def _lose_two(topic: Topic, client_ids):
    """Four adds; the subscriber never gets two of them: a lost range, critical."""
    published = [change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(4)]
    messages = fetch(topic.name, published[0].offset, 4)
    FeedConsumer().process_batch(messages[:2])
    reconcile(topic)
    return published[2:]


def test_a_reload_of_unchanged_data_is_one_problem_whose_members_are_the_keys(feed, people, cache):
    topic = feed.bulk
    _, again = _reload_unchanged(topic)
    members = Finding.objects.filter(topic=topic, category="republished")
    keys = {f"client:{i}" for i in range(1, N + 1)}
    assert set(members.values_list("key", flat=True)) == keys  # each key still a member: per-key repair stays
    problems = problems_of(findings_filtered(user=people["viewer"], topic=topic, info=True))
    assert [(p["category"], p["members"], p["severity"]) for p in problems] == [("republished", N, "info")]
    assert problems[0]["problem"] == f"republished:load:{again.id}"
    member_keys = findings_filtered(user=people["viewer"], topic=topic, problem=problems[0]["problem"])
    assert set(member_keys.values_list("key", flat=True)) == keys

    # The ageing table: one unresolved problem, holding N findings.
    ageing = findings_ageing(topics=Topic.objects.filter(pk=topic.pk), now=timezone.now())
    assert [(r["severity"], r["total"], r["findings"]) for r in ageing] == [("info", 1, N)]

    # The evidence pack: one row for the problem, with its count and keys.
    now = timezone.now()
    pack = evidence_pack(
        topic=topic, start=now.replace(year=now.year - 1), end=now, user=people["viewer"], with_payloads=False
    )
    assert [(f["category"], f["members"]) for f in pack["findings"]] == [("republished", N)]
    assert set(pack["findings"][0]["member_keys"]) == keys


def test_the_default_list_hides_info_and_puts_the_worst_first(feed, people, cache, client_ids, client):
    _reload_unchanged(feed.bulk)
    lost = _lose_two(feed.change, client_ids)
    client.force_login(people["viewer"])

    page = client.get(reverse("dashboard:findings"))
    assert page.status_code == 200
    rows = page.context["problems"]["rows"]
    # Two lost messages in one window and partition: one critical problem; the reload (info) hidden.
    assert [(r["category"], r["members"], r["severity"]) for r in rows] == [("missing", 2, "critical")]
    assert b'data-problem="republished' not in page.content and b"show info" in page.content

    shown = client.get(reverse("dashboard:findings"), {"info": "on"}).context["problems"]["rows"]
    assert [(r["category"], r["members"]) for r in shown] == [("missing", 2), ("republished", N)]

    # Its members a click away, each with its own message.
    members = client.get(reverse("dashboard:findings"), {"problem": rows[0]["problem"]})
    assert {f.uuid for f in members.context["page"].rows} == {p.uuid for p in lost}


browser, login = replay_fixtures.browser, replay_fixtures.login  # Debian's Chromium; a logged-in page


@pytest.mark.browser
def test_in_chromium_the_list_shows_one_row_per_problem_and_its_members_a_click_away(
    transactional_db, live_server, login, feed, cache, client_ids
):
    people_make(viewed=[feed.bulk, feed.change], operated=[], roles=("viewer",))
    _reload_unchanged(feed.bulk)
    lost = _lose_two(feed.change, client_ids)
    page = login("viewer1")
    page.goto(live_server.url + reverse("dashboard:findings"))
    rows = page.locator("#problems tbody tr")
    # Info hidden: the one critical problem, counted, not one row per message.
    assert rows.count() == 1
    assert rows.first.get_attribute("data-severity") == "critical"
    assert rows.first.locator("[data-field=members]").inner_text() == "2"

    with page.expect_navigation():
        page.click("#show-info")
    rows = page.locator("#problems tbody tr")
    assert [rows.nth(i).get_attribute("data-severity") for i in range(rows.count())] == ["critical", "info"]
    assert rows.nth(1).locator("[data-field=members]").inner_text() == str(N)

    # Its members: one row per lost message, each a click from its message.
    with page.expect_navigation():
        rows.first.locator("a.members").click()
    members = page.locator("tr[data-finding]")
    assert members.count() == 2
    for message in lost:
        assert page.locator(f"tr[data-finding] a[href*='{message.uuid}']").count() == 1


def test_the_ageing_table_counts_a_problem_in_each_bucket_its_members_are_in_and_a_keyless_finding_alone(
    unique_name,
):
    """Findings written without a problem key are each their own problem; a problem whose members
    span buckets counts once in each of them and once in the total; the oldest is the oldest member."""
    import datetime as dt

    topic = Topic.objects.create(name=unique_name("ageing"))
    now = timezone.now()

    def finding(problem: str, age: dt.timedelta, status: str = Finding.Status.OPEN) -> Finding:
        made = Finding.objects.create(
            topic=topic,
            category="missing",
            classification="exception",
            severity="critical",
            problem=problem,
            status=status,
        )
        Finding.objects.filter(pk=made.pk).update(created_at=now - age)
        return made

    minutes, hours, days = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
    finding("", 10 * minutes)
    keyless_oldest = finding("", 3 * days)
    finding("lost:range:1", 20 * minutes)
    finding("lost:range:1", 2 * hours)
    finding("lost:range:1", 5 * hours)
    finding("lost:range:2", 30 * minutes)
    finding("lost:range:2", 9 * days, status=Finding.Status.RESOLVED)  # resolved: not counted
    finding("", 2 * minutes, status=Finding.Status.ACCEPTED)

    (row,) = findings_ageing(topics=Topic.objects.filter(pk=topic.pk), now=now)
    assert (row["severity"], row["total"], row["findings"]) == ("critical", 4, 6)
    assert row["buckets"] == [("< 1 h", 3), ("1-24 h", 1), ("1-7 days", 1), ("> 7 days", 0)]
    assert row["oldest"] == keyless_oldest and row["oldest_at"] == now - 3 * days
