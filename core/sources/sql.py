"""The SQL source: a system of record on any SQL database, through SQLAlchemy Core.

Statements are SQLAlchemy Core built from the mapping (core.sources.mapping), so each
database gets its own dialect's SQL (LIMIT or FETCH FIRST, sequences, quoting) from one
description. Where they run (`_Database`):
- the product's own PostgreSQL, or the Django alias "source" (SOURCE_DATABASE_URL a
  postgres:// URL): on Django's connection of that alias, so a source read shares the
  caller's transaction where there is one (a test's, a command's) and Django's
  connection handling; SQLAlchemy only runs statements on it (never commits, rolls
  back or closes it: Django owns those);
- any other SOURCE_DATABASE_URL (mysql+mysqldb://, db2+ibm_db://, oracle+oracledb://):
  an engine of its own, with a small pool.

Reading a batch: keyset paging by the client key (WHERE key > last ORDER BY key LIMIT n,
an index range scan whatever the offset), and per batch one transaction at the
database's snapshot isolation (mapping SNAPSHOT_ISOLATION) holding the clients with
their versions and the batch's account settings and cards: a change that commits
meanwhile is either wholly in the batch with its version, or not at all. Three plain
statements, not one aggregate: every engine runs them, and no JSON is built by the
database only to be parsed here. Rows come back typed by the columns' SQLAlchemy types
(a MariaDB TINYINT(1) as a bool), and what a driver still returns differently (a
Decimal for an integer, a timestamp without a zone) is normalised before the record
builder checks every field.
"""

import contextlib
import datetime as dt
import decimal
import functools
import json
import weakref
from collections.abc import Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from django.conf import settings
from django.db import connections, transaction
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from core.records import RecordError, client_record_from_rows, record_key
from core.sources.mapping import (
    ACCOUNT_FIELDS,
    CARD_FIELDS,
    CLIENT_FIELDS,
    SNAPSHOT_ISOLATION,
    mapping_load,
    version_micros,
)
from core.sources.types import Change, PartRange, SourceBatch, SourceError, SourceItem

# The record's fields by type (core.records checks them; these say how a column is read).
_BOOL = {"overdraft_enabled", "alerts_enabled"}
_INT = {"daily_limit_cents", "statement_day", "card_id"}
_TIME = {"updated_at"}


class SqlSource:
    """Clients of the mapped system of record, read in key order with keyset pagination."""

    name = "ods"

    def __init__(self, using: str | None = None, *, url: str | None = None, mapping: dict | None = None):
        self.db = _database(using=using, url=url)
        self.mapping = mapping or _mapping(settings.SOURCE_SQL_MAPPING)
        self.t = _tables(json.dumps(self.mapping, sort_keys=True))
        self._zone = ZoneInfo(self.mapping["naive_timestamps"])

    # ------------------------------------------------------------------ reads
    def count(self, *, client_ids: Sequence[int] | None = None) -> int:
        clients = self.t.clients
        query = sa.select(sa.func.count()).select_from(clients)
        if client_ids:
            query = query.where(clients.c["key"].in_(list(client_ids)))
        with self.db.snapshot() as conn:
            return int(conn.execute(query).scalar_one())

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
        """The clients with keys in (key_after, key_last] (None: unbounded), from `after` on,
        in key order; with `client_ids`, only those. Each batch is one snapshot."""
        start = after if key_after is None or (after is not None and after > key_after) else key_after
        if client_ids:
            low, high = start, key_last
            wanted = [i for i in sorted(set(client_ids)) if (low is None or i > low) and (high is None or i <= high)]
            # A batch is the next batch_size chosen keys: an IN list of the batch's keys, not of all of them.
            for offset in range(0, len(wanted), batch_size):
                chunk = wanted[offset : offset + batch_size]
                with self.db.snapshot() as conn:
                    clients = self.t.clients
                    rows = conn.execute(
                        self.t.client_select.where(clients.c["key"].in_(chunk)).order_by(clients.c["key"])
                    ).all()
                    parts = self._parts(conn, ids=[row[0] for row in rows]) if rows else ({}, {})
                if rows:
                    yield SourceBatch(self._items(rows, parts), chunk[-1])
            return
        while True:
            with self.db.snapshot() as conn:
                clients = self.t.clients
                key = clients.c["key"]
                query = self.t.client_select
                if start is not None:
                    query = query.where(key > start)
                if key_last is not None:
                    query = query.where(key <= key_last)
                rows = conn.execute(query.order_by(key).limit(batch_size)).all()
                if not rows:
                    return
                # The batch is the key range (start, last]: one range scan per table.
                last = rows[-1][0]
                parts = self._parts(conn, after=start, last=last)
            yield SourceBatch(self._items(rows, parts), last)
            start = last

    def parts(self, *, client_ids: Sequence[int] | None = None, size: int) -> list[PartRange]:
        """Ranges of `size` clients in key order (the chosen ones, with client_ids), covering every key:
        the first starts at the lowest key, the last runs to the end (a client added meanwhile is in it)."""
        clients = self.t.clients
        key = clients.c["key"]
        if client_ids:
            wanted = sorted(set(client_ids))
            out: list[PartRange] = []
            with self.db.snapshot() as conn:
                for offset in range(0, len(wanted), size):
                    chunk = wanted[offset : offset + size]
                    total = conn.execute(sa.select(sa.func.count()).select_from(clients).where(key.in_(chunk)))
                    out.append(PartRange(out[-1].key_last if out else None, chunk[-1], int(total.scalar_one())))
            return out
        bounds: list[int] = []
        with self.db.snapshot() as conn:
            # Each bound the size-th key after the one before: one index range of `size` keys per part.
            while True:
                query = sa.select(key)
                if bounds:
                    query = query.where(key > bounds[-1])
                bound = conn.execute(query.order_by(key).offset(size - 1).limit(1)).scalar_one_or_none()
                if bound is None:
                    break
                bounds.append(int(bound))
            tail = sa.select(sa.func.count()).select_from(clients)
            if bounds:
                tail = tail.where(key > bounds[-1])
            rest = int(conn.execute(tail).scalar_one())
        if rest == 0 and bounds:
            bounds.pop()  # the last full range runs to the end
            rest = size
        edges: list[int | None] = [None, *bounds, None]
        return [
            PartRange(edges[i], edges[i + 1], size if i < len(bounds) else rest)
            for i in range(len(edges) - 1)
            if i < len(bounds) or rest
        ]

    def fetch(self, client_ids: Sequence[int]) -> dict[int, SourceItem]:
        """The current record and version of each client that exists, from one snapshot."""
        ids = sorted(set(client_ids))
        if not ids:
            return {}
        with self.db.snapshot() as conn:
            rows = conn.execute(self.t.client_select.where(self.t.clients.c["key"].in_(ids))).all()
            parts = self._parts(conn, ids=ids)
        return dict(zip((r[0] for r in rows), self._items(rows, parts), strict=True))

    def _parts(self, conn: Connection, *, after: int | None = None, last: int = 0, ids: Sequence[int] | None = None):
        """Each client's account-setting rows and card rows (ACCOUNT_COLUMNS, CARD_COLUMNS), by client key."""
        out = []
        t = self.t
        for table, select, roles in (
            (t.accounts, t.account_select, t.account_roles),
            (t.cards, t.card_select, t.card_roles),
        ):
            key = table.c["key"]
            if ids is not None:
                select = select.where(key.in_(list(ids)))
            else:
                select = select.where(key <= last) if after is None else select.where(key > after, key <= last)
            rows = self._typed(conn.execute(select.order_by(key, table.c["order"])).all(), roles)
            by_client: dict[int, list] = {}
            for row in rows:
                by_client.setdefault(row[0], []).append(row[1:])
            out.append(by_client)
        return out

    def _items(self, rows, parts) -> list[SourceItem]:
        accounts, cards = parts
        items = []
        for row in self._typed(rows, self.t.client_roles):
            cid = row[0]
            version = self._version(row[1])
            key, where = record_key(cid), f"client {cid}"
            try:
                record = client_record_from_rows((cid, *row[2:]), accounts.get(cid, ()), cards.get(cid, ()))
            except RecordError as exc:
                items.append(SourceItem(key, None, str(exc), where, version))
            else:
                items.append(SourceItem(key, record, "", where, version))
        return items

    def _typed(self, rows: Sequence, roles: Sequence[str]) -> Sequence:
        """The rows with what a driver returns differently made the record builder's types
        (it checks them all): a Decimal for an integer, a timestamp without a zone, a 0/1
        for a boolean. Decided per batch and column: a column whose values all have the
        type already (PostgreSQL's, always) is left as it is."""
        fix = []
        wanted: type
        for index, role in enumerate(roles):
            if role in _TIME:
                wanted, convert = dt.datetime, self._aware
            elif role in _INT or role == "key":
                wanted, convert = int, _integral
            elif role in _BOOL:
                wanted, convert = bool, _boolean
            else:
                continue
            kinds = set(map(type, (row[index] for row in rows)))
            kinds.discard(type(None))
            if kinds - {wanted} or (
                wanted is dt.datetime and any(row[index].tzinfo is None for row in rows if row[index] is not None)
            ):
                fix.append((index, convert))
        if not fix:
            return rows
        out = []
        for row in rows:
            values = list(row)
            for index, convert in fix:
                if values[index] is not None:
                    values[index] = convert(values[index])
            out.append(values)
        return out

    def _aware(self, value):
        return value.replace(tzinfo=self._zone) if type(value) is dt.datetime and value.tzinfo is None else value

    def _version(self, value) -> int:
        if self.mapping["clients"]["version_kind"] == "timestamp":
            return version_micros(value, self._zone)
        return int(value)

    def version_draw(self) -> int:
        """A version newer than every one the source gave so far (a delete of a record it no
        longer holds: the change row that said so may be long gone)."""
        sequence = self.mapping["version_sequence"]
        with self.db.writing() as conn:
            if sequence:
                seq = sa.Sequence(sequence, schema=self.mapping["schema"])
                return int(conn.execute(sa.select(seq.next_value())).scalar_one())
            if self.mapping["clients"]["version_kind"] == "timestamp":
                now = conn.execute(sa.select(sa.func.current_timestamp())).scalar_one()
                return version_micros(now, self._zone) + 1
        raise SourceError("the SQL source has no version_sequence to draw a version from")

    def version_bound(self) -> int:
        """The highest version the source can have given so far: no record of it is newer.

        PostgreSQL reads its sequence's last value without drawing; another database draws
        one (also a bound, at the cost of a gap in the sequence); timestamp versions: now.
        The feed bounds what it cannot verify by this (kafkacache.versions)."""
        sequence = self.mapping["version_sequence"]
        if sequence:
            with self.db.snapshot() as conn:
                if conn.dialect.name == "postgresql":
                    quote = conn.dialect.identifier_preparer
                    name = quote.quote(sequence)
                    if self.mapping["schema"]:
                        name = f"{quote.quote_schema(self.mapping['schema'])}.{name}"
                    return int(conn.execute(sa.text(f"SELECT last_value FROM {name}")).scalar_one())  # noqa: S608
        return self.version_draw()

    def versions(self, *, after: int = 0, limit: int) -> list[tuple[int, int]]:
        """(client key, version) of every client, in key order (the cache leg's full compare)."""
        clients = self.t.clients
        query = sa.select(clients.c["key"], clients.c["version"]).where(clients.c["key"] > after)
        with self.db.snapshot() as conn:
            rows = conn.execute(query.order_by(clients.c["key"]).limit(limit)).all()
        return [(int(k), self._version(v)) for k, v in rows]

    def versions_all(self, *, batch: int) -> Iterator[list[tuple[int, int]]]:
        """(client key, version) of every client in batches, from one snapshot and one streamed
        query (a server-side cursor): the digest leg's pass, where a keyset query per batch
        cost more than the rows."""
        clients = self.t.clients
        query = sa.select(clients.c["key"], clients.c["version"])
        integer = self.mapping["clients"]["version_kind"] != "timestamp"
        with self.db.snapshot() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
            for rows in result.partitions():
                if integer:
                    yield [(int(k), int(v)) for k, v in rows]
                else:
                    yield [(int(k), self._version(v)) for k, v in rows]

    def versions_of(self, client_ids: Sequence[int]) -> dict[int, int]:
        """The version of each of these clients that exists (the cache leg of a set of keys)."""
        ids = sorted(set(client_ids))
        if not ids:
            return {}
        clients = self.t.clients
        with self.db.snapshot() as conn:
            rows = conn.execute(
                sa.select(clients.c["key"], clients.c["version"]).where(clients.c["key"].in_(ids))
            ).all()
        return {int(k): self._version(v) for k, v in rows}

    def readable(self) -> bool:
        """Whether the mapped tables exist here (a deployment may feed only files and the API)."""
        part = self.mapping["clients"]
        if "table" not in part:
            return True  # a query: it either runs or the load says why
        with self.db.snapshot() as conn:
            return sa.inspect(conn).has_table(part["table"], schema=self.mapping["schema"])

    # ------------------------------------------------------------------ the change table
    def changes_read(self, *, limit: int) -> list[Change]:
        """The oldest changes not yet published, in change order.

        Selected by presence, not by a position: a sequence is not
        transactional, so a change committed late can carry a smaller change_id
        than changes already published; it is simply read on the next call.
        """
        changes = self._changes()
        old_key = changes.c.old_key if "old_key" in changes.c else sa.null()
        query = sa.select(changes.c.id, changes.c.key, old_key, changes.c.op, changes.c.version)
        with self.db.snapshot() as conn:
            rows = conn.execute(query.order_by(changes.c.id).limit(limit)).all()
        return [Change(int(i), int(k), None if o is None else int(o), op, self._version(v)) for i, k, o, op, v in rows]

    def changes_done(self, change_ids: Sequence[int]) -> None:
        """Forget published changes (the publish ledger is their record from now on)."""
        changes = self._changes()
        with self.db.writing() as conn:
            conn.execute(sa.delete(changes).where(changes.c.id.in_(list(change_ids))))

    def _changes(self) -> sa.Table:
        if self.t.changes is None:
            raise SourceError("the SQL source's mapping has no change table: no change feed")
        return self.t.changes


def _integral(value):
    if type(value) is not int and isinstance(value, decimal.Decimal) and value == value.to_integral():
        return int(value)
    return value


def _boolean(value):
    return bool(value) if type(value) is not bool and isinstance(value, int) else value


class _Tables:
    """The mapped tables as SQLAlchemy Core objects, their columns found by role (key,
    version, order, the record's fields) whatever the source calls them."""

    def __init__(self, mapping: dict):
        self.metadata = sa.MetaData(schema=mapping["schema"])
        kind = mapping["clients"]["version_kind"]
        self.clients = self._part("clients", mapping["clients"], CLIENT_FIELDS, version=kind)
        self.accounts = self._part("accounts", mapping["accounts"], ACCOUNT_FIELDS)
        self.cards = self._part("cards", mapping["cards"], CARD_FIELDS)
        self.client_roles = ("key", "version", *CLIENT_FIELDS)
        self.client_select = sa.select(*(self.clients.c[r] for r in self.client_roles))
        self.account_roles = ("key", *ACCOUNT_FIELDS)
        self.account_select = sa.select(*(self.accounts.c[r] for r in self.account_roles))
        self.card_roles = ("key", *CARD_FIELDS)
        self.card_select = sa.select(*(self.cards.c[r] for r in self.card_roles))
        changes = mapping["changes"]
        self.changes = None
        if changes:
            columns = [
                sa.Column(changes["id"], sa.BigInteger, key="id", primary_key=True),
                sa.Column(changes["key"], sa.BigInteger, key="key"),
                sa.Column(changes["op"], sa.String, key="op"),
                sa.Column(changes["version"], _version_type(kind), key="version"),
            ]
            if changes.get("old_key"):  # a source whose keys never change may have none
                columns.append(sa.Column(changes["old_key"], sa.BigInteger, key="old_key"))
            self.changes = sa.Table(changes["table"], self.metadata, *columns)

    def _part(self, name: str, part: dict, fields: Sequence[str], *, version: str = "") -> "_Keyed":
        specs: list[tuple[str, str, Any]] = [("key", part["key"], sa.BigInteger)]
        if version:
            specs.append(("version", part["version"], _version_type(version)))
        specs.extend((field, part["columns"][field], _field_type(field)) for field in fields)
        order = part.get("order_by")
        if order and order not in {column for _, column, _ in specs}:
            specs.append(("order", order, sa.String))
        types: dict[str, Any] = {}
        for _, column, kind in specs:  # one column per source column, whatever roles it plays
            types.setdefault(column, kind)
        if "query" in part:
            from_: Any = (
                sa.text(part["query"]).columns(*(sa.column(c, kind) for c, kind in types.items())).subquery(name)
            )
        else:
            from_ = sa.Table(part["table"], self.metadata, *(sa.Column(c, kind) for c, kind in types.items()))
        roles = {role: from_.c[column] for role, column, _ in specs}
        if order:
            roles["order"] = from_.c[order]
        return _Keyed(from_, roles)


class _Keyed:
    """A table or derived table whose columns are found by role (`.c["key"]`, `.c[field]`)."""

    def __init__(self, from_, columns: dict[str, Any]):
        self.from_ = from_
        self.c = columns

    def __clause_element__(self):
        return self.from_


def _field_type(field: str):
    if field in _BOOL:
        return sa.Boolean(create_constraint=False)
    if field in _INT:
        return sa.BigInteger
    if field in _TIME:
        return sa.DateTime(timezone=True)
    return sa.String


def _version_type(kind: str):
    return sa.DateTime(timezone=True) if kind == "timestamp" else sa.BigInteger


@functools.lru_cache(maxsize=16)
def _tables(mapping: str) -> _Tables:
    """The Core objects of a mapping, made once: SQLAlchemy then reuses their compiled statements."""
    return _Tables(json.loads(mapping))


@functools.cache
def _mapping(path: str) -> dict:
    try:
        return mapping_load(path)
    except ValueError as exc:
        raise SourceError(str(exc)) from None


# ---------------------------------------------------------------------- where statements run
class _Database:
    def snapshot(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def writing(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError


class _DjangoDatabase(_Database):
    """Statements on Django's connection of a PostgreSQL alias (see the module's docstring)."""

    def __init__(self, alias: str):
        self.alias = alias

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        django = connections[self.alias]
        outer = django.in_atomic_block
        with transaction.atomic(using=self.alias):
            if not outer:  # our own transaction: make it a snapshot (a caller's is the caller's)
                with django.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            with _borrowed_engine(django).connect() as conn:
                yield conn

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        with transaction.atomic(using=self.alias), _borrowed_engine(connections[self.alias]).connect() as conn:
            yield conn


class _EngineDatabase(_Database):
    """Statements on an engine of SOURCE_DATABASE_URL (any database SQLAlchemy has a dialect for)."""

    def __init__(self, engine: Engine, isolation_level: str | None):
        self.engine = engine
        self.isolation = isolation_level or SNAPSHOT_ISOLATION.get(engine.dialect.name)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.isolation:
                conn = conn.execution_options(isolation_level=self.isolation)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn


class _Borrowed:
    """Django's DBAPI connection as SQLAlchemy's pool sees it: statements run on it, and
    SQLAlchemy's commit, rollback and close do nothing (Django owns the transaction and
    the connection's life)."""

    def __init__(self, dbapi):
        self._dbapi = dbapi

    def __getattr__(self, name: str):
        return getattr(self._dbapi, name)

    def cursor(self, *args, **kwargs):
        return self._dbapi.cursor(*args, **kwargs)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


_borrowed: "weakref.WeakKeyDictionary[Any, Engine]" = weakref.WeakKeyDictionary()


def _borrowed_engine(django) -> Engine:
    """One SQLAlchemy engine per DBAPI connection Django holds (a new one after Django
    reconnects): its dialect set up once per connection, no pool of its own."""
    django.ensure_connection()
    dbapi = django.connection
    engine = _borrowed.get(dbapi)
    if engine is None:
        engine = sa.create_engine(
            "postgresql+psycopg://", creator=lambda: _Borrowed(dbapi), poolclass=StaticPool, use_native_hstore=False
        )
        _borrowed[dbapi] = engine
    return engine


def source_alias() -> str:
    return "source" if "source" in settings.DATABASES else "default"


def _database(*, using: str | None, url: str | None) -> _Database:
    url = url if url is not None else settings.SOURCE_DATABASE_URL
    if using or not url or url.split("://", 1)[0] in ("postgres", "postgresql"):
        return _DjangoDatabase(using or source_alias())
    return _EngineDatabase(_engine(url), _mapping(settings.SOURCE_SQL_MAPPING)["isolation_level"])


@functools.cache
def _engine(url: str) -> Engine:
    try:
        return sa.create_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True, pool_recycle=1800)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise SourceError(f"SOURCE_DATABASE_URL: {exc}") from None
