"""The busiest second a window keeps equals what a scan of its publish ledger rows says:
over batches that share seconds, windows, a late message into a reconciled window and the
reconcile itself (real PostgreSQL, real ledger writes)."""

import datetime as dt
import uuid
from importlib import import_module

import pytest
from django.db import connection

from core.hashing import content_hash
from recon.models import Window
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record
from recon.services.windows import window_reconcile
from tests.recon.helpers import T0, scenario_write, topic_make
from tests.window_figures import figures_match_ledger

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _rows(ats: list[dt.datetime]) -> list[PublishedRow]:
    return [
        PublishedRow(uuid.uuid4(), i % 2, i, f"client:{i}", "bulk", content_hash(f"v{i}".encode()), 10, at)
        for i, at in enumerate(ats)
    ]


def _consumed(rows: list[PublishedRow], group: str) -> list[ConsumedRow]:
    return [
        ConsumedRow(
            r.uuid, group, r.partition, r.offset, r.key, r.content_hash, r.published_at, r.published_at, "stored"
        )
        for r in rows
    ]


def test_batches_sharing_seconds_add_up_to_the_ledgers_busiest_second():
    topic = topic_make("figures-batches", window_seconds=60)
    # second 3 gets 4 + 5 messages from two batches; second 7 gets 6 in one: the peak is 9, not 6
    first = _rows([T0 + dt.timedelta(seconds=3, milliseconds=i) for i in range(4)])
    second = _rows(
        [T0 + dt.timedelta(seconds=3, milliseconds=500 + i) for i in range(5)]
        + [T0 + dt.timedelta(seconds=7) for _ in range(6)]
        # the next window, and the last second of this one
        + [T0 + dt.timedelta(seconds=59, milliseconds=999), T0 + dt.timedelta(seconds=61)]
    )
    published_record(topic=topic, rows=first)
    published_record(topic=topic, rows=second)
    consumed_record(topic=topic, rows=_consumed(first + second, topic.consumer_group))

    this, following = figures_match_ledger(topic)
    assert this.published_peak == 9 and len(this.published_seconds) == 60
    assert this.published_seconds[3] == 9 and this.published_seconds[7] == 6 and this.published_seconds[59] == 1
    assert (following.published_seconds, following.published_peak) == ([0, 1], 1)


def test_a_window_first_written_by_its_consumer_then_published_keeps_the_figures():
    topic = topic_make("figures-consumed-first", window_seconds=60)
    rows = _rows([T0 + dt.timedelta(seconds=10) for _ in range(3)])
    consumed_record(topic=topic, rows=_consumed(rows, topic.consumer_group))  # the consume side lands first
    window = Window.objects.get(topic=topic)
    assert (window.published_seconds, window.published_peak) == ([], 0)
    published_record(topic=topic, rows=rows)
    [window] = figures_match_ledger(topic)
    assert window.published_peak == 3 and window.consumed_count == 3


def test_reconcile_and_a_late_message_into_the_reconciled_window_keep_the_figures():
    topic = topic_make("figures-late")
    scenario_write(topic, n=40, missing=2)  # 40 messages 1 ms apart: all in second 0
    [window] = figures_match_ledger(topic)
    window = window_reconcile(window_id=window.pk, now=T0 + dt.timedelta(hours=1))
    assert window.status == Window.Status.DISCREPANT
    [window] = figures_match_ledger(topic)  # the reconcile leaves them as they were
    assert window.published_peak == 40

    late = _rows([T0 + dt.timedelta(seconds=299)] * 2 + [T0 + dt.timedelta(milliseconds=900)])
    published_record(topic=topic, rows=late)  # long after the window was judged
    [window] = figures_match_ledger(topic)
    assert window.status == Window.Status.OPEN and window.published_peak == 41
    assert window.published_seconds[299] == 2 and len(window.published_seconds) == 300
    window = window_reconcile(window_id=window.pk, now=T0 + dt.timedelta(hours=2))
    [after] = figures_match_ledger(topic)
    assert after.published_peak == 41 and after.reconciled_at == T0 + dt.timedelta(hours=2)


def test_the_migration_fills_windows_written_before_it_from_the_ledger():
    backfill = import_module("recon.migrations.0022_window_published_peak_ledger_place").BACKFILL
    topic = topic_make("figures-backfill", window_seconds=60)
    published_record(topic=topic, rows=_rows([T0 + dt.timedelta(seconds=s % 70) for s in range(200)]))
    kept = [(w.published_seconds, w.published_peak) for w in figures_match_ledger(topic)]
    Window.objects.filter(topic=topic).update(published_seconds=[], published_peak=0)  # as before the migration
    with connection.cursor() as cursor:
        cursor.execute(backfill)
    assert [(w.published_seconds, w.published_peak) for w in figures_match_ledger(topic)] == kept
