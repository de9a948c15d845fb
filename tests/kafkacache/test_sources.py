"""Source adapters: the ODS SQL source, CSV and JSON-lines files, and loads from files."""

import csv
import json

import pytest

from core.ods import demo_rows, luhn_complete, ods_seed
from core.sources import FileSource, SourceError, SqlSource, document_of, source_get
from kafkacache.services.loads import load_run, load_start
from recon.models import Finding, Load, PublishedMessage
from recon.services.feed import feed_topics_ensure
from tests.documents import DOC


def _luhn_ok(number: str) -> bool:
    return luhn_complete(number[:-1]) == number


def test_demo_rows_are_deterministic_and_card_numbers_pass_luhn():
    assert demo_rows(50) == demo_rows(50)
    clients, accounts, cards = demo_rows(200)
    assert len(clients) == 200 and len(accounts) >= 200 and len(cards) >= 200
    assert all(_luhn_ok(card[2]) for card in cards)
    assert luhn_complete("7992739871") == "79927398713"  # the textbook example


@pytest.mark.django_db
def test_sql_source_counts_filters_and_batches_in_client_order():
    ods_seed(clients=50, using="default")
    source = SqlSource()
    assert source.count() == 50
    assert source.count(client_ids=[3, 4, 999]) == 2
    batches = list(source.batches(batch_size=20))
    assert [len(b) for b in batches] == [20, 20, 10]
    keys = [item.key for batch in batches for item in batch]
    assert keys == [f"client:{i}" for i in range(1, 51)]
    picked = [item for batch in source.batches(client_ids=[7, 3], batch_size=20) for item in batch]
    assert [item.key for item in picked] == ["client:3", "client:7"]
    record = picked[0].record
    _, accounts, cards = demo_rows(50)
    assert [a["account_number"] for a in record["accounts"]] == sorted(a[0] for a in accounts if a[1] == 3)
    assert [c["card_id"] for c in record["cards"]] == [c[0] for c in cards if c[1] == 3]


@pytest.mark.django_db
def test_sql_source_reports_a_bad_row_instead_of_failing_the_batch():
    ods_seed(clients=3, using="default")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE ods.cards SET card_number = 'n/a' WHERE client_id = 2")
    items = {item.key: item for batch in SqlSource().batches(batch_size=10) for item in batch}
    assert items["client:1"].record and items["client:3"].record
    assert items["client:2"].record is None and "card_number" in items["client:2"].error
    assert items["client:2"].where == "client 2"


def _write_files(tmp_path):
    good = {**DOC, "client_id": 1}
    second = {**DOC, "client_id": 2, "email": None}
    (tmp_path / "clients.jsonl").write_text(
        json.dumps(good) + "\n" + "{not json\n" + "\n" + json.dumps(second) + "\n", encoding="utf-8"
    )
    with (tmp_path / "clients.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=[*[k for k in DOC if k not in ("accounts", "cards")], "accounts", "cards"]
        )
        writer.writeheader()
        for doc in (good, second, {**good, "client_id": "three"}):
            writer.writerow(
                {
                    **{k: v for k, v in doc.items() if k not in ("accounts", "cards")},
                    "email": doc["email"] or "",
                    "accounts": json.dumps(doc["accounts"]),
                    "cards": json.dumps(doc["cards"]),
                }
            )


@pytest.mark.parametrize("name", ["clients.jsonl", "clients.csv"])
def test_file_sources_read_records_and_name_bad_lines(tmp_path, settings, name):
    settings.SOURCE_FILE_DIR = str(tmp_path)
    _write_files(tmp_path)
    source = source_get(f"file:{name}")
    items = [item for batch in source.batches(batch_size=2) for item in batch]
    assert [item.key for item in items if item.record] == ["client:1", "client:2"]
    bad = [item for item in items if item.record is None]
    assert len(bad) == 1 and bad[0].where.startswith("line ")
    assert source.count() == 3
    assert source.count(client_ids=[2]) == 1
    assert items[0].record == FileSource(tmp_path / name).batches(batch_size=1).__next__()[0].record
    assert document_of(items[0].record)["cards"][0]["card_number"] == "4111111111111111"


def test_source_names_are_checked(tmp_path, settings):
    settings.SOURCE_FILE_DIR = str(tmp_path)
    (tmp_path / "x.txt").write_text("")
    for name, message in [
        ("db2", "unknown source"),
        ("file:../etc/passwd", "bare file name"),
        ("file:.hidden.jsonl", "bare file name"),
        ("file:x.txt", "must end with"),
        ("file:missing.csv", "no such file"),
    ]:
        with pytest.raises(SourceError, match=message):
            source_get(name)


@pytest.mark.integration
@pytest.mark.django_db
def test_a_file_load_publishes_good_records_and_records_bad_and_oversize_ones(feed, tmp_path, settings):
    settings.SOURCE_FILE_DIR = str(tmp_path)
    lines = [
        {**DOC, "client_id": 1},
        {**DOC, "client_id": 2, "cards": [{**DOC["cards"][0], "card_id": i} for i in range(200)]},  # ~20 KB
        {**DOC, "client_id": "x"},
        {**DOC, "client_id": 4},
    ]
    (tmp_path / "mixed.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    topic = feed_topics_ensure()["bulk"]
    load = load_start(topic=topic, source="file:mixed.jsonl", client_ids=None, requested_by=None, queue=False)
    load = load_run(load_id=load.id)
    assert (load.status, load.total, load.built, load.published, load.exceptions) == (Load.Status.DONE, 4, 3, 2, 2)
    assert set(PublishedMessage.objects.filter(load_id=load.id).values_list("key", flat=True)) == {
        "client:1",
        "client:4",
    }
    oversize = Finding.objects.get(load_id=load.id, category="oversize")
    assert oversize.key == "client:2" and oversize.detail["size"] > settings.MESSAGE_MAX_BYTES
    assert "not published" in oversize.detail["reason"]
    invalid = Finding.objects.get(load_id=load.id, category="invalid-data")
    assert invalid.detail["where"] == "line 3" and "client_id" in invalid.detail["reason"]
