"""The seal's cost per message: sign (producer) and verify (consumer), next to the full
check it replaces (Avro decode + the card-number check) and to signing every message.

    .venv/bin/python bench/seal_speed.py [--messages 5000] [--batch 500]

No services: pure CPU on this machine (the figures scale with its load; `uptime`
is printed). Prints figures, asserts nothing.
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

from core import avro  # noqa: E402
from core.record_checks import record_problems  # noqa: E402
from core.records import record_encode, record_from_document  # noqa: E402
from kafkacache.batch_plan import _sealing_problem  # noqa: E402
from kafkacache.messages import headers_dict, message_build  # noqa: E402
from kafkacache.producer import messages_seal  # noqa: E402
from kafkacache.seal import SealVerifier, seal_signer, seal_value_hash, seal_verifier  # noqa: E402

DOC = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "segment": "private",
    "status": "active",
    "country": "GB",
    "updated_at": "2026-11-25T10:00:00+00:00",
    "accounts": [
        {
            "account_number": f"00123456{i:02d}",
            "product": "current",
            "currency": "GBP",
            "daily_limit_cents": 250000,
            "overdraft_enabled": True,
            "alerts_enabled": False,
            "statement_day": 3,
            "language": "en",
        }
        for i in range(3)
    ],
    "cards": [
        {"card_id": i, "card_number": f"41111111111112{i:02d}", "brand": "visa", "expiry": "01/30", "status": "active"}
        for i in range(3)
    ],
}


def _us(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:8.1f} us/message"


def main() -> None:
    """The seal's cost per message: sign, verify and the full check it replaces, timed and printed.

    Long because it is the bench's script, one measured step after another, each printing
    its figure where it is taken."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500, help="messages per publish batch (LOAD_BATCH_SIZE)")
    args = parser.parse_args()
    topic = "bench.seal"
    messages = []
    for i in range(args.messages):
        plain = record_from_document({**DOC, "client_id": i + 1})
        encoded = record_encode(plain)
        key = f"client:{i + 1}"
        messages.append(
            message_build(
                key=key,
                event="bulk",
                value=encoded.value,
                source="bench",
                schema_version=encoded.schema_version,
                hash_algorithm="blake2b",
                key_id=encoded.key_id,
                problems=record_problems(plain, key=key),
            )
        )
    print(f"load: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; value {len(messages[0].value or b'')} bytes")

    messages_seal(messages[:2], topic="bench.warm-up")  # key parsing and first-use imports, not timed
    started = time.perf_counter()
    sealed = []
    for start in range(0, len(messages), args.batch):
        sealed.extend(messages_seal(messages[start : start + args.batch], topic=topic))
    sign = time.perf_counter() - started
    print(f"sign, per batch of {args.batch} (Merkle tree, one signature per 256): {_us(sign, len(messages))}")

    inputs = []
    for m in sealed:
        headers = headers_dict(m.headers)
        inputs.append(
            (
                headers,
                m.key.encode(),
                seal_value_hash(m.value or b"", content_hash_=m.content_hash, algorithm="blake2b"),
            )
        )
    verifier = SealVerifier(keys=dict(seal_verifier().keys))  # a fresh consumer: no root verified yet
    started = time.perf_counter()
    ok = sum(verifier.verified(topic=topic, headers=h, key=k, value_hash=v) for h, k, v in inputs)
    verify = time.perf_counter() - started
    print(f"verify (consumer, fresh process):                   {_us(verify, len(messages))}  ({ok} verified)")

    started = time.perf_counter()
    for m in messages:
        _sealing_problem(avro.decode(m.value or b"", version=m.schema_version))
    full = time.perf_counter() - started
    print(f"full check instead (Avro decode + cipher check):    {_us(full, len(messages))}")

    signer = seal_signer()
    assert signer is not None
    leaf = b"x" * 16
    n = min(len(messages), 2000)
    started = time.perf_counter()
    signatures = [signer.key.sign(leaf) for _ in range(n)]
    one_sign = time.perf_counter() - started
    public = signer.key.public_key()
    started = time.perf_counter()
    for signature in signatures:
        public.verify(signature, leaf)
    one_verify = time.perf_counter() - started
    print(f"for comparison, one Ed25519 signature per message:  sign {_us(one_sign, n)}, verify {_us(one_verify, n)}")


if __name__ == "__main__":
    main()
