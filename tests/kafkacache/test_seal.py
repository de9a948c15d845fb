"""The producer's seal: what it covers, and what the consumer does with and without it.

The MAC tests are pure; the consumer tests run process_batch against the real Redis
and PostgreSQL, and count how many values the consumer decoded in full.
"""

import base64
import json

import pytest
from confluent_kafka import Message
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config import secrets
from core.hashing import content_hash
from kafkacache.consumer import FeedConsumer
from kafkacache.messages import OutMessage, headers_dict
from kafkacache.seal import (
    PROBLEMS_MAX,
    TREE_MAX,
    SealSigner,
    SealVerifier,
    problems_decode,
    problems_encode,
    seal_leaf,
)
from recon.models import ConsumedMessage, Finding
from recon.services.feed import feed_topics_ensure
from tests.documents import DOC

from .conftest import cached_keys, client_message

HEADERS = {
    "uuid": b"6a1c0d5e-9a9e-4c55-8a51-3f8a1b2c3d4e",
    "event": b"add",
    "schema": b"1",
    "created": b"1000",
    "version": b"7",
}
OLD, NEW = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()


def _verifier(*keys: tuple[str, Ed25519PrivateKey]) -> SealVerifier:
    return SealVerifier(keys={kid: key.public_key() for kid, key in keys})


def _sealed(signer: SealSigner, headers=HEADERS, key=b"client:1", value=b"v", topic="t.change") -> dict[str, bytes]:
    leaf = seal_leaf(topic=topic, headers=headers, key=key, value_hash=content_hash(value, "blake2b"))
    return {**headers, "seal": signer.seal([leaf])[0]}


def _verified(verifier: SealVerifier, headers, key=b"client:1", value=b"v", topic="t.change") -> bool:
    return verifier.verified(topic=topic, headers=headers, key=key, value_hash=content_hash(value, "blake2b"))


def test_a_seal_verifies_under_any_configured_public_key_and_only_for_what_it_covers():
    verifier = _verifier(("new", NEW), ("old", OLD))
    sealed = _sealed(SealSigner("old", OLD))
    assert _verified(verifier, sealed)  # rotation: signed with the older key, still trusted
    assert not _verified(verifier, sealed, value=b"w")  # another value
    assert not _verified(verifier, sealed, key=b"client:2")  # another key
    assert not _verified(verifier, sealed, topic="t.bulk")  # another topic
    assert not _verified(verifier, {**sealed, "event": b"delete"})  # a header the consumer acts on
    assert not _verified(verifier, {**sealed, "version": b"8"})  # the source version (issue 12)
    assert not _verified(verifier, {**sealed, "old-version": b"6"})  # absent is not empty
    assert not _verified(verifier, {**sealed, "old-key": b""})
    assert not _verified(verifier, {**sealed, "problems": b"[]"})
    assert _verified(verifier, {**sealed, "source": b"elsewhere"})  # not covered: the consumer ignores it
    assert not _verified(_verifier(("new", NEW)), sealed)  # a key this consumer does not hold
    assert not _verified(verifier, {k: v for k, v in sealed.items() if k != "seal"})
    kid_swapped = {**sealed, "seal": sealed["seal"].replace(b":old:", b":new:")}
    assert not _verified(verifier, kid_swapped)


def test_one_signature_covers_a_batch_and_each_message_proves_its_own_place():
    signer, verifier = SealSigner("k", NEW), _verifier(("k", NEW))
    count = TREE_MAX + 3  # two trees: 256 leaves and 3
    values = [f"value {i}".encode() for i in range(count)]
    leaves = [
        seal_leaf(topic="t", headers=HEADERS, key=b"k%d" % i, value_hash=content_hash(v, "blake2b"))
        for i, v in enumerate(values)
    ]
    seals = signer.seal(leaves)
    assert len({s.split(b":")[4] for s in seals}) == 2  # one signature per tree
    for i in (0, 1, 127, 255, 256, 258):
        assert _verified(verifier, {**HEADERS, "seal": seals[i]}, key=b"k%d" % i, value=values[i], topic="t")
    # a message's seal on another message of the same batch does not verify
    assert not _verified(verifier, {**HEADERS, "seal": seals[1]}, key=b"k0", value=values[0], topic="t")
    # a path cut short, or the leaf count changed, does not verify
    parts = seals[5].split(b":")
    short = b":".join([*parts[:5], base64.b64encode(base64.b64decode(parts[5])[16:])])
    assert not _verified(verifier, {**HEADERS, "seal": short}, key=b"k5", value=values[5], topic="t")
    recount = b":".join([parts[0], parts[1], b"255", *parts[3:]])
    assert not _verified(verifier, {**HEADERS, "seal": recount}, key=b"k5", value=values[5], topic="t")


def test_who_holds_the_field_key_cannot_seal():
    """The old seal was a MAC under a key derived from the field-encryption key, which every
    decrypting process (the web tier too) holds. Now only an Ed25519 private key signs: a
    seal forged from the field key, or signed with any other key, is not trusted."""
    import hashlib

    field_key = base64.b64decode(secrets.DEV_FIELD_ENCRYPTION_KEYS.partition(":")[2])  # the tests' field key
    derived = hashlib.blake2b(b"kafkacache message seal v1", key=field_key, digest_size=32).digest()
    leaf = seal_leaf(topic="t", headers=HEADERS, key=b"client:1", value_hash=content_hash(b"v", "blake2b"))
    forged_mac = b"dev1:" + hashlib.blake2b(leaf, key=derived, digest_size=16).hexdigest().encode()
    from kafkacache.seal import seal_verifier

    assert not _verified(seal_verifier(), {**HEADERS, "seal": forged_mac}, topic="t")
    rogue = _sealed(SealSigner("seal-dev1", Ed25519PrivateKey.generate()), topic="t")
    assert not _verified(seal_verifier(), rogue, topic="t")  # right key id, wrong key


def test_problems_travel_as_a_bounded_json_list():
    many = [f"problem {i}" for i in range(PROBLEMS_MAX + 5)]
    decoded = problems_decode({"problems": problems_encode(many)})
    assert decoded == [*many[:PROBLEMS_MAX], "... and 5 more"]
    assert problems_decode({}) == []
    assert problems_decode({"problems": b"not json"}) is None
    assert problems_decode({"problems": json.dumps([1, 2]).encode()}) is None


def _kafka(topic: str, offset: int, out: OutMessage, *, value=None, headers=None) -> Message:
    return Message(
        topic=topic,
        partition=0,
        offset=offset,
        key=out.key.encode(),
        value=out.value if value is None else value,
        headers=out.headers if headers is None else headers,
    )


@pytest.mark.integration
@pytest.mark.django_db
def test_the_consumer_trusts_a_verified_seal_and_checks_everything_else_in_full(feed, cache):
    change = feed_topics_ensure()["change"]
    sealed, unsealed, tampered = client_message(1), client_message(2, sealed=False), client_message(3)
    assert "seal" in headers_dict(sealed.headers) and "seal" not in headers_dict(unsealed.headers)
    garbage = tampered.value + b"\x00"  # bytes changed on the way: the seal no longer matches
    # A topic that takes no unsealed producer (the default): only the sealed one is taken.
    consumer = FeedConsumer()
    outcomes = consumer.process_batch(
        [
            _kafka(change.name, 0, sealed),
            _kafka(change.name, 1, unsealed),
            _kafka(change.name, 2, tampered, value=garbage),
        ]
    )
    assert dict(outcomes) == {"stored": 1, "dead": 2} and consumer.totals["checked_in_full"] == 0
    reasons = dict(Finding.objects.filter(category="dead-lettered").values_list("key", "detail__reason"))
    assert reasons["client:2"] == "unsealed"
    assert reasons["client:3"].startswith("seal does not verify: the signature does not match")
    Finding.objects.all().delete()
    ConsumedMessage.objects.all().delete()
    # One that accepts unsealed producers checks the others in full.
    change.accepts_unsealed = True
    change.save()
    consumer = FeedConsumer()
    outcomes = consumer.process_batch(
        [
            _kafka(change.name, 0, sealed),
            _kafka(change.name, 1, unsealed),
            _kafka(change.name, 2, tampered, value=garbage),
        ]
    )
    assert consumer.totals["checked_in_full"] == 2  # the unsealed and the tampered one
    assert dict(outcomes) == {"stored": 1, "unsealed": 1, "dead": 1}
    assert cached_keys(cache) == {"client:1", "client:2"}
    dead = ConsumedMessage.objects.get(outcome="dead")
    assert dead.key == "client:3"
    assert Finding.objects.get(category="dead-lettered").detail["reason"].startswith("malformed Avro")


@pytest.mark.integration
@pytest.mark.django_db
def test_a_sealed_invalid_record_is_flagged_from_the_problems_its_producer_found(feed, cache):
    change = feed_topics_ensure()["change"]
    bad = {**DOC, "country": "Nowhere", "cards": [{**DOC["cards"][0], "expiry": "2030-01"}]}
    out = client_message(5, document=bad)
    assert "problems" in headers_dict(out.headers)
    consumer = FeedConsumer()
    assert dict(consumer.process_batch([_kafka(change.name, 0, out)])) == {"invalid": 1}
    assert consumer.totals["checked_in_full"] == 0  # nothing decoded: the seal vouches for the problems
    assert cached_keys(cache) == {"client:5"}
    reason = Finding.objects.get(topic=change, category="invalid-data").detail["reason"]
    assert "country 'Nowhere'" in reason and "expiry" in reason


@pytest.mark.integration
@pytest.mark.django_db
def test_a_seal_moved_onto_other_headers_does_not_hide_a_missing_problem_list(feed, cache):
    change = feed_topics_ensure()["change"]
    bad = client_message(6, document={**DOC, "country": "Nowhere"})
    # Someone strips the problems header but keeps the seal: the seal fails, so the
    # consumer decodes and finds the problem itself.
    stripped = [(name, value) for name, value in bad.headers if name != "problems"]
    change.accepts_unsealed = True  # else it is held at once: its seal does not verify
    change.save()
    consumer = FeedConsumer()
    assert dict(consumer.process_batch([_kafka(change.name, 0, bad, headers=stripped)])) == {"unsealed": 1}
    assert consumer.totals["checked_in_full"] == 1
