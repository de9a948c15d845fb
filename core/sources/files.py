"""File sources: a CSV or JSON-lines file of records in settings.SOURCE_FILE_DIR."""

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.records import MAX_VERSION, RecordError, record_from_document, record_key
from core.sources.types import PartRange, SourceBatch, SourceError, SourceItem

FILE_SUFFIXES = (".csv", ".jsonl", ".ndjson")


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

    def _items(self, after: int = 0) -> Iterator[tuple[int, SourceItem]]:
        """(line number, item) of each record line past line `after`."""
        with self.path.open(newline="", encoding="utf-8") as handle:
            if self.path.suffix == ".csv":
                for number, row in enumerate(csv.DictReader(handle), start=2):
                    if number > after:
                        yield number, _document_item(_csv_document, row, f"line {number}")
            else:
                for number, line in enumerate(handle, start=1):
                    if number > after and line.strip():
                        yield number, _document_item(json.loads, line, f"line {number}")

    def count(self, *, client_ids: Sequence[int] | None = None) -> int:
        return sum(1 for _, item in self._items() if _wanted(item, client_ids))

    def batches(self, *, client_ids: Sequence[int] | None = None, batch_size: int) -> Iterator[list[SourceItem]]:
        for batch in self.read(client_ids=client_ids, batch_size=batch_size):
            yield batch.items

    def read(
        self,
        *,
        batch_size: int,
        client_ids: Sequence[int] | None = None,
        key_after: int | None = None,
        key_last: int | None = None,
        after: int | None = None,
    ) -> Iterator[SourceBatch]:
        """The file's records from the line after `after` on (a file is one part: no key range)."""
        if key_after is not None or key_last is not None:
            raise SourceError(f"{self.path.name}: a file source is read whole, not by key range")
        batch: list[SourceItem] = []
        number = 0
        for number, item in self._items(after or 0):
            if _wanted(item, client_ids):
                batch.append(item)
                if len(batch) >= batch_size:
                    yield SourceBatch(batch, number)
                    batch = []
        if batch:
            yield SourceBatch(batch, number)

    def parts(self, *, client_ids: Sequence[int] | None = None, size: int) -> list[PartRange]:
        """One part, the whole file: its lines are in no key order to split by."""
        total = self.count(client_ids=client_ids)
        return [PartRange(None, None, total)] if total else []


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
