"""The bench's own database and its demo source, with records of ~1 KB.

The demo ODS (core/ods.py) gives each client 1-3 account settings and 1-3
cards, which Avro-encode to ~450 bytes. The issue asks for ~1 KB messages, so the
bench seeds the same schema from the same deterministic demo rows and tops every
client up to ACCOUNTS account settings and CARDS cards (Luhn-valid numbers,
encrypted by the product like any other): 6 + 6 encode to ~980 bytes.
"""

import random
from urllib.parse import urlsplit

import psycopg

ACCOUNTS = 6
CARDS = 6


def database_ensure(url: str) -> None:
    """Create the database of `url` when it does not exist (kept between runs)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def bench_rows(clients: int, *, accounts: int = ACCOUNTS, cards: int = CARDS):
    """The demo rows of `clients` clients, each topped up to `accounts` and `cards` rows."""
    # core.ods reads Django's database connections: imported once the caller has set Django up.
    from core.ods import demo_rows, luhn_complete

    client_rows, account_rows, card_rows = demo_rows(clients)
    rng = random.Random(7)
    have_accounts: dict[int, int] = {}
    have_cards: dict[int, int] = {}
    for row in account_rows:
        have_accounts[row[1]] = have_accounts.get(row[1], 0) + 1
    for row in card_rows:
        have_cards[row[1]] = have_cards.get(row[1], 0) + 1
    for client in client_rows:
        client_id, updated = client[0], client[6]
        for j in range(have_accounts.get(client_id, 0), accounts):
            account_rows.append(
                (
                    f"30{client_id:08d}{j:02d}",
                    client_id,
                    rng.choice(("current", "savings", "business")),
                    rng.choice(("USD", "EUR", "GBP")),
                    rng.choice((50_000, 100_000, 250_000)),
                    rng.random() < 0.3,
                    rng.random() < 0.8,
                    rng.randint(1, 28),
                    rng.choice(("en", "de", "fr", "nl")),
                    updated,
                )
            )
        for j in range(have_cards.get(client_id, 0), cards):
            body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
            card_rows.append((client_id * 10 + j, client_id, luhn_complete(body), "visa", "09/30", "active", updated))
    return client_rows, account_rows, card_rows


def ods_seed_bench(clients: int, *, using: str = "default") -> dict[str, int]:
    """Schema `ods` in the bench database with `clients` clients of ~1 KB (dropped and made anew)."""
    # core.ods reads Django's database connections: imported once the caller has set Django up.
    from core.ods import ods_write

    return ods_write(*bench_rows(clients), using=using)
