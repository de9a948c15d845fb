"""Content hashes of message values, and the 64-bit prefix windows add up.

The producer hashes the exact bytes it publishes; the consumer hashes the exact
bytes it receives. Equal hashes mean the subscriber got what was published,
without storing the content.
"""

import hashlib
import uuid
import zlib
from collections.abc import Callable

import xxhash

MOD64 = 1 << 64


def _blake2b128(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=16).digest()


def _crc32(value: bytes) -> bytes:
    return zlib.crc32(value).to_bytes(4, "big")


_HASHERS: dict[str, Callable[[bytes], bytes]] = {
    "blake2b": _blake2b128,
    "xxh3": xxhash.xxh3_128_digest,
    "crc32": _crc32,
}


def content_hasher(algorithm: str) -> Callable[[bytes], bytes]:
    """The hash function of `algorithm`: a loop over many values looks it up once."""
    try:
        return _HASHERS[algorithm]
    except KeyError:
        raise ValueError(f"unknown hash algorithm {algorithm!r}") from None


def content_hash(value: bytes, algorithm: str = "blake2b") -> bytes:
    return content_hasher(algorithm)(value)


HASH_ALGORITHMS = ("blake2b", "xxh3", "crc32")


def content_hashes(value: bytes) -> str:
    """The value's hash under each algorithm a topic may use, "alg:hex,alg:hex,..." (what
    re-encryption keeps of the bytes it replaced: the cache's rx, an audit payload's
    original_hashes)."""
    return ",".join(f"{alg}:{content_hash(value, alg).hex()}" for alg in HASH_ALGORITHMS)


def content_hash_in(hashes: str, algorithm: str) -> bytes | None:
    """The `algorithm` digest of a content_hashes string (None when it has none)."""
    for item in hashes.split(","):
        alg, _, digest = item.partition(":")
        if alg == algorithm and digest:
            return bytes.fromhex(digest)
    return None


def prefix64(digest: bytes) -> int:
    """The first 8 bytes as an unsigned integer (all of a CRC32)."""
    return int.from_bytes(digest[:8], "big")


def digest_sum(digests: list[bytes]) -> int:
    """Order-independent digest of a set of hashes: sum of prefixes mod 2**64."""
    return sum(prefix64(d) for d in digests) % MOD64


_NO_UUID = bytes(16)


def message_digest(message_uuid: uuid.UUID | str | None, content: bytes) -> int:
    """A message's 64-bit share of its window digest: binds the UUID to the content hash.

    Summing content hashes alone would let a lost message and an extra delivery of
    another with the same bytes (two deletes, an unchanged record sent twice)
    cancel out; with the UUID in, equal sums mean the same messages. A UUID given as
    text is canonical (8-4-4-4-12 hex digits), as the consumer keeps it.
    """
    if isinstance(message_uuid, str):
        raw = bytes.fromhex(message_uuid.replace("-", ""))
    else:
        raw = message_uuid.bytes if message_uuid else _NO_UUID
    return xxhash.xxh3_64_intdigest(raw + content)


def window_digest(items: list[tuple[uuid.UUID | None, bytes]]) -> int:
    """The digest a window keeps for these (uuid, content hash) pairs."""
    return sum(message_digest(u, h) for u, h in items) % MOD64
