"""Find a message by its key: published, consumed, dead-lettered and cached, with what happened to each.

The ledgers are the real partitioned tables (COPY through recon.services.ledger); Redis is the real one.
"""

import datetime as dt

from django.urls import reverse

from recon.services.ledger import ConsumedRow, consumed_record
from tests.dashboard.conftest import publish


def test_a_published_never_consumed_message_is_found_by_key_and_shown_as_lost(client_for, data, topic_a):
    lost = data["rows_a"][5]  # published an hour ago, never consumed: its window is long judged
    client = client_for("viewer")
    response = client.get(reverse("dashboard:message-search"), {"q": lost.key, "topic": topic_a.name})
    result = response.context["result"]
    assert [(p.uuid, p.fate) for p in result.published] == [(lost.uuid, "lost")]
    html = response.content.decode()
    assert f'data-fate="{lost.uuid}"><span class="badge st-failed">lost: published, never consumed' in html
    # The client id alone finds it too.
    by_id = client.get(reverse("dashboard:message-search"), {"q": lost.key.split(":")[1], "topic": topic_a.name})
    assert [p.uuid for p in by_id.context["result"].published] == [lost.uuid]
    # Its timeline says lost, at the moment its window was judged.
    timeline = client.get(reverse("dashboard:message", args=[lost.uuid])).context["t"]
    kinds = [e.kind for e in timeline.events]
    assert kinds[:2] == ["published", "lost"] and "consumed" not in kinds  # then the missing finding
    assert timeline.events[1].ok is False
    assert (
        "lost: published, never consumed" in client.get(reverse("dashboard:message", args=[lost.uuid])).content.decode()
    )


def test_each_step_of_a_key_stored_dead_lettered_and_pending(client_for, data, topic_a):
    stored = data["rows_a"][0]
    client = client_for("viewer")
    assert [
        p.fate
        for p in client.get(reverse("dashboard:message-search"), {"q": stored.key, "topic": topic_a.name})
        .context["result"]
        .published
    ] == ["stored"]
    # A message of another key, dead-lettered by the consumer.
    [dead] = publish(topic_a, 1, at=data["now"] - dt.timedelta(minutes=30), key_prefix="dl:")
    consumed_record(
        topic=topic_a,
        rows=[
            ConsumedRow(
                dead.uuid,
                topic_a.consumer_group,
                0,
                0,
                dead.key,
                dead.content_hash,
                dead.published_at,
                dead.published_at + dt.timedelta(seconds=1),
                "dead",
            )
        ],
    )
    result = client.get(reverse("dashboard:message-search"), {"q": dead.key, "topic": topic_a.name}).context["result"]
    assert [p.fate for p in result.published] == ["dead"]
    # Published just now: not consumed yet, and not yet called lost.
    [fresh] = publish(topic_a, 1, at=dt.datetime.now(dt.UTC), key_prefix="fresh:")
    result = client.get(reverse("dashboard:message-search"), {"q": fresh.key, "topic": topic_a.name}).context["result"]
    assert [p.fate for p in result.published] == ["pending"]
    timeline = client.get(reverse("dashboard:message", args=[fresh.uuid])).context["t"]
    assert timeline.events[-1].kind == "pending" and "judged at" in timeline.events[-1].summary


def test_an_outsider_finds_nothing_by_key(client_for, data):
    lost = data["rows_a"][5]
    result = client_for("outsider").get(reverse("dashboard:message-search"), {"q": lost.key}).context["result"]
    assert result.published == [] and result.consumed_only == []
