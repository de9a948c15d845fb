"""Daily ledger partitions: created ahead, rows moved out of DEFAULT, expired ones dropped whole."""

import datetime as dt

import pytest
from django.db import connection

from recon.models import ConsumedMessage, PublishedMessage, Window
from recon.services.partitions import partition_name, partitions_drop_expired, partitions_ensure, partitions_list
from recon.services.windows import window_reconcile
from tests.recon.helpers import scenario_write, topic_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
OLD_DAY = dt.date(2026, 10, 1)
OLD = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)


def _rows_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        return cursor.fetchone()[0]


def test_partitions_are_created_ahead_and_rows_leave_default():
    topic = topic_make("part-ahead")
    scenario_write(topic, n=20, at=NOW)  # lands in DEFAULT: no dated partition yet
    assert _rows_in("recon_publishedmessage_default") == 20

    outcome = partitions_ensure(now=NOW, ahead_days=3)
    days = partitions_list()
    expected = [NOW.date() + dt.timedelta(days=d) for d in range(-1, 4)]
    assert days["recon_publishedmessage"] == expected == days["recon_consumedmessage"]
    assert outcome["moved_from_default"] == 40  # 20 published + 20 consumed
    assert _rows_in("recon_publishedmessage_default") == 0
    assert _rows_in(partition_name("recon_publishedmessage", NOW.date())) == 20
    assert _rows_in(partition_name("recon_consumedmessage", NOW.date())) == 20
    assert PublishedMessage.objects.filter(topic=topic).count() == 20  # still one table to the ORM

    assert partitions_ensure(now=NOW, ahead_days=3)["created"] == []  # idempotent


def test_expired_partitions_are_dropped_and_windows_keep_their_totals():
    topic = topic_make("part-drop")
    scenario_write(topic, n=10, at=OLD)  # an old, clean window...
    scenario_write(topic, n=10, missing=1, at=OLD + dt.timedelta(hours=2))  # ...and an old discrepant one
    scenario_write(topic, n=5, at=NOW)  # a recent one
    partitions_ensure(now=NOW, ahead_days=1)  # the old day's rows get their own partition
    assert OLD_DAY in partitions_list()["recon_publishedmessage"]
    clean, discrepant = Window.objects.filter(topic=topic, start__lt=NOW).order_by("start")
    window_reconcile(window_id=discrepant.pk, now=NOW)  # decided before expiry; `clean` is still open

    outcome = partitions_drop_expired(now=NOW, retention_days=30)
    assert outcome["dropped"] == [
        partition_name("recon_publishedmessage", OLD_DAY),
        partition_name("recon_consumedmessage", OLD_DAY),
    ]
    assert outcome["windows_kept"] == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name("recon_publishedmessage", OLD_DAY)])
        assert cursor.fetchone()[0] is None
    assert PublishedMessage.objects.filter(topic=topic).count() == 5
    assert ConsumedMessage.objects.filter(topic=topic).count() == 5

    clean.refresh_from_db()
    discrepant.refresh_from_db()
    # The open window was reconciled before its rows went; both keep counts and digests.
    assert clean.status == Window.Status.MATCHED and clean.ledger_dropped_at == NOW
    assert clean.published_count == clean.consumed_count == 10 and clean.published_digest == clean.consumed_digest
    assert discrepant.status == Window.Status.DISCREPANT and discrepant.findings.count() == 1
    # Re-reconciling a window without its ledger changes nothing (no false "missing").
    window_reconcile(window_id=discrepant.pk, now=NOW + dt.timedelta(days=1))
    assert discrepant.findings.get().status == "open"


def test_maintenance_command_runs_everything_once():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("recon_maintain", stdout=out)
    text = out.getvalue()
    assert "partitions: created" in text and "windows:" in text and "audit:" in text
    assert partitions_list()["recon_publishedmessage"]  # today's and the days ahead exist now
