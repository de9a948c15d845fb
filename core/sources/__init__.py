"""Source adapters: where client records come from, behind one interface.

- "ods": the SQL source (core.sources.sql): the system of record on any SQL database
  SQLAlchemy speaks (PostgreSQL, MariaDB/MySQL, DB2, Oracle), at
  settings.SOURCE_DATABASE_URL (empty: the product's own PostgreSQL), read through a
  mapping of its tables (core.sources.mapping; the default is the demo schema `ods`,
  core/ods.py). It also has the change feed. docs/sources.md says how per database.
- "file:<name>": a CSV or JSON-lines file in settings.SOURCE_FILE_DIR (core.sources.files).

A source yields batches of SourceItem. An item that cannot become a record has
`error` set instead of `record`, so a loader can record it as an exception and
carry on: one bad row never stops a load, and none is dropped silently.

Versions: each item carries the source version of its record (`version`), read
in the same snapshot as the record's data, so the cache can order writes by the
system of record rather than by a clock (kafkacache.cache). The SQL source's
versions come from the mapped version column (the demo's triggers, core/ods.py).
A file line carries its version in a `version` field: the system of record's version of that record
(for an ODS export, `ods.clients.row_version`). A line without one is
unordered (version None): it may fill a key the cache does not hold from an
ordered source, never overwrite one, and its load is marked unordered.
"""

import datetime as dt
from pathlib import Path

from django.conf import settings

from core.sources.files import FILE_SUFFIXES, FileSource
from core.sources.sql import SqlSource, source_alias
from core.sources.types import Change, PartRange, Source, SourceBatch, SourceError, SourceItem

__all__ = [
    "FILE_SUFFIXES",
    "Change",
    "FileSource",
    "PartRange",
    "Source",
    "SourceBatch",
    "SourceError",
    "SourceItem",
    "SqlSource",
    "document_of",
    "source_alias",
    "source_get",
]


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
