"""The producer's seal: lets the consumer trust what the producer already checked.

A value this project's producer publishes was Avro-encoded from a record it built:
it decodes, its card and account numbers are ciphertexts under the current field
key, and its clear fields' validation problems are known (the `problems` header).
Proving all of that again in the consumer takes a full Avro decode per message,
the largest single cost of the consume path (bench/: about 30% of a batch).

So the producer adds a `seal` header: a keyed BLAKE2b MAC over the message key,
the value's BLAKE2b content hash (the one both ledgers keep by default, so the
consumer has it already) and the headers the consumer acts on, under a key derived from the
field-encryption key it used (kafkacache.crypto.Keyring.seal_keys), named in the
header. A message whose seal verifies is cached from its bytes. One without a
seal, or whose seal does not verify (another producer, a key this consumer does
not hold, bytes changed on the way), gets every check in full, as before.
Reconciliation does not depend on it: it hashes the bytes either way.

Header value: b"<key id>:<hex MAC>".
"""

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from kafkacache.crypto import Keyring
from recon.hashing import content_hash

# What the consumer acts on: the cache op (event, key, value, old-key, load), the
# schema that value decodes with, and the checks the producer vouches for.
SEALED_HEADERS = (
    "uuid",
    "event",
    "schema",
    "created",
    "key-id",
    "load",
    "old-key",
    "problems",
    "version",
    "old-version",
)
HEADER = "seal"
PROBLEMS_HEADER = "problems"
PROBLEMS_MAX = 20  # problems listed in the header; the rest are counted
_ABSENT = b"\xff\xff\xff\xff"  # a length no header has: absent is not empty


def _mac(seal_key: bytes, headers: Mapping[str, bytes], key: bytes, value_hash: bytes) -> bytes:
    h = hashlib.blake2b(key=seal_key, digest_size=16)
    for name in SEALED_HEADERS:
        item = headers.get(name)
        if item is None:
            h.update(_ABSENT)
        else:
            h.update(len(item).to_bytes(4, "big"))
            h.update(item)
    h.update(len(key).to_bytes(4, "big"))
    h.update(key)
    h.update(value_hash)
    return h.digest()


def seal_value_hash(value: bytes, *, content_hash_: bytes, algorithm: str) -> bytes:
    """What the MAC covers of the value: its BLAKE2b content hash, reusing the ledger's
    when the topic hashes with BLAKE2b (the producer and the consumer both call this)."""
    return content_hash_ if algorithm == "blake2b" else content_hash(value, "blake2b")


def seal_make(ring: Keyring, *, key_id: str, headers: Mapping[str, bytes], key: bytes, value_hash: bytes) -> bytes:
    """The seal header's value, under the seal key of `key_id`, the key the fields were encrypted with.

    `value_hash` is seal_value_hash(value, ...).
    """
    mac = _mac(ring.seal_keys[key_id], headers, key, value_hash)
    return key_id.encode() + b":" + mac.hex().encode()


def seal_verified(ring: Keyring, *, headers: Mapping[str, bytes], key: bytes, value_hash: bytes) -> bool:
    raw = headers.get(HEADER)
    if not raw:
        return False
    key_id, _, mac_hex = raw.rpartition(b":")
    seal_key = ring.seal_keys.get(key_id.decode(errors="replace"))
    if seal_key is None:
        return False
    return hmac.compare_digest(mac_hex, _mac(seal_key, headers, key, value_hash).hex().encode())


def problems_encode(problems: Sequence[str]) -> bytes:
    """The `problems` header: a JSON list, the first PROBLEMS_MAX in full and a count of the rest."""
    listed = list(problems[:PROBLEMS_MAX])
    if len(problems) > PROBLEMS_MAX:
        listed.append(f"... and {len(problems) - PROBLEMS_MAX} more")
    return json.dumps(listed).encode()


def problems_decode(headers: Mapping[str, bytes]) -> list[str] | None:
    """The validation problems a sealed message carries ([] for none); None if unreadable."""
    raw = headers.get(PROBLEMS_HEADER)
    if raw is None:
        return []
    try:
        problems = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        return None
    return problems
