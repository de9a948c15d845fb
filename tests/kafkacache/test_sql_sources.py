"""The SQL source on each engine: the product's PostgreSQL, a real MariaDB this run starts,
and DB2 where a server is reachable. The same demo rows go in everywhere, so every engine
must give the very records the record builder makes of them."""

import datetime as dt
import json
import os
import threading

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from core.cache_records import cache_records_get
from core.records import client_record_build, record_decode, record_key
from core.sources import SqlSource
from kafkacache.services.change_feed import change_feed_run
from kafkacache.services.loads import load_run, load_start
from recon.models import Load
from recon.services.cache_check import cache_check
from recon.services.feed import feed_topics_ensure

from .conftest import cached_keys, consume_all
from .sql_engines import DB2_SKIP, DB2Engine, MariaDB, MariaDBEngine, PostgresEngine

ENGINES = ["postgresql", "mariadb", "db2"]


@pytest.fixture(scope="session")
def mariadb_server():
    server = MariaDB()
    try:
        server.services("up")
        yield server
    finally:
        server.services("down")
        server.remove()


@pytest.fixture
def engine(request):
    name = request.param
    if name == "postgresql":
        yield PostgresEngine()
        return
    if name == "mariadb":
        found = MariaDBEngine(request.getfixturevalue("mariadb_server"))
    else:
        url = os.environ.get("SOURCE_TEST_DB2_URL")
        if not url:
            pytest.skip(DB2_SKIP)
        found = DB2Engine(url)
    try:
        yield found
    finally:
        found.close()


def _expected(rows) -> dict[str, dict]:
    """The records the builder makes of the demo rows (accounts by number, cards by id)."""
    clients, accounts, cards = rows
    names = ("client_id", "name", "email", "segment", "status", "country", "updated_at")
    account_names = (
        "account_number",
        "client_id",
        "product",
        "currency",
        "daily_limit_cents",
        "overdraft_enabled",
        "alerts_enabled",
        "statement_day",
        "language",
    )
    card_names = ("card_id", "client_id", "card_number", "brand", "expiry", "status")
    out = {}
    for row in clients:
        client = dict(zip(names, row, strict=True))
        mine = sorted((dict(zip(account_names, a, strict=False)) for a in accounts if a[1] == row[0]), key=str)
        mine.sort(key=lambda a: a["account_number"])
        own_cards = sorted((dict(zip(card_names, c, strict=False)) for c in cards if c[1] == row[0]), key=str)
        own_cards.sort(key=lambda c: c["card_id"])
        out[record_key(row[0])] = client_record_build(client=client, accounts=mine, cards=own_cards)
    return out


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_each_engine_counts_filters_pages_and_gives_the_records_of_its_rows(engine):
    rows = engine.seed(50)
    source = engine.source()
    assert source.readable()
    assert source.count() == 50
    assert source.count(client_ids=[3, 4, 999]) == 2
    batches = list(source.batches(batch_size=20))
    assert [len(b) for b in batches] == [20, 20, 10]
    items = [item for batch in batches for item in batch]
    assert [item.key for item in items] == [f"client:{i}" for i in range(1, 51)]
    assert {item.key: item.record for item in items} == _expected(rows)  # the same records on every engine
    picked = [item for batch in source.batches(client_ids=[7, 3, 40], batch_size=2) for item in batch]
    assert [item.key for item in picked] == ["client:3", "client:7", "client:40"]
    assert all(item.version and item.version > 0 for item in items)
    assert source.fetch([9, 3, 999]).keys() == {3, 9}


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_each_engine_reports_a_bad_row_instead_of_failing_the_batch(engine):
    engine.seed(3)
    engine.write("UPDATE {s}cards SET card_number = 'n/a' WHERE client_id = 2")
    items = {item.key: item for batch in engine.source().batches(batch_size=10) for item in batch}
    assert items["client:1"].record and items["client:3"].record
    assert items["client:2"].record is None and "card_number" in items["client:2"].error


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_each_engine_versions_every_change_and_feeds_it_from_its_change_table(engine):
    engine.seed(10)
    source = engine.source()
    before = dict(source.versions(limit=100))
    assert sorted(before) == list(range(1, 11)) and source.versions(after=8, limit=5) == [
        (9, before[9]),
        (10, before[10]),
    ]
    assert source.versions_of([3, 4, 999]) == {3: before[3], 4: before[4]}
    streamed = list(source.versions_all(batch=3))  # the digest leg's one pass, in batches
    assert [len(b) for b in streamed] == [3, 3, 3, 1] and sorted(r for b in streamed for r in b) == sorted(
        before.items()
    )
    drawn = source.version_draw()
    assert drawn > max(before.values()) and source.version_draw() > drawn
    assert source.changes_read(limit=10) == []  # the seed is a starting state, not changes
    card = source.fetch([3])[3].record["cards"][0]["card_id"]
    engine.write(f"UPDATE {{s}}cards SET status = 'blocked' WHERE card_id = {card}")  # noqa: S608 (a part: its client's change)
    engine.write(
        "INSERT INTO {s}clients (client_id, name, email, segment, status, country)"
        " VALUES (51, 'Edsger Dijkstra', NULL, 'retail', 'active', 'NL')"
    )
    engine.write("UPDATE {s}clients SET client_id = 60 WHERE client_id = 5")  # renumbered: its parts follow
    engine.write("DELETE FROM {s}clients WHERE client_id = 7")
    every = source.changes_read(limit=100)
    # PostgreSQL runs the parts' triggers on the renumbering's cascade (one more update of 60
    # per part: the feed coalesces them); InnoDB runs no trigger on a cascade.
    changes = [c for c in every if (c.op, c.client_id, c.old_client_id) != ("update", 60, None)]
    assert (len(every) > len(changes)) == (engine.name == "postgresql")
    assert [(c.op, c.client_id, c.old_client_id) for c in changes] == [
        ("update", 3, None),
        ("add", 51, None),
        ("update", 60, 5),
        ("delete", 7, None),
    ]
    assert [c.change_id for c in changes] == sorted(c.change_id for c in changes)
    now = source.fetch([3, 51, 60, 7])
    assert now.keys() == {3, 51, 60}
    assert now[3].version == changes[0].version > before[3] and now[3].record["cards"][0]["status"] == "blocked"
    assert now[60].version == max(c.version for c in every if c.client_id == 60) and now[60].record["cards"]
    assert changes[3].version > max(c.version for c in changes[:3])  # a delete draws its own
    assert source.versions_of([3, 60]) == {3: now[3].version, 60: now[60].version}
    source.changes_done([c.change_id for c in every[:2]])
    assert [c.change_id for c in source.changes_read(limit=100)] == [c.change_id for c in every[2:]]


def _between_reads(source: SqlSource, write) -> None:
    """Make `write` commit on another connection after the batch read its clients, before its parts."""
    parts = source._parts
    done = threading.Event()

    def late(*args, **kwargs):
        if not done.is_set():
            done.set()
            write()
        return parts(*args, **kwargs)

    source._parts = late  # type: ignore[method-assign]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", ["postgresql", "mariadb"], indirect=True)
def test_a_batch_is_one_snapshot_data_and_versions_read_together(engine):
    engine.seed(5)
    source = engine.source()
    before = source.fetch([2])[2]
    card = before.record["cards"][0]["card_id"]
    if engine.name == "postgresql":

        def write():  # another connection than the source's, committing at once
            db = connection.settings_dict
            with psycopg.connect(
                host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"]
            ) as other:
                other.execute("UPDATE ods.cards SET status = 'blocked' WHERE card_id = %s", [card])
    else:

        def write():
            engine.write(f"UPDATE cards SET status = 'blocked' WHERE card_id = {card}")  # noqa: S608 (a test's id)

    _between_reads(source, write)
    [batch] = list(source.batches(batch_size=10))
    held = {item.key: item for item in batch}["client:2"]
    # The batch read the clients before the write committed: its cards and version are of then.
    assert held.version == before.version and held.record == before.record
    after = engine.source().fetch([2])[2]
    assert after.version > before.version and after.record["cards"][0]["status"] == "blocked"


@pytest.fixture
def mariadb_settings(settings, mariadb_server, tmp_path):
    """The product's SQL source pointed at a MariaDB database with the demo rows."""
    found = MariaDBEngine(mariadb_server)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"schema": None}))
    settings.SOURCE_DATABASE_URL = found.url
    settings.SOURCE_SQL_MAPPING = str(mapping)
    try:
        yield found
    finally:
        found.close()


@pytest.mark.integration
@pytest.mark.django_db
def test_a_bulk_load_and_the_change_feed_from_mariadb_reach_the_cache_and_reconcile(feed, cache, mariadb_settings):
    rows = mariadb_settings.seed(120)
    expected = _expected(rows)
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="ods", client_ids=None, requested_by=None, queue=False)
    load = load_run(load_id=load.id)
    assert (load.status, load.total, load.published, load.exceptions) == (Load.Status.DONE, 120, 120, 0)
    consume_all()
    assert cached_keys(cache) == set(expected)
    cached = cache_records_get(cache, expected)
    for key, record in expected.items():
        hit = cached[key]
        assert record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) == record, key
    later = timezone.now() + dt.timedelta(hours=2)  # past every latency limit: nothing in flight
    report = cache_check(topic=topic, now=later).report  # the cache leg against MariaDB's versions
    assert (report["reference"], report["checked"], report["all_matched"]) == ("ods", 120, True)

    mariadb_settings.write("UPDATE clients SET segment = 'private' WHERE client_id = 17")
    mariadb_settings.write("DELETE FROM clients WHERE client_id = 18")
    assert change_feed_run()["published"] == 2
    consume_all()
    now = SqlSource().fetch([17])[17]
    hit = cache_records_get(cache, ["client:17"])["client:17"]
    assert hit.version == now.version
    assert record_decode(hit.value, schema_version=hit.schema_version, decrypt=True)["segment"] == "private"
    assert "client:18" not in cached_keys(cache)
    assert SqlSource().changes_read(limit=10) == []
