"""The producer's seal: what it covers, and what the consumer does with and without it.

The MAC tests are pure; the consumer tests run process_batch against the real Redis
and PostgreSQL, and count how many values the consumer decoded in full.
"""

import json

import pytest
from confluent_kafka import Message

from kafkacache.consumer import FeedConsumer
from kafkacache.crypto import Keyring
from kafkacache.messages import OutMessage, headers_dict
from kafkacache.seal import PROBLEMS_MAX, problems_decode, problems_encode, seal_make, seal_verified
from kafkacache.services import topic_rows_ensure
from recon.hashing import content_hash
from recon.models import ConsumedMessage, Finding

from .conftest import cached_keys, client_message
from .test_changes import DOC

OLD = "old:" + "b2xkLWtleS0zMi1ieXRlcy1sb25nLWxvbmctbG9uZyE="
NEW = "new:" + "bmV3LWtleS0zMi1ieXRlcy1sb25nLWxvbmctbG9uZyE="
HEADERS = {"uuid": b"6a1c0d5e-9a9e-4c55-8a51-3f8a1b2c3d4e", "event": b"add", "schema": b"1", "created": b"1000"}


def _sealed(ring: Keyring, key_id: str, headers=HEADERS, key=b"client:1", value=b"v") -> dict[str, bytes]:
    value_hash = content_hash(value, "blake2b")
    return {**headers, "seal": seal_make(ring, key_id=key_id, headers=headers, key=key, value_hash=value_hash)}


def _verified(ring: Keyring, headers, key=b"client:1", value=b"v") -> bool:
    return seal_verified(ring, headers=headers, key=key, value_hash=content_hash(value, "blake2b"))


def test_a_seal_verifies_under_any_configured_key_and_only_for_what_it_covers():
    ring = Keyring.parse(f"{NEW},{OLD}")
    sealed = _sealed(ring, "old")
    assert _verified(ring, sealed)  # rotation: sealed under the second key, still trusted
    assert not _verified(ring, sealed, value=b"w")  # another value
    assert not _verified(ring, sealed, key=b"client:2")  # another key
    assert not _verified(ring, {**sealed, "event": b"delete"})  # a header the consumer acts on
    assert not _verified(ring, {**sealed, "old-key": b""})  # absent is not empty
    assert not _verified(ring, {**sealed, "problems": b"[]"})
    assert _verified(ring, {**sealed, "source": b"elsewhere"})  # not covered: the consumer ignores it
    assert not _verified(Keyring.parse(NEW), sealed)  # a key this consumer does not hold
    assert not _verified(ring, {k: v for k, v in sealed.items() if k != "seal"})
    # the seal key is derived per key: the same MAC under the other key id does not verify
    kid_swapped = {**sealed, "seal": b"new:" + sealed["seal"].split(b":", 1)[1]}
    assert not _verified(ring, kid_swapped)


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
    change = topic_rows_ensure()["change"]
    sealed, unsealed, tampered = client_message(1), client_message(2, sealed=False), client_message(3)
    assert "seal" in headers_dict(sealed.headers) and "seal" not in headers_dict(unsealed.headers)
    garbage = tampered.value + b"\x00"  # bytes changed on the way: the seal no longer matches
    consumer = FeedConsumer()
    outcomes = consumer.process_batch(
        [
            _kafka(change.name, 0, sealed),
            _kafka(change.name, 1, unsealed),
            _kafka(change.name, 2, tampered, value=garbage),
        ]
    )
    assert consumer.totals["checked_in_full"] == 2  # the unsealed and the tampered one
    assert dict(outcomes) == {"stored": 2, "dead": 1}
    assert cached_keys(cache) == {"client:1", "client:2"}
    dead = ConsumedMessage.objects.get(outcome="dead")
    assert dead.key == "client:3"
    assert Finding.objects.get(category="dead-lettered").detail["reason"].startswith("malformed Avro")


@pytest.mark.integration
@pytest.mark.django_db
def test_a_sealed_invalid_record_is_flagged_from_the_problems_its_producer_found(feed, cache):
    change = topic_rows_ensure()["change"]
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
    change = topic_rows_ensure()["change"]
    bad = client_message(6, document={**DOC, "country": "Nowhere"})
    # Someone strips the problems header but keeps the seal: the seal fails, so the
    # consumer decodes and finds the problem itself.
    stripped = [(name, value) for name, value in bad.headers if name != "problems"]
    consumer = FeedConsumer()
    assert dict(consumer.process_batch([_kafka(change.name, 0, bad, headers=stripped)])) == {"invalid": 1}
    assert consumer.totals["checked_in_full"] == 1
