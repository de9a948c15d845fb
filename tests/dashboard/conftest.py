"""The dashboard's test base: two topics and the four people of tests/people.py.

- viewer1:   views topics A and B
- operator1: operates topic A, only views topic B
- admin1:    superuser
- outsider1: logged in, no topic at all
Each logs in with tests.factories.PASSWORD; the browser fixtures are tests/browser.py's.
Ledger rows go in through recon.services.ledger (COPY into the real partitioned tables).
"""

import datetime as dt
import uuid

import pytest
from django.test import Client

from core.hashing import content_hash
from recon.models import Finding, RebalanceEvent, Topic, Window
from recon.services.actions import operator_action_record
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record, window_start
from tests.browser import browser, login  # noqa: F401  (Debian's Chromium; a logged-in page)
from tests.factories import TopicFactory
from tests.people import people_make

CARD = "4111111111111111"  # Luhn-valid test card number


@pytest.fixture
def topic_a(db, unique_name):
    return TopicFactory(name=unique_name("dash.a"), kind=Topic.Kind.BULK, consumer_group=unique_name("grp-a"))


@pytest.fixture
def topic_b(db, unique_name):
    return TopicFactory(name=unique_name("dash.b"), kind=Topic.Kind.CHANGE, consumer_group=unique_name("grp-b"))


@pytest.fixture
def people(topic_a, topic_b):
    return people_make(viewed=[topic_a, topic_b], operated=[topic_a])


@pytest.fixture
def client_for(people):
    def make(role: str) -> Client:
        client = Client()
        client.force_login(people[role])
        return client

    return make


def publish(topic: Topic, n: int, *, at: dt.datetime, key_prefix: str = "client:") -> list[PublishedRow]:
    rows = [
        PublishedRow(
            uuid=uuid.uuid4(),
            partition=i % 2,
            offset=i,
            key=f"{key_prefix}{i}",
            event_type="bulk",
            content_hash=content_hash(f"value-{i}".encode()),
            size=500,
            published_at=at + dt.timedelta(seconds=i),
        )
        for i in range(n)
    ]
    published_record(topic=topic, rows=rows)
    return rows


def consume(topic: Topic, rows: list[PublishedRow], *, group: str, delay_s: float = 0.5) -> None:
    consumed_record(
        topic=topic,
        rows=[
            ConsumedRow(
                uuid=r.uuid,
                group=group,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                content_hash=r.content_hash,
                published_at=r.published_at,
                consumed_at=r.published_at + dt.timedelta(seconds=delay_s),
                outcome="stored",
            )
            for r in rows
        ],
    )


@pytest.fixture
def data(topic_a, topic_b, people, reason_codes):
    """A little of everything on both topics: ledger rows, windows, findings, a rebalance, actions."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # An hour ago, at the start of a window: the six rows a second apart are in one window
    # (from any moment they could straddle two, and `.first()` would hold fewer).
    at = window_start(topic_a, now - dt.timedelta(hours=1))
    rows_a = publish(topic_a, 6, at=at)
    consume(topic_a, rows_a[:5], group=topic_a.consumer_group)  # the sixth is missing
    rows_b = publish(topic_b, 3, at=at)
    consume(topic_b, rows_b, group=topic_b.consumer_group)
    missing = Finding.objects.create(
        topic=topic_a,
        window=Window.objects.filter(topic=topic_a).first(),
        uuid=rows_a[5].uuid,
        key=rows_a[5].key,
        category=Finding.Category.MISSING,
        classification=Finding.Classification.EXCEPTION,
        severity=Finding.Severity.CRITICAL,
        detail={"cardNumber": CARD, "note": f"seen card {CARD} in source"},
    )
    altered_b = Finding.objects.create(
        topic=topic_b,
        uuid=rows_b[0].uuid,
        key=rows_b[0].key,
        category=Finding.Category.ALTERED,
        classification=Finding.Classification.MISMATCH,
        severity=Finding.Severity.WARNING,
        detail={"fields": ["cards[0].number"], "account_id": "12345678901"},
    )
    rebalance = RebalanceEvent.objects.create(
        group=topic_a.consumer_group,
        member="member-1",
        kind="assigned",
        partitions=[{"topic": topic_a.name, "partition": 0}],
    )
    RebalanceEvent.objects.filter(pk=rebalance.pk).update(at=at + dt.timedelta(seconds=2))  # `at` is auto_now_add
    operator_action_record(user=people["operator"], action="reconcile", topic=topic_a, target="window:1")
    operator_action_record(user=people["admin"], action="user-change", topic=None, target="user:9")
    return {"rows_a": rows_a, "rows_b": rows_b, "missing": missing, "altered_b": altered_b, "now": now}
