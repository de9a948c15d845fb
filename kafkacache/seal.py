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
import struct
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


_LENGTH = struct.Struct(">I").pack  # an item's length prefix: 4 bytes, big-endian


def seal_leaf(*, topic: str, headers: Mapping[str, bytes], key: bytes, value_hash: bytes) -> bytes:
    """What one message's seal covers, as one 16-byte digest: the topic, each sealed header
    and the key length-prefixed (an absent header as _ABSENT), then the value's hash.

    The items are joined and hashed in one call (the same digest as one update per item,
    at a third of the cost: the consumer computes one leaf per message), from a copy of a
    keyed hasher and the topic's encoded prefix (both made once)."""
    get = headers.get
    items = [_topic_item(topic)]
    for name in SEALED_HEADERS:
        item = get(name)
        if item is None:
            items.append(_ABSENT)
        else:
            items.append(_LENGTH(len(item)))
            items.append(item)
    items += (_LENGTH(len(key)), key, value_hash)
    leaf = _LEAF.copy()
    leaf.update(b"".join(items))
    return leaf.digest()


_LEAF = hashlib.blake2b(digest_size=NODE_BYTES, person=b"kc-seal-leaf")


@functools.lru_cache(maxsize=256)
def _topic_item(topic: str) -> bytes:
    encoded = topic.encode()
    return _LENGTH(len(encoded)) + encoded


def _node(left: bytes, right: bytes) -> bytes:
    return _node_of(left + right)


def _node_of(pair: bytes) -> bytes:
    return hashlib.blake2b(pair, digest_size=NODE_BYTES, person=b"kc-seal-node").digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        up = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])  # the odd one out goes up as it is
        levels.append(up)
    return levels


@functools.lru_cache(maxsize=4096)
def _path_bytes(index: int, count: int) -> int:
    """How long the path of leaf `index` of a tree of `count` leaves is (the odd one out of a
    level has no sibling there)."""
    width, length = count, 0
    while width > 1:
        if index ^ 1 < width:
            length += NODE_BYTES
        index, width = index >> 1, (width + 1) >> 1
    return length


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
    # The nodes of each verified tree (key id, count, signature text), by place (level,
    # position, node): a leaf whose path reaches one of them from its own index is at that
    # place in that signed tree, as its full path would prove (another leaf or path reaching
    # it would be a BLAKE2b collision), so the path above is not walked again: a batch's
    # leaves of one tree then cost a hash or two each instead of eight.
    _trees: dict[tuple[bytes, bytes, bytes], set[tuple[int, int, bytes]]] = field(default_factory=dict)

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
            # base64.b64decode(validate=True) without its Python frames
            path = binascii.a2b_base64(parts[5], strict_mode=True)
        except (binascii.Error, ValueError):
            return f"{NOT_VERIFIED}: malformed seal header"
        if len(path) != _path_bytes(index, count):
            return f"{NOT_VERIFIED}: malformed path"
        leaf = seal_leaf(topic=topic, headers=headers, key=key, value_hash=value_hash)
        tree = (parts[1], parts[2], parts[4])  # key id, count, signature text
        authentic = self._trees.get(tree)
        if authentic is not None and (0, index, leaf) in authentic:
            return ""
        # Up the path to the root, or to a node of this tree already verified.
        node, width, pos, at, level = leaf, count, 0, index, 0
        walked = [(0, index, leaf)]  # authentic once the top is: each node and sibling on the way
        known: bool | None = None
        while width > 1:
            if at ^ 1 < width:
                other = path[pos : pos + NODE_BYTES]
                pos += NODE_BYTES
                walked.append((level, at ^ 1, other))
                node = _node_of(other + node if at & 1 else node + other)
            at, width, level = at >> 1, (width + 1) >> 1, level + 1
            if authentic is not None and (level, at, node) in authentic:
                known = True
                break
            walked.append((level, at, node))
        if known is None:
            known = self._root_verified(public, parts, count, node)
        if known is None:
            return f"{NOT_VERIFIED}: malformed seal header"
        if known:
            if authentic is None:
                if len(self._trees) >= 256:
                    self._trees.clear()
                authentic = self._trees[tree] = set()
            authentic.update(walked)
        # A changed header, key or value moves the leaf, hence the root: the signature fails.
        return "" if known else f"{NOT_VERIFIED}: the signature does not match its topic, headers, key and value"

    def _root_verified(self, public: Ed25519PublicKey, parts: list[bytes], count: int, root: bytes) -> bool | None:
        """Whether the seal's signature signs `root` (each distinct root verified once);
        None: the signature is not base64."""
        # By the signature's base64 text: one decodes to one signature, so a text verified once stays verified.
        memo = b"|".join((parts[1], parts[2], root, parts[4]))
        known = self._verified.get(memo)
        if known is None:
            try:
                signature = binascii.a2b_base64(parts[4], strict_mode=True)
            except (binascii.Error, ValueError):
                return None
            try:
                public.verify(signature, _signed(count, root))
                known = True
            except InvalidSignature:
                known = False
            if len(self._verified) >= 4096:
                self._verified.clear()
            self._verified[memo] = known
        return known


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
