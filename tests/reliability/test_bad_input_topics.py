"""A corpus of bad messages sent to the real topics, each between two good ones.

Every bad message must get a dead-letter entry (with its reason in the headers),
a consume-ledger row with outcome "dead" and a dead-lettered finding; the loop
keeps going, and every good message lands in Redis intact (nothing good is
dropped with the bad). tests/kafkacache/test_dead_letter.py already covers
garbage Avro, an unknown event, schema version 99, a missing key, an oversize
value and a missing uuid; this corpus adds the rest of the issue's list.
"""

import base64
import io
import json
import uuid

import fastavro
import pytest

from core import avro
from core.cache_records import cache_records_get
from core.clients import make_producer
from core.crypto import Keyring
from core.records import record_decode
from kafkacache.producer import publish
from recon.models import ConsumedMessage, Finding
from recon.services.feed import feed_topics_ensure
from tests.kafka_reads import headers_read_all
from tests.kafkacache.conftest import cached_keys, consume_all
from tests.reliability.bad_input import good_message, headers_replaced, plain_and_sealed, sealed_with

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _null_name_value(client_id: int) -> bytes:
    """A producer on a schema whose `name` may be null wrote null into it (a required field in ours)."""
    schema = json.loads(avro.schema_versions()[1].read_text())
    for item in schema["fields"]:
        if item["name"] == "name":
            item["type"] = ["null", "string"]
    _, sealed = plain_and_sealed(client_id)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), {**sealed, "name": None})
    return out.getvalue()


def corpus() -> list[tuple[str, bytes | None, bytes | None, list, str]]:
    """(what, key, value, headers, the reason the dead letter must give)."""
    rogue = Keyring.parse(f"rogue1:{base64.b64encode(b'r' * 32).decode()}")
    g = good_message
    value = g(10).value or b""
    cases = [
        ("truncated Avro", b"client:10", value[: len(value) // 2], headers_replaced(g(10)), "malformed Avro"),
        (
            "trailing bytes after the record",
            b"client:11",
            (g(11).value or b"") + b"\x00\x02",
            headers_replaced(g(11)),
            "left over",
        ),
        ("add without a value", b"client:13", None, headers_replaced(g(13)), "add without a value"),
        ("no event header", b"client:14", g(14).value, headers_replaced(g(14), event=None), "unknown event type ''"),
        (
            "schema version not a number",
            b"client:15",
            g(15).value,
            headers_replaced(g(15), schema=b"v1"),
            "unknown schema version 'v1'",
        ),
        (
            "schema version 0",
            b"client:16",
            g(16).value,
            headers_replaced(g(16), schema=b"0"),
            "unknown schema version '0'",
        ),
        (
            "no schema header",
            b"client:17",
            g(17).value,
            headers_replaced(g(17), schema=None),
            "unknown schema version ''",
        ),
        ("non-UTF-8 key", b"client:\xff\xfe18", g(18).value, headers_replaced(g(18)), "key is not valid UTF-8"),
        ("empty key", b"", g(19).value, headers_replaced(g(19)), "missing key"),
        ("NUL byte in the key", b"client:\x0020", g(20).value, headers_replaced(g(20)), "key contains a NUL byte"),
        (
            "one huge header (64 KB)",
            b"client:21",
            g(21).value,
            [*headers_replaced(g(21)), ("x-trace", b"t" * 65536)],
            "oversize",
        ),
        (
            "thousands of headers",
            b"client:22",
            g(22).value,
            [*headers_replaced(g(22)), *[(f"h{i}", b"v") for i in range(3000)]],
            "oversize",
        ),
        (
            "non-UTF-8 uuid header",
            b"client:23",
            g(23).value,
            headers_replaced(g(23), uuid=b"\xff" * 36),
            "invalid uuid",
        ),
        (
            "created header not a number",
            b"client:24",
            g(24).value,
            headers_replaced(g(24), created=b"yesterday"),
            "invalid created",
        ),
        (
            "created header beyond any calendar",
            b"client:25",
            g(25).value,
            headers_replaced(g(25), created=b"9" * 30),
            "invalid created",
        ),
        (
            "encrypted with a key id nobody configured",
            b"client:26",
            sealed_with(26, lambda b, f: rogue.encrypt(b, field=f, binding=b"")),
            headers_replaced(g(26), key_id=b"rogue1"),
            "'rogue1', which is not configured",
        ),
        (
            "card and account numbers in clear",
            b"client:27",
            sealed_with(27, lambda b, f: b),
            headers_replaced(g(27)),
            "not encrypted",
        ),
    ]
    return cases


def test_bad_messages_are_dead_lettered_with_a_finding_and_every_good_one_lands(feed, cache, settings):
    change = feed_topics_ensure()["change"]
    # The good messages come sealed from the project's producer; the bad ones from a
    # producer without the signing key, on a topic that takes unsealed producers, so each
    # is judged on its own content rather than held for its missing seal.
    change.accepts_unsealed = True
    change.save(update_fields=["accepts_unsealed"])
    cases = corpus()
    producer = make_producer()
    good = []
    for i, (_what, key, value, headers, _reason) in enumerate(cases):  # each bad one after a good one
        good.append(good_message(1000 + i, problems=[]))
        assert not publish(good[-1:], topic=change.name)[0].error
        producer.produce(change.name, key=key, value=value, headers=headers)
        assert producer.flush(15) == 0
    # A null written into a required field decodes (Avro writes null and "" alike): it is
    # cached as the subscriber's garbage-in-garbage-out contract says, flagged invalid.
    # This producer holds no signing key: the message is applied as unsealed, checked in full.
    null_name = good_message(12)
    producer.produce(change.name, key=b"client:12", value=_null_name_value(12), headers=headers_replaced(null_name))
    assert producer.flush(15) == 0
    good.append(good_message(2000, problems=[]))
    assert not publish(good[-1:], topic=change.name)[0].error
    good_keys = [message.key for message in good]

    consumer = consume_all()

    # every good message landed, intact
    assert cached_keys(cache) == {*good_keys, "client:12"}
    for key, hit in cache_records_get(cache, good_keys).items():
        record = record_decode(hit.value, schema_version=hit.schema_version, decrypt=True)
        assert record["client_id"] == int(key.split(":")[1]) and record["cards"][0]["card_number"] == "4111111111111111"
    assert consumer.totals["stored"] == len(good_keys)

    # every bad one: a ledger row "dead", a dead-lettered finding and a dead letter, each with its reason
    assert ConsumedMessage.objects.filter(topic=change, outcome="dead").count() == len(cases)
    reasons = sorted(
        Finding.objects.filter(topic=change, category="dead-lettered").values_list("detail__reason", flat=True)
    )
    assert len(reasons) == len(cases)
    for what, _, _, _, expected in cases:
        assert sum(expected in reason for reason in reasons) >= 1, (what, expected, reasons)
    letters = headers_read_all(settings.KAFKA_TOPIC_DEAD_LETTER, expected=len(cases))
    assert sorted(h["dlq-reason"].decode() for h in letters) == reasons

    # the null: stored (from an unsealed producer, so its key is re-checked by the cache
    # leg), with an invalid-data finding naming the field
    row = ConsumedMessage.objects.get(topic=change, key="client:12")
    assert row.outcome == "unsealed"
    invalid = Finding.objects.get(topic=change, category="invalid-data", key="client:12")
    assert "name: required" in invalid.detail["problems"]


def test_a_reason_names_the_problem_without_echoing_secrets(feed, cache):
    """The clear-number case must not copy the numbers it found into the finding or the reason."""
    change = feed_topics_ensure()["change"]
    producer = make_producer()
    good = good_message(27)
    producer.produce(
        change.name, key=b"client:27", value=sealed_with(27, lambda b, f: b), headers=headers_replaced(good)
    )
    assert producer.flush(10) == 0
    consume_all()
    finding = Finding.objects.get(topic=change, category="dead-lettered")
    assert "4111111111111111" not in json.dumps(finding.detail)
    assert "3000900001" not in json.dumps(finding.detail)
    assert finding.uuid == uuid.UUID(dict(good.headers)["uuid"].decode())
