"""A way back from any bad version: restoring keys from the system of record, against the
real Kafka, Redis and PostgreSQL (replay.ways.restore)."""

import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone

from core.cache_records import tombstones_get
from core.ods import ods_seed
from core.records import MAX_VERSION, record_decode, record_encode, record_from_document
from core.sources import SqlSource
from kafkacache.cache import CacheOp, cache_apply
from kafkacache.consumer import FeedConsumer
from recon import access
from recon.models import Finding, OperatorAction, ReconRun
from recon.selectors.evidence import evidence_pack
from recon.services.cache_check import cache_check
from recon.services.runs import replay_verify, run_execute
from replay.services.approval import replay_approve
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.cache_state import cached, record_forge
from tests.documents import client_doc
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def checker(people, feed):
    user = UserFactory(username="restore-checker", password=PASSWORD)
    access.topic_grant(user, feed.change, "operator")
    return user


def _ask(topic, user, way: str, keys: list[str]):
    replay, created = replay_request(
        topic=topic,
        way=way,
        scope="clients",
        target={"keys": keys},
        reason="a producer pinned these keys",
        requested_by=user,
        queue=False,
    )
    assert created
    return replay


def _drain() -> None:
    FeedConsumer().run(drain=True, max_seconds=60)


def test_restore_writes_the_source_over_a_planted_version_and_a_planted_tombstone(
    feed, cache, people, checker, settings
):
    ods_seed(clients=3, using="default")
    topic, maker = feed.change, people["operator"]
    truth = SqlSource().fetch([1, 2])
    pinned, buried = "client:1", "client:2"
    # What the hole left: client:1 pinned at a version the source never gave, with a made-up
    # name; client:2 deleted at such a version (a tombstone that outlives every repair).
    fake = record_encode(record_from_document(client_doc(1, name="Mallory")))
    record_forge(
        cache,
        pinned,
        value=fake.value,
        uuid=str(uuid.uuid4()),
        version=MAX_VERSION,
        schema_version=fake.schema_version,
        topic=topic.name,
        created_ms=1,
    )
    cache_apply(cache, [CacheOp("delete", buried, MAX_VERSION)])
    leg = cache_check(topic=topic, keys=[pinned, buried], keys_source="ods", trigger="test")
    assert leg.report["all_matched"] is False
    open_findings = Finding.objects.filter(topic=topic, category="cache", key__in=[pinned, buried])
    assert open_findings.count() == 2 and not open_findings.filter(status="resolved").exists()

    # The ordinary repair is refused as older: a rebuild from the source loses to the planted version.
    source_way = replay_run(replay_id=_ask(topic, maker, "source", [pinned, buried]).pk)
    assert source_way.status == "done"
    _drain()
    assert cached(cache, pinned).version == MAX_VERSION and cached(cache, buried) is None

    # A restore: always a second operator's decision; nothing runs before it.
    restore = _ask(topic, maker, "restore", [pinned, buried])
    assert (restore.status, restore.needs_approval) == ("pending", True)
    assert replay_run(replay_id=restore.pk).status == "pending"
    assert cached(cache, pinned).version == MAX_VERSION
    replay_approve(replay=restore, user=checker, comment="source checked")
    restore = replay_run(replay_id=restore.pk)
    assert restore.status == "done" and restore.outcome == {"published": 2}
    details = {item.key: item for item in restore.items.all()}
    before_after = {key: json.loads(item.detail) for key, item in details.items()}
    assert before_after[pinned]["before"]["version"] == MAX_VERSION
    assert before_after[pinned]["after"]["version"] == truth[1].version
    assert before_after[buried]["before"] == {**before_after[buried]["before"], "present": False}
    assert before_after[buried]["before"]["tombstone"] == MAX_VERSION
    # Published, not yet applied: the findings stay open until the cache leg verifies.
    assert not open_findings.filter(status="resolved").exists()

    _drain()
    for key, client_id in ((pinned, 1), (buried, 2)):
        held = cached(cache, key)
        assert held.version == truth[client_id].version
        assert (
            record_decode(held.value, schema_version=held.schema_version, decrypt=True)["name"]
            == (truth[client_id].record["name"])
        )
    assert tombstones_get(cache, [buried]) == {}

    runs = replay_verify(replay_id=restore.pk)
    assert runs
    for run in runs:
        run_execute(run_id=run.pk)
    cache_run = ReconRun.objects.get(replay=restore, kind="cache")
    assert cache_run.report["all_matched"] is True
    assert open_findings.filter(status="resolved").count() == 2

    # The operator actions and the evidence pack: who asked, who approved, each key's before and after.
    assert OperatorAction.objects.filter(action="replay.approve", user=checker).exists()
    now = timezone.now()
    pack = evidence_pack(
        topic=topic,
        start=now - dt.timedelta(hours=1),
        end=now + dt.timedelta(minutes=1),
        user=checker,
        with_payloads=False,
    )
    [entry] = [r for r in pack["replays"] if r["id"] == str(restore.pk)]
    assert entry["way"] == "restore" and entry["decided_by"] == checker.username
    restored = {r["key"]: r for r in entry["restored"]}
    assert restored[pinned]["before"]["version"] == MAX_VERSION
    assert restored[pinned]["after"]["version"] == truth[1].version
    assert restored[pinned]["after"]["hash"] != restored[pinned]["before"]["hash"]
    assert entry["verified_by"] == [{"run": str(cache_run.pk), "status": "done", "all_matched": True}]

    # The order holds again from there: the source's next change applies, nothing older does.
    assert _put(cache, pinned, truth[1].version + 1) == "a"
    assert _put(cache, pinned, truth[1].version) == "o"


def _put(cache, key: str, version: int) -> str:
    """The verdict of an ordinary put of `version` on the key."""
    fake = record_encode(record_from_document(client_doc(int(key[7:]), name="Next")))
    [verdict] = cache_apply(cache, [CacheOp("add", key, version, fake.value, str(uuid.uuid4()), 1)]).verdicts
    return verdict


def test_a_restore_of_a_key_the_source_no_longer_holds_leaves_a_tombstone_at_a_drawn_version(
    feed, cache, people, checker
):
    ods_seed(clients=2, using="default")
    topic = feed.change
    gone = "client:77"  # never in the source: a record someone planted
    fake = record_encode(record_from_document(client_doc(77, name="Planted")))
    record_forge(cache, gone, value=fake.value, uuid=str(uuid.uuid4()), version=MAX_VERSION, schema_version=1)
    restore = _ask(topic, people["operator"], "restore", [gone])
    replay_approve(replay=restore, user=checker)
    restore = replay_run(replay_id=restore.pk)
    assert restore.outcome == {"published": 1}
    _drain()
    assert cached(cache, gone) is None
    [(key, tombstone)] = tombstones_get(cache, [gone]).items()
    assert key == gone and 0 < tombstone < MAX_VERSION


def test_a_restore_message_without_this_products_seal_is_held(feed, cache):
    """Anyone may name the event `restore`; only this product's producer can seal one."""
    from tests.replay.test_feed_integrity import _consume_from, _forged, _produce

    topic = feed.change
    topic.accepts_unsealed = True  # even where unsealed producers are accepted
    topic.save()
    fake = record_encode(record_from_document(client_doc(5, name="Mallory")))
    record_forge(cache, "client:5", value=fake.value, uuid=str(uuid.uuid4()), version=9, schema_version=1)
    forged = _forged("client:5", event="restore", version=1)
    _produce(topic.name, [forged])
    _consume_from(topic, 0, 1)
    assert cached(cache, "client:5").version == 9
    assert Finding.objects.get(topic=topic, category="dead-lettered", uuid=forged.uuid).detail["reason"] == "unsealed"
