"""The demo system of record: an ODS-like PostgreSQL schema `ods`, and its seed.

Tables: ods.clients, ods.account_settings, ods.cards (each with updated_at) and
ods.client_changes, the change table the change feed reads.

Source versions: every committed change of a client (its row, an account
setting or a card) gives the client a new `row_version` from one sequence,
`ods.record_version`, in the same transaction, while the client's row is locked
(parts bump it with an UPDATE of the client row). So for every key the version
grows in commit order: two writers of one client serialize on its row lock and
the later one draws the larger number. A delete draws a fresh number too and
writes it to its change row; a renumbered client keeps one row, so its new key
gets a fresh version and the old key's delete carries the same one. A reused id
(client 5 deleted, a new client 5 inserted) starts above every earlier version
of key 5. The cache applies a message only if its version is newer than what a
key holds (kafkacache.cache), so the order in which messages arrive no longer
decides what the cache ends up with.

Why a change table filled by triggers rather than polling updated_at: an
updated-at column cannot show deletes (the row is gone) nor a client whose key
changed (the old key is gone), and two writes in the same millisecond are
ambiguous. The triggers write one row per change in the same transaction as the
change itself. The feed reads the rows it can see, publishes them, then deletes
them (sources.SqlSource.changes_read / changes_done): a row whose transaction
commits late, behind rows already published, is still picked up on the next run,
which a cursor over change_id would skip. A real DB2 ODS would fill the same
table from its CDC tool.
"""

import datetime as dt
import random

import sqlalchemy as sa
from django.db import connections

from core.cards import luhn_complete

SCHEMA_SQL = """
CREATE SCHEMA ods;
-- One sequence for every record's version: a key's versions grow across renames and reused ids.
CREATE SEQUENCE ods.record_version;
CREATE TABLE ods.clients (
    client_id bigint PRIMARY KEY,
    name text NOT NULL,
    email text,
    segment text NOT NULL,
    status text NOT NULL,
    country text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    row_version bigint NOT NULL DEFAULT nextval('ods.record_version')
);
CREATE TABLE ods.account_settings (
    account_number text PRIMARY KEY,
    client_id bigint NOT NULL REFERENCES ods.clients ON UPDATE CASCADE ON DELETE CASCADE,
    product text NOT NULL,
    currency text NOT NULL,
    daily_limit_cents bigint NOT NULL,
    overdraft_enabled boolean NOT NULL,
    alerts_enabled boolean NOT NULL,
    statement_day integer NOT NULL,
    language text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- record building: WHERE client_id = ANY(...)
CREATE INDEX account_settings_client ON ods.account_settings (client_id);
CREATE TABLE ods.cards (
    card_id bigint PRIMARY KEY,
    client_id bigint NOT NULL REFERENCES ods.clients ON UPDATE CASCADE ON DELETE CASCADE,
    card_number text NOT NULL,
    brand text NOT NULL,
    expiry text NOT NULL,
    status text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cards_client ON ods.cards (client_id);
CREATE TABLE ods.client_changes (
    change_id bigserial PRIMARY KEY,
    client_id bigint NOT NULL,
    old_client_id bigint,
    op text NOT NULL CHECK (op IN ('add', 'update', 'delete')),
    -- the client's row_version after the change (a delete: the number it drew)
    version bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
"""

TRIGGERS_SQL = """
-- Every update of a client row draws a new version (also the updates below, made
-- for its account settings and cards), under the row lock the UPDATE holds.
CREATE FUNCTION ods.client_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.row_version := nextval('ods.record_version');
    RETURN NEW;
END $$;

CREATE FUNCTION ods.client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ods.client_changes (client_id, op, version) VALUES (NEW.client_id, 'add', NEW.row_version);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO ods.client_changes (client_id, old_client_id, op, version)
        VALUES (NEW.client_id, NULLIF(OLD.client_id, NEW.client_id), 'update', NEW.row_version);
    ELSE
        INSERT INTO ods.client_changes (client_id, op, version)
        VALUES (OLD.client_id, 'delete', nextval('ods.record_version'));
    END IF;
    RETURN NULL;
END $$;

-- A change to an account setting or a card is an update of its client's record:
-- it bumps the client's version (the client trigger then writes the change row).
-- A cascade from a deleted client finds no client row: nothing to bump.
CREATE FUNCTION ods.client_part_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE ods.clients SET updated_at = now() WHERE client_id = NEW.client_id;
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.client_id <> NEW.client_id) THEN
        UPDATE ods.clients SET updated_at = now() WHERE client_id = OLD.client_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER clients_versioned BEFORE UPDATE ON ods.clients
    FOR EACH ROW EXECUTE FUNCTION ods.client_versioned();
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON ods.clients
    FOR EACH ROW EXECUTE FUNCTION ods.client_changed();
CREATE TRIGGER account_settings_changed AFTER INSERT OR UPDATE OR DELETE ON ods.account_settings
    FOR EACH ROW EXECUTE FUNCTION ods.client_part_changed();
CREATE TRIGGER cards_changed AFTER INSERT OR UPDATE OR DELETE ON ods.cards
    FOR EACH ROW EXECUTE FUNCTION ods.client_part_changed();
"""

_FIRST_NAMES = (
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
    "Joan",
    "Niklaus",
)
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Lee")
_SEGMENTS = ("retail", "private", "business", "student")
_COUNTRIES = ("US", "GB", "DE", "FR", "NL", "IE", "CA")
_PRODUCTS = (("current", "USD"), ("savings", "USD"), ("current", "EUR"), ("business", "GBP"))
_LANGUAGES = ("en", "de", "fr", "nl")
_BASE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def demo_rows(clients: int, *, seed: int = 20261125) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Deterministic clients, account settings and cards (same seed, same rows)."""
    rng = random.Random(seed)
    client_rows, account_rows, card_rows = [], [], []
    for client_id in range(1, clients + 1):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        updated = _BASE_TIME + dt.timedelta(minutes=client_id, milliseconds=rng.randrange(60_000))
        email = f"{first}.{last}.{client_id}@example.com".lower() if rng.random() < 0.9 else None
        client_rows.append(
            (client_id, f"{first} {last}", email, rng.choice(_SEGMENTS), "active", rng.choice(_COUNTRIES), updated)
        )
        for j in range(rng.randint(1, 3)):
            product, currency = rng.choice(_PRODUCTS)
            account_rows.append(
                (
                    f"30{client_id:08d}{j:02d}",
                    client_id,
                    product,
                    currency,
                    rng.choice((50_000, 100_000, 250_000, 1_000_000)),
                    rng.random() < 0.3,
                    rng.random() < 0.8,
                    rng.randint(1, 28),
                    rng.choice(_LANGUAGES),
                    updated,
                )
            )
        for j in range(rng.randint(1, 3)):
            prefix = rng.choice(("4", "51", "52", "55"))
            body = prefix + "".join(str(rng.randrange(10)) for _ in range(15 - len(prefix)))
            card_rows.append(
                (
                    client_id * 10 + j,
                    client_id,
                    luhn_complete(body),
                    "visa" if prefix == "4" else "mastercard",
                    f"{rng.randint(1, 12):02d}/{rng.randint(27, 31)}",
                    rng.choice(("active", "active", "active", "blocked")),
                    updated,
                )
            )
    return client_rows, account_rows, card_rows


def ods_seed(*, clients: int, using: str) -> dict[str, int]:
    """Recreate schema `ods` with `clients` demo clients (drops what was there)."""
    return ods_write(*demo_rows(clients), using=using)


def ods_write(client_rows: list, account_rows: list, card_rows: list, *, using: str) -> dict[str, int]:
    """Recreate schema `ods` holding exactly these rows (drops what was there).

    Rows go in with COPY before the triggers exist, so the seed is a starting
    state for bulk loads, not a burst of change events.
    """
    with connections[using].cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS ods CASCADE")
        cursor.execute(SCHEMA_SQL)
        for table, columns, rows in (
            ("clients", "client_id, name, email, segment, status, country, updated_at", client_rows),
            (
                "account_settings",
                "account_number, client_id, product, currency, daily_limit_cents, overdraft_enabled,"
                " alerts_enabled, statement_day, language, updated_at",
                account_rows,
            ),
            ("cards", "card_id, client_id, card_number, brand, expiry, status, updated_at", card_rows),
        ):
            with cursor.copy(f"COPY ods.{table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cursor.execute(TRIGGERS_SQL)
        cursor.execute("ANALYZE ods.clients; ANALYZE ods.account_settings; ANALYZE ods.cards")
    return {"clients": len(client_rows), "account_settings": len(account_rows), "cards": len(card_rows)}


# ---------------------------------------------------------------------------- other engines
# The same system of record on MariaDB/MySQL and on DB2, for the SQL source's tests and as
# the pattern of a real ODS's triggers (docs/sources.md). A schema there is a database
# (MariaDB) or a schema (DB2); the statements name tables unqualified, run in it.
#
# MariaDB: a sequence (10.3+) draws versions as PostgreSQL's does, under the client row's
# lock (BEFORE UPDATE). One trigger per event (MariaDB has no multi-event triggers).
# InnoDB runs no trigger for a foreign key's cascade: a deleted client's cards go with it
# silently (its own delete row says enough), a renumbered client's parts follow it.
MARIADB_SCHEMA = [
    "CREATE SEQUENCE record_version",
    """CREATE TABLE clients (
        client_id BIGINT PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        email VARCHAR(320),
        segment VARCHAR(40) NOT NULL,
        status VARCHAR(40) NOT NULL,
        country VARCHAR(2) NOT NULL,
        updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        row_version BIGINT NOT NULL DEFAULT (NEXT VALUE FOR record_version)
    ) ENGINE=InnoDB""",
    """CREATE TABLE account_settings (
        account_number VARCHAR(34) PRIMARY KEY,
        client_id BIGINT NOT NULL,
        product VARCHAR(40) NOT NULL,
        currency VARCHAR(3) NOT NULL,
        daily_limit_cents BIGINT NOT NULL,
        overdraft_enabled BOOLEAN NOT NULL,
        alerts_enabled BOOLEAN NOT NULL,
        statement_day INT NOT NULL,
        language VARCHAR(8) NOT NULL,
        updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        KEY account_settings_client (client_id),
        FOREIGN KEY (client_id) REFERENCES clients (client_id) ON UPDATE CASCADE ON DELETE CASCADE
    ) ENGINE=InnoDB""",
    """CREATE TABLE cards (
        card_id BIGINT PRIMARY KEY,
        client_id BIGINT NOT NULL,
        card_number VARCHAR(19) NOT NULL,
        brand VARCHAR(20) NOT NULL,
        expiry VARCHAR(5) NOT NULL,
        status VARCHAR(20) NOT NULL,
        updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        KEY cards_client (client_id),
        FOREIGN KEY (client_id) REFERENCES clients (client_id) ON UPDATE CASCADE ON DELETE CASCADE
    ) ENGINE=InnoDB""",
    """CREATE TABLE client_changes (
        change_id BIGINT AUTO_INCREMENT PRIMARY KEY,
        client_id BIGINT NOT NULL,
        old_client_id BIGINT,
        op VARCHAR(6) NOT NULL CHECK (op IN ('add', 'update', 'delete')),
        version BIGINT NOT NULL,
        changed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
    ) ENGINE=InnoDB""",
]
# A part's change bumps its client (the client triggers then draw the version and write the row).
_MARIADB_PART_TRIGGERS = (
    """CREATE TRIGGER {table}_added AFTER INSERT ON {table} FOR EACH ROW
        UPDATE clients SET updated_at = NOW(6) WHERE client_id = NEW.client_id""",
    """CREATE TRIGGER {table}_updated AFTER UPDATE ON {table} FOR EACH ROW
        BEGIN
            UPDATE clients SET updated_at = NOW(6) WHERE client_id = NEW.client_id;
            IF OLD.client_id <> NEW.client_id THEN
                UPDATE clients SET updated_at = NOW(6) WHERE client_id = OLD.client_id;
            END IF;
        END""",
    """CREATE TRIGGER {table}_deleted AFTER DELETE ON {table} FOR EACH ROW
        UPDATE clients SET updated_at = NOW(6) WHERE client_id = OLD.client_id""",
)
MARIADB_TRIGGERS = [
    """CREATE TRIGGER clients_versioned BEFORE UPDATE ON clients FOR EACH ROW
        SET NEW.row_version = NEXT VALUE FOR record_version""",
    """CREATE TRIGGER clients_added AFTER INSERT ON clients FOR EACH ROW
        INSERT INTO client_changes (client_id, op, version) VALUES (NEW.client_id, 'add', NEW.row_version)""",
    """CREATE TRIGGER clients_updated AFTER UPDATE ON clients FOR EACH ROW
        INSERT INTO client_changes (client_id, old_client_id, op, version)
        VALUES (NEW.client_id, NULLIF(OLD.client_id, NEW.client_id), 'update', NEW.row_version)""",
    """CREATE TRIGGER clients_deleted AFTER DELETE ON clients FOR EACH ROW
        INSERT INTO client_changes (client_id, op, version)
        VALUES (OLD.client_id, 'delete', NEXT VALUE FOR record_version)""",
    *(t.replace("{table}", table) for table in ("account_settings", "cards") for t in _MARIADB_PART_TRIGGERS),
]

# DB2 (LUW 11.5; z/OS 12+ alike but for the tablespace clauses a DBA adds): a sequence and
# the same triggers. DB2 has no snapshot reads: the SQL source reads each batch at
# isolation RS, which holds the rows it read until the batch's transaction ends.
DB2_SCHEMA = [
    "CREATE SEQUENCE record_version AS BIGINT START WITH 1 INCREMENT BY 1 NO CYCLE CACHE 50",
    """CREATE TABLE clients (
        client_id BIGINT NOT NULL PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        email VARCHAR(320),
        segment VARCHAR(40) NOT NULL,
        status VARCHAR(40) NOT NULL,
        country VARCHAR(2) NOT NULL,
        updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT TIMESTAMP,
        row_version BIGINT NOT NULL
    )""",
    """CREATE TABLE account_settings (
        account_number VARCHAR(34) NOT NULL PRIMARY KEY,
        client_id BIGINT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
        product VARCHAR(40) NOT NULL,
        currency VARCHAR(3) NOT NULL,
        daily_limit_cents BIGINT NOT NULL,
        overdraft_enabled BOOLEAN NOT NULL,
        alerts_enabled BOOLEAN NOT NULL,
        statement_day INTEGER NOT NULL,
        language VARCHAR(8) NOT NULL,
        updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT TIMESTAMP
    )""",
    "CREATE INDEX account_settings_client ON account_settings (client_id)",
    """CREATE TABLE cards (
        card_id BIGINT NOT NULL PRIMARY KEY,
        client_id BIGINT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
        card_number VARCHAR(19) NOT NULL,
        brand VARCHAR(20) NOT NULL,
        expiry VARCHAR(5) NOT NULL,
        status VARCHAR(20) NOT NULL,
        updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT TIMESTAMP
    )""",
    "CREATE INDEX cards_client ON cards (client_id)",
    """CREATE TABLE client_changes (
        change_id BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        client_id BIGINT NOT NULL,
        old_client_id BIGINT,
        op VARCHAR(6) NOT NULL CHECK (op IN ('add', 'update', 'delete')),
        version BIGINT NOT NULL,
        changed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT TIMESTAMP
    )""",
]
DB2_TRIGGERS = [
    """CREATE TRIGGER clients_numbered NO CASCADE BEFORE INSERT ON clients REFERENCING NEW AS n
        FOR EACH ROW SET n.row_version = NEXT VALUE FOR record_version""",
    """CREATE TRIGGER clients_versioned NO CASCADE BEFORE UPDATE ON clients REFERENCING NEW AS n
        FOR EACH ROW SET n.row_version = NEXT VALUE FOR record_version""",
    """CREATE TRIGGER clients_added AFTER INSERT ON clients REFERENCING NEW AS n FOR EACH ROW
        INSERT INTO client_changes (client_id, op, version) VALUES (n.client_id, 'add', n.row_version)""",
    """CREATE TRIGGER clients_updated AFTER UPDATE ON clients REFERENCING OLD AS o NEW AS n FOR EACH ROW
        INSERT INTO client_changes (client_id, old_client_id, op, version)
        VALUES (n.client_id, NULLIF(o.client_id, n.client_id), 'update', n.row_version)""",
    """CREATE TRIGGER clients_deleted AFTER DELETE ON clients REFERENCING OLD AS o FOR EACH ROW
        INSERT INTO client_changes (client_id, op, version)
        VALUES (o.client_id, 'delete', NEXT VALUE FOR record_version)""",
    *(
        t.replace("{table}", table)
        for table in ("account_settings", "cards")
        for t in (
            """CREATE TRIGGER {table}_added AFTER INSERT ON {table} REFERENCING NEW AS n FOR EACH ROW
                UPDATE clients SET updated_at = CURRENT TIMESTAMP WHERE client_id = n.client_id""",
            """CREATE TRIGGER {table}_updated AFTER UPDATE ON {table} REFERENCING OLD AS o NEW AS n FOR EACH ROW
                BEGIN ATOMIC
                    UPDATE clients SET updated_at = CURRENT TIMESTAMP WHERE client_id = n.client_id;
                    IF o.client_id <> n.client_id THEN
                        UPDATE clients SET updated_at = CURRENT TIMESTAMP WHERE client_id = o.client_id;
                    END IF;
                END""",
            """CREATE TRIGGER {table}_deleted AFTER DELETE ON {table} REFERENCING OLD AS o FOR EACH ROW
                UPDATE clients SET updated_at = CURRENT TIMESTAMP WHERE client_id = o.client_id""",
        )
    ),
]

_COLUMNS = {
    "clients": ("client_id", "name", "email", "segment", "status", "country", "updated_at"),
    "account_settings": (
        "account_number",
        "client_id",
        "product",
        "currency",
        "daily_limit_cents",
        "overdraft_enabled",
        "alerts_enabled",
        "statement_day",
        "language",
        "updated_at",
    ),
    "cards": ("card_id", "client_id", "card_number", "brand", "expiry", "status", "updated_at"),
}


def ods_write_engine(engine, client_rows: list, account_rows: list, card_rows: list) -> dict[str, int]:
    """The demo system of record on a MariaDB or DB2 database (a SQLAlchemy engine, into its
    default schema, which must hold no such tables): the rows go in before the triggers, as
    ods_write does, so the seed is a starting state, not a burst of change events."""
    db2 = engine.dialect.name in ("ibm_db_sa", "db2")
    schema, triggers = (DB2_SCHEMA, DB2_TRIGGERS) if db2 else (MARIADB_SCHEMA, MARIADB_TRIGGERS)
    naive = engine.dialect.name in ("mysql", "mariadb")  # DATETIME holds no zone: stored as UTC
    with engine.begin() as conn:
        for ddl in schema:
            conn.exec_driver_sql(ddl)
        for table, rows in (("clients", client_rows), ("account_settings", account_rows), ("cards", card_rows)):
            names = _COLUMNS[table]
            if table == "clients" and not naive:
                names, rows = (*names, "row_version"), [(*row, n) for n, row in enumerate(rows, start=1)]
            values = [dict(zip(names, row, strict=True)) for row in rows]
            if naive:
                for value in values:
                    value["updated_at"] = value["updated_at"].astimezone(dt.UTC).replace(tzinfo=None)
            if values:
                conn.execute(sa.insert(sa.table(table, *(sa.column(c) for c in names))), values)
        if not naive:  # DB2: versions drawn above the seeded ones
            conn.exec_driver_sql(f"ALTER SEQUENCE record_version RESTART WITH {len(client_rows) + 1}")
        for ddl in triggers:
            conn.exec_driver_sql(ddl)
    return {"clients": len(client_rows), "account_settings": len(account_rows), "cards": len(card_rows)}
