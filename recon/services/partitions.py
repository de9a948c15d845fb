"""Daily partitions of both ledgers: created ahead of time, dropped whole after retention.

The ledgers are RANGE-partitioned by published_at with a DEFAULT partition (migration
0001_squashed_0015). Here each UTC day gets its own partition, `<table>_pYYYYMMDD`:

- `partitions_ensure` creates them LEDGER_PARTITIONS_AHEAD_DAYS ahead, and for
  any day the DEFAULT partition already holds rows of. PostgreSQL refuses to
  create a partition while DEFAULT holds rows in its range, so those rows are
  moved out and back in through the parent in the same transaction.
- `partitions_drop_expired` drops a day's partitions once the day is older than
  LEDGER_RETENTION_DAYS: DROP TABLE, not DELETE. First every window over that
  day is reconciled (if still open) and marked ledger_dropped_at, so its counts,
  digests, summary and findings stay while the per-message rows go.
"""

import datetime as dt
import logging
import re

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from recon.models import Window
from recon.services.windows import window_reconcile

logger = logging.getLogger(__name__)

LEDGERS = ("recon_publishedmessage", "recon_consumedmessage")
_DAILY = re.compile(r"^(?P<table>recon_(?:published|consumed)message)_p(?P<day>\d{8})$")


def partition_name(table: str, day: dt.date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    lower = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return lower, lower + dt.timedelta(days=1)


def partitions_list() -> dict[str, list[dt.date]]:
    """The daily partitions that exist, per ledger table, oldest first."""
    found: dict[str, list[dt.date]] = {table: [] for table in LEDGERS}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname FROM pg_inherits
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            WHERE parent.relname = ANY(%s)
            """,
            [list(LEDGERS)],
        )
        for (name,) in cursor.fetchall():
            match = _DAILY.match(name)
            if match:
                found[match["table"]].append(dt.datetime.strptime(match["day"], "%Y%m%d").date())
    return {table: sorted(days) for table, days in found.items()}


def _default_days(cursor, table: str) -> list[dt.date]:
    # The DEFAULT partition should stay small (only what no dated partition covered).
    cursor.execute(
        f"SELECT DISTINCT (published_at AT TIME ZONE 'UTC')::date FROM {table}_default"  # noqa: S608
    )
    return [row[0] for row in cursor.fetchall()]


def _partition_create(cursor, table: str, day: dt.date) -> int:
    """Create one day's partition; answers how many rows moved out of DEFAULT."""
    name = partition_name(table, day)
    lower, upper = _bounds(day)
    # Writers that route into DEFAULT wait for this transaction; nothing lands in
    # the range between the move and the new partition.
    cursor.execute(f"LOCK TABLE {table}_default IN ACCESS EXCLUSIVE MODE")
    cursor.execute(
        f"SELECT count(*) FROM {table}_default WHERE published_at >= %s AND published_at < %s",  # noqa: S608
        [lower, upper],
    )
    moving = cursor.fetchone()[0]
    if moving:
        cursor.execute(f"CREATE TEMP TABLE recon_moving (LIKE {table}) ON COMMIT DROP")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {table}_default WHERE published_at >= %s AND published_at < %s "  # noqa: S608
            "RETURNING *) INSERT INTO recon_moving SELECT * FROM moved",
            [lower, upper],
        )
    cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)", [lower, upper])
    if moving:
        cursor.execute(f"INSERT INTO {table} SELECT * FROM recon_moving")  # noqa: S608
        cursor.execute("DROP TABLE recon_moving")
    return moving


def partitions_ensure(*, now: dt.datetime | None = None, ahead_days: int | None = None) -> dict:
    """Create missing daily partitions: yesterday to `ahead_days` ahead, and days DEFAULT holds."""
    now = now or timezone.now()
    ahead = settings.LEDGER_PARTITIONS_AHEAD_DAYS if ahead_days is None else ahead_days
    today = now.astimezone(dt.UTC).date()
    wanted = {today + dt.timedelta(days=offset) for offset in range(-1, ahead + 1)}
    existing = partitions_list()
    created: list[str] = []
    moved = 0
    for table in LEDGERS:
        with connection.cursor() as cursor:
            days = wanted | set(_default_days(cursor, table))
        for day in sorted(days - set(existing[table])):
            with transaction.atomic(), connection.cursor() as cursor:
                moved += _partition_create(cursor, table, day)
            created.append(partition_name(table, day))
    if created:
        logger.info("ledger partitions created: %s (%s rows moved out of DEFAULT)", ", ".join(created), moved)
    return {"created": created, "moved_from_default": moved}


def partitions_drop_expired(*, now: dt.datetime | None = None, retention_days: int | None = None) -> dict:
    """Drop daily partitions older than the retention, keeping their windows' totals."""
    now = now or timezone.now()
    retention = settings.LEDGER_RETENTION_DAYS if retention_days is None else retention_days
    cutoff = now.astimezone(dt.UTC).date() - dt.timedelta(days=retention)
    dropped: list[str] = []
    windows_kept = 0
    for day in sorted({d for days in partitions_list().values() for d in days if d < cutoff}):
        lower, upper = _bounds(day)
        over_day = Window.objects.filter(start__lt=upper, end__gt=lower, ledger_dropped_at__isnull=True)
        # Decide the still-open windows while their rows exist (late rows can no longer change them).
        for window_id in over_day.filter(status=Window.Status.OPEN).values_list("pk", flat=True):
            window_reconcile(window_id=window_id, now=now)
        with transaction.atomic(), connection.cursor() as cursor:
            windows_kept += over_day.update(ledger_dropped_at=now)
            for table in LEDGERS:
                name = partition_name(table, day)
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
                if cursor.fetchone()[0]:
                    cursor.execute(f"DROP TABLE {name}")
                    dropped.append(name)
    if dropped:
        logger.info("ledger partitions dropped: %s (%s windows keep their totals)", ", ".join(dropped), windows_kept)
    return {"dropped": dropped, "windows_kept": windows_kept}


def partitions_maintain(*, now: dt.datetime | None = None) -> dict:
    return {**partitions_ensure(now=now), **partitions_drop_expired(now=now)}
