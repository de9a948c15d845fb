"""The dry run (replay.preview): the version rule as a pure function, and previews read from the real Redis."""

import pytest

from kafkacache.cache import CacheOp, cache_apply
from kafkacache.services.change_feed import change_publish
from recon.models import PublishedMessage
from replay.preview import field_changes, replay_dry_run, version_verdict
from tests.documents import client_doc

pytestmark = [pytest.mark.django_db]


@pytest.mark.parametrize(
    ("replayed", "sv", "tombstone", "verdict"),
    [
        (5, None, None, "apply"),  # nothing cached
        (5, 4, None, "apply"),  # older record
        (5, 5, None, "same"),  # equal: idempotent
        (5, 6, None, "refused"),  # the cache holds a newer write
        (5, None, 6, "refused"),  # deleted later
        (5, 4, 5, "refused"),  # not newer than the delete
        (7, 4, 6, "apply"),  # newer than both
        (5, 6, 3, "refused"),
        (None, 6, None, "refused"),  # unversioned never replaces a versioned record
        (None, None, None, "apply"),  # but fills an empty key
        (None, 0, None, "apply"),  # or replaces an unversioned one
    ],
)
def test_version_verdict(replayed, sv, tombstone, verdict):
    assert version_verdict(replayed, sv, tombstone).verdict == verdict


def test_field_changes_of_masked_records():
    before = {"name": "Ada", "cards": [{"card_number": "•••• 1111", "status": "active"}]}
    after = {"name": "Ada", "cards": [{"card_number": "•••• 1111", "status": "blocked"}]}
    assert field_changes(before, after) == [{"field": "cards[0].status", "from": "active", "to": "blocked"}]
    assert field_changes(None, after) == []


@pytest.mark.integration
def test_dry_run_reads_the_cache_and_says_what_each_message_would_do(feed, client_ids, cache):
    topic = feed.change
    fresh = change_publish(topic=topic, event="add", record=client_doc(next(client_ids), name="Fresh"), version=4)
    older = change_publish(topic=topic, event="add", record=client_doc(next(client_ids), name="Old"), version=4)
    gone = change_publish(topic=topic, event="add", record=client_doc(next(client_ids), name="Gone"), version=4)
    versioned = change_publish(
        topic=topic, event="add", record=client_doc(next(client_ids), name="Versioned"), version=9
    )
    rows = {r.uuid: r for r in PublishedMessage.objects.filter(topic=topic)}
    # The cache: a newer version for `older`'s key, a later delete of `gone`'s, the same version for the last.
    cache_apply(
        cache,
        [
            CacheOp("add", rows[older.uuid].key, 5, b"newer", "someone-else", 1, created_ms=1),
            CacheOp("delete", rows[gone.uuid].key, 6),
            CacheOp("add", rows[versioned.uuid].key, 9, b"same", "v-msg", 1, created_ms=1),
        ],
    )

    uuids = [str(m.uuid) for m in (fresh, older, gone, versioned)]
    preview = replay_dry_run(topic=topic, way="audit", scope="messages", target={"uuids": uuids})
    by_uuid = {m["uuid"]: m for m in preview["messages"]}
    assert preview["totals"] == {"messages": 4, "apply": 1, "refused": 2, "same": 1}
    assert by_uuid[str(fresh.uuid)]["verdict"] == "apply"
    assert by_uuid[str(fresh.uuid)]["cache_before"]["present"] is False
    assert "audit payload" in by_uuid[str(fresh.uuid)]["publishes"]
    after = by_uuid[str(fresh.uuid)]["after"]["fields"]
    assert after["name"] == "Fresh" and "4111111111111111" not in str(preview)  # masked
    assert after["cards"][0]["card_number"].endswith("1111")
    assert by_uuid[str(older.uuid)]["verdict"] == "refused" and "version 5" in by_uuid[str(older.uuid)]["reason"]
    assert by_uuid[str(gone.uuid)]["verdict"] == "refused" and "deleted" in by_uuid[str(gone.uuid)]["reason"]
    same = by_uuid[str(versioned.uuid)]
    assert (same["verdict"], same["cache_before"]["sv"], same["after"]["version"]) == ("same", 9, 9)
    # Read-only: nothing was published.
    assert not PublishedMessage.objects.filter(replay_of__in=uuids).exists()


@pytest.mark.integration
def test_dry_run_of_offsets_clients_and_dead_letters(feed, client_ids, cache):
    from recon.models import Finding

    topic = feed.change
    one = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)), version=3)
    row = PublishedMessage.objects.get(uuid=one.uuid)
    target = {"partition": row.partition, "start_offset": row.offset, "end_offset": row.offset + 1}
    offsets = replay_dry_run(topic=topic, way="kafka", scope="offsets", target=target)
    assert offsets["totals"] == {"messages": 2, "apply": 1, "skipped": 1}
    by_offset = {m["offset"]: m for m in offsets["messages"]}
    assert by_offset[row.offset]["uuid"] == str(one.uuid) and "re-read" in by_offset[row.offset]["publishes"]
    assert "not in the publish ledger" in by_offset[row.offset + 1]["reason"]

    cache_apply(cache, [CacheOp("add", row.key, 3, b"held", str(one.uuid), 1, created_ms=1)])
    clients = replay_dry_run(topic=topic, way="source", scope="clients", target={"keys": [row.key, "client:1"]})
    first = clients["messages"][0]
    assert (first["key"], first["cache_before"]["present"], first["cache_before"]["sv"]) == (row.key, True, 3)
    assert clients["messages"][1]["cache_before"]["present"] is False and clients["totals"]["apply"] == 2

    dead = Finding.objects.create(
        topic=topic, category="dead-lettered", classification="exception", uuid=one.uuid, key=row.key
    )
    letters = replay_dry_run(topic=topic, way="dead-letter", scope="findings", target={"findings": [dead.pk]})
    assert letters["totals"]["messages"] == 1 and "dead letter" in letters["messages"][0]["publishes"]
    assert letters["messages"][0]["verdict"] == "same"  # the cache holds this very message
