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
