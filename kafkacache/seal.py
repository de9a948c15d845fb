"""The producer's seal: lets the consumer trust what the producer already checked.

A value this project's producer publishes was Avro-encoded from a record it built:
it decodes, its card and account numbers are ciphertexts under the current field
key, and its clear fields' validation problems are known (the `problems` header).
Proving all of that again in the consumer takes a full Avro decode per message,
the largest single cost of the consume path (bench/: about 30% of a batch).

So the producer adds a `seal` header, an **Ed25519 signature** under a key of its
own (SEAL_SIGNING_KEYS, held by producers only). Every other process (the web
tier, the consumer) holds only the public keys (SEAL_VERIFY_KEYS): it can check a
seal and cannot make one, so neither a compromised web tier nor anyone holding
the field-encryption keys can vouch for a value.

What a seal covers, per message (a "leaf", BLAKE2b-128): the topic, the headers the
consumer acts on (SEALED_HEADERS, absent distinct from empty), the message key and
the value's BLAKE2b content hash (the one both ledgers keep by default, so the
consumer has it already).

Signing each message would cost more than the decode it saves (an Ed25519 verify
is ~3x a 1 KB decode: bench/seal_speed.py), so the producer signs once per publish
batch: the leaves of up to TREE_MAX messages form a Merkle tree, the root is
signed, and each message carries the signature and its path to the root. The
consumer hashes a path (a few BLAKE2b calls) and verifies each distinct root's
signature once (SealVerifier keeps the roots it verified).

Header value: b"2:<key id>:<leaf count>:<index>:<b64 signature>:<b64 path>".
A message without a seal, or whose seal does not verify (another producer, a key
this consumer does not hold, bytes changed on the way), gets every check in full.
Reconciliation does not depend on it: it hashes the bytes either way.
"""

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from core.hashing import content_hash

# What the consumer acts on: the cache op (event, key, value, old-key, load, the
# source versions), the schema that value decodes with, and the checks the producer vouches for.
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
FORMAT = b"2"
TREE_MAX = 256  # messages per signature: a path of at most 8 nodes
NODE_BYTES = 16
# A seal header's weight besides its key id: name, framing, format, count, index,
# signature (88 base64 chars) and the longest path (8 nodes, 172), with the colons.
_HEADER_FIXED_BYTES = len(HEADER) + 8 + 1 + 3 + 3 + 88 + 172 + 5
_ABSENT = b"\xff\xff\xff\xff"  # a length no header has: absent is not empty
_SIGNED_PREFIX = b"kafkacache seal v2\x00"
# Why a message is held (kafkacache.batch_plan): the dead letter's reason starts with one of these.
UNSEALED = "unsealed"
NOT_VERIFIED = "seal does not verify"


class SealKeyError(ValueError):
    """SEAL_SIGNING_KEYS or SEAL_VERIFY_KEYS malformed (the message names which)."""


def _lp(h, item: bytes) -> None:
    h.update(len(item).to_bytes(4, "big"))
    h.update(item)


def seal_leaf(*, topic: str, headers: Mapping[str, bytes], key: bytes, value_hash: bytes) -> bytes:
    """What one message's seal covers, as one 16-byte digest."""
    h = hashlib.blake2b(digest_size=NODE_BYTES, person=b"kc-seal-leaf")
    _lp(h, topic.encode())
    for name in SEALED_HEADERS:
        item = headers.get(name)
        if item is None:
            h.update(_ABSENT)
        else:
            _lp(h, item)
    _lp(h, key)
    h.update(value_hash)
    return h.digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.blake2b(left + right, digest_size=NODE_BYTES, person=b"kc-seal-node").digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        up = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])  # the odd one out goes up as it is
        levels.append(up)
    return levels


def _root_from(leaf: bytes, index: int, count: int, path: bytes) -> bytes | None:
    node, width, pos = leaf, count, 0
    while width > 1:
        sibling = index ^ 1
        if sibling < width:
            if pos + NODE_BYTES > len(path):
                return None
            other = path[pos : pos + NODE_BYTES]
            pos += NODE_BYTES
            node = _node(other, node) if index & 1 else _node(node, other)
        index, width = index // 2, (width + 1) // 2
    return node if pos == len(path) else None


def _signed(count: int, root: bytes) -> bytes:
    return _SIGNED_PREFIX + count.to_bytes(4, "big") + root


def seal_value_hash(value: bytes, *, content_hash_: bytes, algorithm: str) -> bytes:
    """What the seal covers of the value: its BLAKE2b content hash, reusing the ledger's
    when the topic hashes with BLAKE2b (the producer and the consumer both call this)."""
    return content_hash_ if algorithm == "blake2b" else content_hash(value, "blake2b")


def _parse(spec: str, name: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not sep or not key_id or ":" in key_id or len(key_id.encode()) > 255 or len(raw) != 32:
            raise SealKeyError(f"{name}: entry {key_id or item[:8]!r} must look like id:base64(32 bytes)")
        if key_id in dict(out):
            raise SealKeyError(f"{name}: key id {key_id!r} appears twice")
        out.append((key_id, raw))
    return out


@dataclass(frozen=True)
class SealSigner:
    """A producer's signing key (the first of SEAL_SIGNING_KEYS)."""

    key_id: str
    key: Ed25519PrivateKey

    def seal(self, leaves: Sequence[bytes]) -> list[bytes]:
        """The seal header of each leaf, one signature per TREE_MAX leaves."""
        out: list[bytes] = []
        for start in range(0, len(leaves), TREE_MAX):
            chunk = leaves[start : start + TREE_MAX]
            levels = _levels(chunk)
            signature = base64.b64encode(self.key.sign(_signed(len(chunk), levels[-1][0])))
            prefix = b":".join((FORMAT, self.key_id.encode(), str(len(chunk)).encode()))
            for index in range(len(chunk)):
                path, i = [], index
                for level in levels[:-1]:
                    if i ^ 1 < len(level):
                        path.append(level[i ^ 1])
                    i //= 2
                out.append(b":".join((prefix, str(index).encode(), signature, base64.b64encode(b"".join(path)))))
        return out


@dataclass
class SealVerifier:
    """The public keys of SEAL_VERIFY_KEYS, and the roots already verified in this process."""

    keys: dict[str, Ed25519PublicKey]
    _verified: dict[bytes, bool] = field(default_factory=dict)

    def verified(self, *, topic: str, headers: Mapping[str, bytes], key: bytes, value_hash: bytes) -> bool:
        return not self.check(topic=topic, headers=headers, key=key, value_hash=value_hash)

    def check(self, *, topic: str, headers: Mapping[str, bytes], key: bytes, value_hash: bytes) -> str:
        """Why the message's seal does not vouch for it ("" when it does): UNSEALED without one."""
        raw = headers.get(HEADER)
        if not raw:
            return UNSEALED
        parts = raw.split(b":")
        if len(parts) != 6 or parts[0] != FORMAT or not parts[2].isdigit() or not parts[3].isdigit():
            return f"{NOT_VERIFIED}: malformed seal header"
        key_id = parts[1].decode(errors="replace")
        public = self.keys.get(key_id)
        if public is None:
            return f"{NOT_VERIFIED}: key id {key_id[:40]!r} is not in SEAL_VERIFY_KEYS"
        count, index = int(parts[2]), int(parts[3])
        if not 0 <= index < count <= TREE_MAX:
            return f"{NOT_VERIFIED}: malformed seal header"
        try:
            signature, path = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
        except (binascii.Error, ValueError):
            return f"{NOT_VERIFIED}: malformed seal header"
        root = _root_from(seal_leaf(topic=topic, headers=headers, key=key, value_hash=value_hash), index, count, path)
        if root is None:
            return f"{NOT_VERIFIED}: malformed path"
        memo = b"|".join((parts[1], parts[2], root, signature))
        known = self._verified.get(memo)
        if known is None:
            try:
                public.verify(signature, _signed(count, root))
                known = True
            except InvalidSignature:
                known = False
            if len(self._verified) >= 4096:
                self._verified.clear()
            self._verified[memo] = known
        # A changed header, key or value moves the leaf, hence the root: the signature fails.
        return "" if known else f"{NOT_VERIFIED}: the signature does not match its topic, headers, key and value"


@functools.cache
def _signer_for(spec: str) -> SealSigner | None:
    keys = _parse(spec, "SEAL_SIGNING_KEYS")
    if not keys:
        return None
    return SealSigner(key_id=keys[0][0], key=Ed25519PrivateKey.from_private_bytes(keys[0][1]))


@functools.cache
def _verifier_for(spec: str, signing_spec: str) -> SealVerifier:
    keys = {key_id: Ed25519PublicKey.from_public_bytes(raw) for key_id, raw in _parse(spec, "SEAL_VERIFY_KEYS")}
    # A producer that also consumes trusts its own seals without repeating its key.
    for key_id, raw in _parse(signing_spec, "SEAL_SIGNING_KEYS"):
        keys.setdefault(key_id, Ed25519PrivateKey.from_private_bytes(raw).public_key())
    return SealVerifier(keys=keys)


def seal_signer() -> SealSigner | None:
    """This process's signing key; None where SEAL_SIGNING_KEYS is empty (no seal is made)."""
    return _signer_for(settings.SEAL_SIGNING_KEYS)


def seal_verifier() -> SealVerifier:
    return _verifier_for(settings.SEAL_VERIFY_KEYS, settings.SEAL_SIGNING_KEYS)


def seal_reserve() -> int:
    """What a seal will add to a message this process seals (0 where it does not seal),
    so the size check before publishing counts it."""
    signer = seal_signer()
    return 0 if signer is None else _HEADER_FIXED_BYTES + len(signer.key_id.encode())


def seal_keys_check() -> None:
    """Fail at start-up, with the setting's name, when the seal keys are malformed."""
    seal_signer()
    seal_verifier()


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
