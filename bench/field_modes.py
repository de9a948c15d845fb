"""What each field-encryption mode costs per record: AES-GCM and FF1 format-preserving, to
encrypt (the producer's record_encode: Avro included), to decrypt (record_decode with
decrypt=True: the retrieval API, validation) and to move a record from AES-GCM to FF1
(keys_reencrypt's record_reencrypt), on the demo source's records (1-3 accounts and 1-3
cards each, about four encrypted fields a record).

    .venv/bin/python bench/field_modes.py [--records 5000]

No services: pure CPU on this machine, each figure the best of three passes (the figures
scale with its load; the load average is printed). Prints figures, asserts nothing.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A laptop run with DEBUG off and the development keys (config.secrets): never in production.
os.environ.setdefault("KAFKACACHE_ALLOW_DEV_SECRETS", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402

from core.ods import demo_rows  # noqa: E402
from core.records import SENSITIVE, client_record_build, record_decode, record_encode, record_reencrypt  # noqa: E402

MODES = {
    "aes-gcm (both fields)": {},
    "ff1 (both, all digits)": {"cards.card_number": "ff1", "accounts.account_number": "ff1"},
    "ff1-luhn-last4 cards, ff1 accounts": {"cards.card_number": "ff1-luhn-last4", "accounts.account_number": "ff1"},
}


def plain_records(n: int) -> list[dict]:
    clients, accounts, cards = demo_rows(n)
    by_client: dict[int, tuple[list, list]] = {c[0]: ([], []) for c in clients}
    names_a = ("account_number", "client_id", "product", "currency", "daily_limit_cents", "overdraft_enabled")
    names_a += ("alerts_enabled", "statement_day", "language")
    for a in accounts:
        by_client[a[1]][0].append(dict(zip(names_a, a, strict=False)))
    for c in cards:
        by_client[c[1]][1].append(
            dict(zip(("card_id", "client_id", "card_number", "brand", "expiry", "status"), c, strict=False))
        )
    out = []
    for row in clients:
        names = ("client_id", "name", "email", "segment", "status", "country", "updated_at")
        client = dict(zip(names, row, strict=True))
        acc, crd = by_client[row[0]]
        out.append(client_record_build(client=client, accounts=acc, cards=crd))
    return out


def timed(fn, items, repeat: int = 3) -> float:
    """µs per item, the best of `repeat` passes (the machine is shared: the best pass is the cost)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - started)
    return best / len(items) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5000)
    args = parser.parse_args()
    records = plain_records(args.records)
    fields = sum(len(r[name]) for r in records for name, _, _ in SENSITIVE) / len(records)
    print(f"{len(records):,} records, {fields:.1f} encrypted fields a record, load average {os.getloadavg()[0]:.2f}")
    print(f"{'mode':<38} {'encode µs/rec':>14} {'decode µs/rec':>14} {'from aes-gcm µs/rec':>20} {'value bytes':>12}")
    settings.FIELD_ENCRYPTION_MODES = {}
    gcm_values = [(record_encode(r).value, r["client_id"]) for r in records]
    for name, modes in MODES.items():
        settings.FIELD_ENCRYPTION_MODES = modes
        record_encode(records[0])  # warm-up: key derivation, parsed schemas
        encode = timed(record_encode, records)
        encoded = [record_encode(r) for r in records]
        version = encoded[0].schema_version
        decode = timed(lambda e: record_decode(e.value, schema_version=e.schema_version, decrypt=True), encoded)
        move = timed(lambda v: record_reencrypt(v[0], schema_version=1), gcm_values) if modes else 0.0
        size = sum(len(e.value) for e in encoded) / len(encoded)
        print(
            f"{name:<38} {encode:>14.1f} {decode:>14.1f} {move if modes else float('nan'):>20.1f} {size:>12.0f}"
            f"   (schema v{version})"
        )


if __name__ == "__main__":
    main()
