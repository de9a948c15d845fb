"""A migration from AES-GCM to format-preserving encryption on one topic, through the real feed
(Kafka, Redis, PostgreSQL): records of both modes served side by side, a lost FF1 message
replayed from the audit log (sealed, so the consumer takes it), validation and masking on
either, `keys_reencrypt` moving the AES-GCM records to FF1 under a new key, and afterwards
neither the transport reconcile, the cache leg nor the evidence pack finding anything wrong."""

import base64
import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from core import avro
from core.cache_records import cache_records_get
from core.cards import luhn_valid
from core.ods import ods_seed
from core.records import FPE_SCHEMA, record_decode, record_key_ids
from core.sources import SqlSource
from kafkacache.consumer import FeedConsumer
from kafkacache.seal import HEADER as SEAL_HEADER
from kafkacache.services.loads import load_run, load_start
from recon.models import Finding, PublishedMessage
from recon.selectors.evidence import evidence_pack
from recon.services.cache_check import cache_check
from recon.services.validation import validation_run
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.people import people_make
from tests.replay.conftest import feed_topics_make, fetch, fetch_uuid, finding_of, reconcile

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

OLD = "k1:" + base64.b64encode(b"o" * 32).decode()
NEW = "k2:" + base64.b64encode(b"n" * 32).decode()
FPE = {"cards.card_number": "ff1-luhn-last4", "accounts.account_number": "ff1"}


def _load(topic, client_ids):
    load = load_run(
        load_id=load_start(topic=topic, source="ods", client_ids=client_ids, requested_by=None, queue=False).id
    )
    assert load.status == "done" and load.published == len(client_ids)
    return load


def test_aes_gcm_and_ff1_records_share_a_topic_and_everything_works_with_either(settings, cache, unique_name):
    settings.FIELD_ENCRYPTION_KEYS = OLD
    topic = feed_topics_make(settings, unique_name).bulk
    ods_seed(clients=6, using="default")
    expected = {item.key: item.record for batch in SqlSource().batches(batch_size=10) for item in batch}
    gcm_load = _load(topic, [1, 2, 3])
    FeedConsumer().process_batch(fetch(topic.name, 0, 3))

    settings.FIELD_ENCRYPTION_MODES = FPE  # the migration starts: new messages carry FF1 fields
    fpe_load = _load(topic, [4, 5, 6])
    rows = {r.key: r for r in PublishedMessage.objects.filter(load_id=fpe_load.id)}
    lost = rows["client:5"]
    fresh = fetch(topic.name, 3, 3)
    assert all(dict(m.headers())["schema"] == b"2" for m in fresh)
    FeedConsumer().process_batch([m for m in fresh if m.offset() != lost.offset])

    # The cache holds both modes; an FF1 field is 16 Luhn-valid digits ending as the card does.
    cached = cache_records_get(cache, expected)
    assert {k: h.schema_version for k, h in cached.items()} == {
        "client:1": 1,
        "client:2": 1,
        "client:3": 1,
        "client:4": FPE_SCHEMA,
        "client:6": FPE_SCHEMA,
    }
    raw = record_decode(cached["client:4"].value, schema_version=FPE_SCHEMA, decrypt=False)["cards"][0]
    clear = expected["client:4"]["cards"][0]["card_number"]
    assert raw["card_number"] != clear and len(raw["card_number"]) == len(clear)
    assert raw["card_number"][-4:] == clear[-4:] and luhn_valid(raw["card_number"])
    assert raw["card_number_fpe"] == {"key_id": "k1", "format": "ff1-luhn-last4"}
    operator = people_make(viewed=[topic], operated=[topic], roles=("operator",), role_groups=False)["operator"]
    api = APIClient()
    api.force_authenticate(operator)
    for load in (gcm_load, fpe_load):
        for item in api.get(f"/api/cache/{load.retrieval_key}").json()["results"]:
            assert item["state"] == "cached", item
            got = item["record"]
            assert [c["card_number"] for c in got["cards"]] == [
                c["card_number"] for c in expected[item["key"]]["cards"]
            ]

    # The lost FF1 message, replayed from the audit log: sealed, or the consumer could not take it.
    reconcile(topic)
    assert finding_of(topic, "missing", lost.uuid).status == Finding.Status.OPEN
    replay, _ = replay_request(
        topic=topic,
        way="audit",
        scope="messages",
        target={"uuids": [str(lost.uuid)]},
        reason="lost on the way",
        requested_by=operator,
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    assert (replay.status, replay.outcome) == ("done", {"published": 1})
    message = fetch_uuid(topic, replay.items.get().uuid)
    assert SEAL_HEADER in dict(message.headers())
    assert FeedConsumer().process_batch([message]) == {"stored": 1}
    hit = cache_records_get(cache, [lost.key])[lost.key]
    assert record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) == expected[lost.key]

    # Validation decrypts either mode; nothing is invalid.
    checked = validation_run(topic=topic, start=timezone.now() - dt.timedelta(days=1), end=timezone.now())
    assert checked.report["all_valid"] is True and checked.report["checked"] == 6

    # keys_reencrypt: the AES-GCM records move to FF1, everything to k2; then k1 goes.
    settings.FIELD_ENCRYPTION_KEYS = f"{NEW},{OLD}"
    out = io.StringIO()
    call_command("keys_reencrypt", "--only", "records", stdout=out)
    assert "records: seen 6, rewritten 6, already current 0, skipped 0" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = NEW
    for key, hit in cache_records_get(cache, expected).items():
        assert hit.schema_version == FPE_SCHEMA
        sealed = avro.decode(hit.value, version=FPE_SCHEMA)
        assert record_key_ids(sealed) == ["k2"] * len(record_key_ids(sealed))
        assert record_decode(hit.value, schema_version=FPE_SCHEMA, decrypt=True, key=key) == expected[key]

    # Reconciled, the cache leg clean, and the evidence pack shows no number in clear.
    run = reconcile(topic)
    assert finding_of(topic, "missing", lost.uuid).status == Finding.Status.RESOLVED
    assert not Finding.objects.filter(topic=topic, category="altered").exists()
    leg = cache_check(topic=topic, load=fpe_load, now=timezone.now() + dt.timedelta(hours=2))
    assert leg.status == "done" and leg.report["all_matched"] is True, leg.report
    assert run.report["findings"] == {}
    now = timezone.now()
    pack = evidence_pack(
        topic=topic,
        start=now - dt.timedelta(days=1),
        end=now + dt.timedelta(hours=1),
        user=operator,
        with_payloads=True,
    )
    text = json.dumps(pack, default=str)
    for record in expected.values():
        for card in record["cards"]:
            assert card["card_number"] not in text
        for account in record["accounts"]:
            assert account["account_number"] not in text
