"""Source adapters: where client records come from, behind one interface.

- "ods": the SQL source, schema `ods` (core/ods.py) in the database of
  settings.SOURCE_DATABASE_URL (the Django alias "source"), or in the default
  database when that is empty. It also has the change feed.
- "file:<name>": a CSV or JSON-lines file in settings.SOURCE_FILE_DIR.

A source yields batches of SourceItem. An item that cannot become a record has
`error` set instead of `record`, so a loader can record it as an exception and
carry on: one bad row never stops a load, and none is dropped silently.

Versions: each item carries the source version of its record (`version`), read
in the same snapshot as the record's data, so the cache can order writes by the
system of record rather than by a clock (kafkacache.cache). The SQL source's
versions come from its triggers (core/ods.py). A file line carries its
version in a `version` field: the system of record's version of that record
(for an ODS export, `ods.clients.row_version`). A line without one is
unordered (version None): it may fill a key the cache does not hold from an
ordered source, never overwrite one, and its load is marked unordered.
"""

import csv
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from django.conf import settings
from django.db import connections

from core.records import MAX_VERSION, RecordError, client_record_build, record_from_document, record_key

FILE_SUFFIXES = (".csv", ".jsonl", ".ndjson")


class SourceError(ValueError):
    """A source that does not exist or cannot be read."""


class SourceItem(NamedTuple):
    key: str
    record: dict | None  # the plain record; None when `error` says why not
    error: str = ""
    where: str = ""  # "client 42", "line 7": where to look in the source
    version: int | None = None  # the record's source version; None: the source has none (unordered)


class Change(NamedTuple):
    change_id: int
    client_id: int
    old_client_id: int | None
    op: str  # add | update | delete
    version: int  # the client's version after the change; a delete's own version


class Source(Protocol):
    name: str

    def count(self, *, client_ids: Sequence[int] | None = None) -> int: ...

    def batches(self, *, client_ids: Sequence[int] | None = None, batch_size: int) -> Iterator[list[SourceItem]]: ...


def source_alias() -> str:
    return "source" if "source" in settings.DATABASES else "default"


class SqlSource:
    """Clients of schema `ods`, read in client_id order with keyset pagination."""

    name = "ods"

    def __init__(self, using: str | None = None):
        self.using = using or source_alias()

    def _cursor(self):
        return connections[self.using].cursor()

    def count(self, *, client_ids: Sequence[int] | None = None) -> int:
        with self._cursor() as cursor:
            if client_ids:
                cursor.execute("SELECT count(*) FROM ods.clients WHERE client_id = ANY(%s)", [list(client_ids)])
            else:
                cursor.execute("SELECT count(*) FROM ods.clients")
            return cursor.fetchone()[0]

    def batches(self, *, client_ids: Sequence[int] | None = None, batch_size: int) -> Iterator[list[SourceItem]]:
        after = 0
        while True:
            with self._cursor() as cursor:
                if client_ids:
                    cursor.execute(
                        "SELECT client_id FROM ods.clients WHERE client_id > %s AND client_id = ANY(%s)"
                        " ORDER BY client_id LIMIT %s",
                        [after, list(client_ids), batch_size],
                    )
                else:
                    cursor.execute(
                        "SELECT client_id FROM ods.clients WHERE client_id > %s ORDER BY client_id LIMIT %s",
                        [after, batch_size],
                    )
                ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return
            found = self.fetch(ids)
            yield [found[i] for i in ids if i in found]
            after = ids[-1]

    def fetch(self, client_ids: Sequence[int]) -> dict[int, SourceItem]:
        """The current record and version of each client that exists.

        One statement, so data and versions come from one snapshot: a change that
        commits meanwhile is either wholly in the record with its version, or not
        at all (three separate queries could pair new cards with an old version).
        """
        ids = list(client_ids)
        with self._cursor() as cursor:
            cursor.execute(_FETCH_SQL, [ids])
            rows = _dicts(cursor)
        out = {}
        for client in rows:
            cid = client["client_id"]
            key, where = record_key(cid), f"client {cid}"
            version = client.pop("row_version")
            accounts, cards = client.pop("accounts") or [], client.pop("cards") or []
            try:
                record = client_record_build(client=client, accounts=accounts, cards=cards)
            except RecordError as exc:
                out[cid] = SourceItem(key, None, str(exc), where, version)
            else:
                out[cid] = SourceItem(key, record, "", where, version)
        return out

    def version_draw(self) -> int:
        """A version newer than every one the source gave so far (a delete of a record it no
        longer holds: the change row that said so may be long gone)."""
        with self._cursor() as cursor:
            cursor.execute("SELECT nextval('ods.record_version')")
            return cursor.fetchone()[0]

    def versions(self, *, after: int = 0, limit: int) -> list[tuple[int, int]]:
        """(client_id, row_version) of every client, in client_id order (the cache leg's full compare)."""
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT client_id, row_version FROM ods.clients WHERE client_id > %s ORDER BY client_id LIMIT %s",
                [after, limit],
            )
            return cursor.fetchall()

    def versions_of(self, client_ids: Sequence[int]) -> dict[int, int]:
        """The row_version of each of these clients that exists (the cache leg of a set of keys)."""
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT client_id, row_version FROM ods.clients WHERE client_id = ANY(%s)", [list(client_ids)]
            )
            return dict(cursor.fetchall())

    def readable(self) -> bool:
        """Whether the source's schema exists here (a deployment may feed only files and the API)."""
        with self._cursor() as cursor:
            cursor.execute("SELECT to_regclass('ods.clients') IS NOT NULL")
            return bool(cursor.fetchone()[0])

    def changes_read(self, *, limit: int) -> list[Change]:
        """The oldest changes not yet published, in change order.

        Selected by presence, not by a position: a sequence is not
        transactional, so a change committed late can carry a smaller change_id
        than changes already published; it is simply read on the next call.
        """
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT change_id, client_id, old_client_id, op, version FROM ods.client_changes"
                " ORDER BY change_id LIMIT %s",
                [limit],
            )
            return [Change(*row) for row in cursor.fetchall()]

    def changes_done(self, change_ids: Sequence[int]) -> None:
        """Forget published changes (the publish ledger is their record from now on)."""
        with self._cursor() as cursor:
            cursor.execute("DELETE FROM ods.client_changes WHERE change_id = ANY(%s)", [list(change_ids)])


# Accounts and cards as JSON lists built by the same statement as the client row
# (numbers and booleans keep their JSON types; the record builder checks them).
_FETCH_SQL = """
SELECT c.client_id, c.name, c.email, c.segment, c.status, c.country, c.updated_at, c.row_version,
    (SELECT json_agg(json_build_object(
        'account_number', a.account_number, 'product', a.product, 'currency', a.currency,
        'daily_limit_cents', a.daily_limit_cents, 'overdraft_enabled', a.overdraft_enabled,
        'alerts_enabled', a.alerts_enabled, 'statement_day', a.statement_day, 'language', a.language)
        ORDER BY a.account_number)
     FROM ods.account_settings a WHERE a.client_id = c.client_id) AS accounts,
    (SELECT json_agg(json_build_object(
        'card_id', k.card_id, 'card_number', k.card_number, 'brand', k.brand, 'expiry', k.expiry,
        'status', k.status)
        ORDER BY k.card_id)
     FROM ods.cards k WHERE k.client_id = c.client_id) AS cards
FROM ods.clients c WHERE c.client_id = ANY(%s)
"""


def _dicts(cursor) -> list[dict]:
    names = [col.name for col in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class FileSource:
    """Client records from a file, one client per line.

    JSON lines (.jsonl, .ndjson): each line is a record document, accounts and
    cards as nested lists. CSV (.csv): a header row with the client columns and
    two columns `accounts` and `cards` holding JSON lists (a flat export cannot
    hold a variable number of cards otherwise).
    """

    def __init__(self, path: Path, name: str | None = None):
        if path.suffix not in FILE_SUFFIXES:
            raise SourceError(f"{path.name}: a file source must end with one of {', '.join(FILE_SUFFIXES)}")
        if not path.is_file():
            raise SourceError(f"{path.name}: no such file in the source directory")
        self.path = path
        self.name = name or f"file:{path.name}"

    def _items(self) -> Iterator[SourceItem]:
        with self.path.open(newline="", encoding="utf-8") as handle:
            if self.path.suffix == ".csv":
                for number, row in enumerate(csv.DictReader(handle), start=2):
                    yield _document_item(_csv_document, row, f"line {number}")
            else:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield _document_item(json.loads, line, f"line {number}")

    def count(self, *, client_ids: Sequence[int] | None = None) -> int:
        return sum(1 for item in self._items() if _wanted(item, client_ids))

    def batches(self, *, client_ids: Sequence[int] | None = None, batch_size: int) -> Iterator[list[SourceItem]]:
        batch: list[SourceItem] = []
        for item in self._items():
            if _wanted(item, client_ids):
                batch.append(item)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch


def _wanted(item: SourceItem, client_ids: Sequence[int] | None) -> bool:
    if not client_ids:
        return True
    # An unreadable line is kept only when no filter applies: with a filter we
    # cannot tell whether it was wanted, and the unfiltered load reports it.
    return item.record is not None and item.record["client_id"] in client_ids


def _csv_document(row: dict) -> dict:
    document: dict = dict(row)
    for name in ("accounts", "cards"):
        document[name] = json.loads(row.get(name) or "[]")
    try:
        document["client_id"] = int(row["client_id"])
    except (KeyError, TypeError, ValueError):
        raise RecordError("client_id: expected an integer") from None
    document["email"] = row.get("email") or None
    return document


def _document_item(parse, raw, where: str) -> SourceItem:
    try:
        document = parse(raw)
        record = record_from_document(document)
        version = _version(document.get("version"))
    except (RecordError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        return SourceItem("", None, str(exc), where)
    return SourceItem(record_key(record["client_id"]), record, "", where, version)


def _version(raw) -> int | None:
    """A document's `version`: a positive integer, or absent/empty (unordered)."""
    if raw is None or raw == "":
        return None
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_VERSION:
        raise RecordError(f"version: expected an integer from 1 to {MAX_VERSION}")
    return int(text)


def source_get(name: str) -> Source:
    """The source a load names: "ods" or "file:<file name in SOURCE_FILE_DIR>"."""
    if name == SqlSource.name:
        return SqlSource()
    if name.startswith("file:"):
        filename = name.removeprefix("file:")
        if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
            raise SourceError(f"{name}: give a bare file name inside the source directory")
        return FileSource(Path(settings.SOURCE_FILE_DIR) / filename, name)
    raise SourceError(f"unknown source {name!r}: use 'ods' or 'file:<name>'")


def document_of(record: dict, *, version: int | None = None) -> dict:
    """A plain record as a JSON-ready document (the file sources' line format)."""
    out = dict(record)
    if version is not None:
        out["version"] = version
    at = record["updated_at"]
    out["updated_at"] = at.isoformat() if isinstance(at, dt.datetime) else at
    out["accounts"] = [{k: v for k, v in a.items() if k != "account_last4"} for a in record["accounts"]]
    out["cards"] = [{k: v for k, v in c.items() if k != "card_last4"} for c in record["cards"]]
    return out
