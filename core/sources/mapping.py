"""The SQL source's mapping: which tables (or queries) and columns of a system of record hold
clients, account settings and cards, their key, the record's version and the change table.

A JSON file (settings.SOURCE_SQL_MAPPING) in this shape; every part has the default of
the demo schema `ods` (core/ods.py), so a file gives only what differs:

    {
      "schema": "ods",
      "isolation_level": null,
      "naive_timestamps": "UTC",
      "clients":  {"table": "clients", "key": "client_id", "version": "row_version",
                   "version_kind": "integer",
                   "columns": {"name": "name", "email": "email", ...}},
      "accounts": {"table": "account_settings", "key": "client_id", "order_by": "account_number",
                   "columns": {"account_number": "account_number", ...}},
      "cards":    {"table": "cards", "key": "client_id", "order_by": "card_id", "columns": {...}},
      "changes":  {"table": "client_changes", "id": "change_id", "key": "client_id",
                   "old_key": "old_client_id", "op": "op", "version": "version"},
      "version_sequence": "record_version"
    }

- `columns` maps a record field to the column that holds it (docs/sources.md lists the
  fields); a part may give `"query": "SELECT ..."` instead of `"table"`: it is read as a
  derived table with the named columns, so a view the ODS does not have can be written here.
- `version_kind`: "integer" (a number the source's triggers draw, as the demo's) or
  "timestamp" (DB2 for z/OS's ROW CHANGE TIMESTAMP, say): a timestamp becomes its
  microseconds since 1970, which orders the same way and stays below 2**53 until 2255.
- `version_sequence`: the sequence a delete of a record the source no longer holds draws
  a version from (SqlSource.version_draw); null with timestamp versions: the database's
  current timestamp.
- `changes`: null when the source has no change table (no change feed then).
- `isolation_level`: of each batch's transaction; null: the database's snapshot level
  (docs/sources.md: REPEATABLE READ on PostgreSQL and MariaDB, SERIALIZABLE on Oracle,
  RS on DB2).
- `naive_timestamps`: the zone of a timestamp column without one (MariaDB's DATETIME).
"""

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.records import ACCOUNT_COLUMNS, CARD_COLUMNS, CLIENT_COLUMNS

# The record's fields a source column holds, in the order the record builder takes them
# (core.records.client_record_from_rows): the client's after its key, and all of each part's.
CLIENT_FIELDS = CLIENT_COLUMNS[1:]
ACCOUNT_FIELDS = ACCOUNT_COLUMNS
CARD_FIELDS = CARD_COLUMNS

DEFAULT: dict[str, Any] = {
    "schema": "ods",
    "isolation_level": None,
    "naive_timestamps": "UTC",
    "clients": {
        "table": "clients",
        "key": "client_id",
        "version": "row_version",
        "version_kind": "integer",
        "columns": {f: f for f in CLIENT_FIELDS},
    },
    "accounts": {
        "table": "account_settings",
        "key": "client_id",
        "order_by": "account_number",
        "columns": {f: f for f in ACCOUNT_FIELDS},
    },
    "cards": {"table": "cards", "key": "client_id", "order_by": "card_id", "columns": {f: f for f in CARD_FIELDS}},
    "changes": {
        "table": "client_changes",
        "id": "change_id",
        "key": "client_id",
        "old_key": "old_client_id",
        "op": "op",
        "version": "version",
    },
    "version_sequence": "record_version",
}

# Snapshot isolation of a batch, by SQLAlchemy dialect name (docs/sources.md says why each).
SNAPSHOT_ISOLATION = {
    "postgresql": "REPEATABLE READ",
    "mysql": "REPEATABLE READ",
    "mariadb": "REPEATABLE READ",
    "oracle": "SERIALIZABLE",
    "ibm_db_sa": "RS",
    "db2": "RS",
}


class MappingError(ValueError):
    """A mapping file that does not say what the SQL source needs (the message names the part)."""


def mapping_load(path: str) -> dict[str, Any]:
    """The mapping in `path` over the defaults ("" : the defaults, the demo schema)."""
    out = copy.deepcopy(DEFAULT)
    if not path:
        return out
    try:
        given = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MappingError(f"SOURCE_SQL_MAPPING {path}: {exc}") from None
    if not isinstance(given, dict):
        raise MappingError(f"SOURCE_SQL_MAPPING {path}: expected a JSON object")
    for name, value in given.items():
        if name not in DEFAULT:
            raise MappingError(f"SOURCE_SQL_MAPPING: unknown part {name!r} (known: {', '.join(DEFAULT)})")
        if isinstance(DEFAULT[name], dict) and isinstance(value, dict):
            part = out[name] or {}
            if "query" in value:
                part.pop("table", None)
            columns = {**part.get("columns", {}), **value.get("columns", {})}
            out[name] = {**part, **value, **({"columns": columns} if "columns" in part else {})}
        else:
            out[name] = value
    _check(out)
    return out


def _check(mapping: dict) -> None:
    for name, fields in (("clients", CLIENT_FIELDS), ("accounts", ACCOUNT_FIELDS), ("cards", CARD_FIELDS)):
        part = mapping[name]
        if not isinstance(part, dict) or not (part.get("table") or part.get("query")) or not part.get("key"):
            raise MappingError(f"SOURCE_SQL_MAPPING: {name} needs a table or a query, and a key column")
        missing = [f for f in fields if not part["columns"].get(f)]
        if missing:
            raise MappingError(f"SOURCE_SQL_MAPPING: {name} maps no column to {', '.join(missing)}")
    clients = mapping["clients"]
    if not clients.get("version") or clients.get("version_kind") not in ("integer", "timestamp"):
        raise MappingError("SOURCE_SQL_MAPPING: clients needs a version column and a version_kind integer|timestamp")
    changes = mapping["changes"]
    if changes is not None and not all(changes.get(k) for k in ("table", "id", "key", "op", "version")):
        raise MappingError("SOURCE_SQL_MAPPING: changes needs table, id, key, op and version (or null)")
    try:
        ZoneInfo(mapping["naive_timestamps"])
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        zone = mapping["naive_timestamps"]
        raise MappingError(f"SOURCE_SQL_MAPPING: naive_timestamps {zone!r} is no time zone") from None


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def version_micros(value: dt.datetime, zone: dt.tzinfo) -> int:
    """A timestamp version as microseconds since 1970 (exact: no float on the way)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return (value - _EPOCH) // dt.timedelta(microseconds=1)
