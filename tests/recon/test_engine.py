"""Window reconciliation against the real PostgreSQL ledgers (set-based compare)."""

import datetime as dt

import pytest

from recon.models import Finding, Rule, Window
from recon.services.windows import due_windows_reconcile, range_reconcile, window_reconcile
from tests.recon.helpers import T0, expected_uuids, report_uuids, scenario_write, topic_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LATER = T0 + dt.timedelta(hours=1)  # every test window has closed by then


def _reconcile(topic, now=LATER):
    return range_reconcile(topic=topic, start=T0, end=T0 + dt.timedelta(minutes=5), trigger="test", now=now)


def test_clean_window_is_matched_on_counts_and_digests_alone():
    topic = topic_make("clean")
    scenario_write(topic, n=200)
    run = _reconcile(topic)
    window = Window.objects.get(topic=topic)
    assert window.status == Window.Status.MATCHED
    assert window.summary["fast_path"] is True
    assert run.status == "done"
    assert run.report["all_matched"] is True
    assert run.report["findings"] == {}
    assert (run.report["published"], run.report["consumed"]) == (200, 200)
    assert not Finding.objects.filter(topic=topic).exists()


def test_each_fault_is_named_exactly_once_in_its_category():
    topic = topic_make("faults")
    faults = scenario_write(topic, n=300, missing=3, altered=2, duplicate=4, delayed=2, orphan=3)
    run = _reconcile(topic)
    assert report_uuids(run.report) == expected_uuids(faults)
    window = Window.objects.get(topic=topic)
    assert window.status == Window.Status.DISCREPANT
    assert window.summary["fast_path"] is False
    assert window.summary["findings"] == {"missing": 3, "altered": 2, "duplicate": 4, "delayed": 2, "orphan": 3}
    delayed = Finding.objects.get(topic=topic, category="delayed", uuid=next(iter(faults.delayed)))
    assert delayed.detail["delay_seconds"] == pytest.approx(35.0)
    assert delayed.run_id == run.pk
    altered = Finding.objects.filter(topic=topic, category="altered").first()
    assert altered is not None and altered.detail["published_hash"] not in altered.detail["consumed_hashes"]
    assert run.report["all_matched"] is False


def test_re_reconciling_updates_findings_instead_of_adding_copies():
    topic = topic_make("idem")
    scenario_write(topic, n=50, missing=2, duplicate=1)
    window_id = Window.objects.get(topic=topic).pk
    window_reconcile(window_id=window_id, now=LATER)
    first = set(Finding.objects.filter(topic=topic).values_list("pk", "category", "uuid"))
    window_reconcile(window_id=window_id, now=LATER)
    _reconcile(topic)
    assert set(Finding.objects.filter(topic=topic).values_list("pk", "category", "uuid")) == first
    assert len(first) == 3


def test_a_late_delivery_resolves_missing_and_reports_delayed():
    from core.hashing import content_hash
    from recon.models import PublishedMessage
    from recon.services.ledger import ConsumedRow, consumed_record

    topic = topic_make("late")
    faults = scenario_write(topic, n=20, missing=1)
    window = Window.objects.get(topic=topic)
    window_reconcile(window_id=window.pk, now=LATER)
    lost = PublishedMessage.objects.get(uuid=next(iter(faults.missing)))
    consumed_record(
        topic=topic,
        rows=[
            ConsumedRow(
                lost.uuid,
                "g",
                lost.partition,
                lost.offset,
                lost.key,
                bytes(lost.content_hash),
                lost.published_at,
                LATER,
                "stored",
            )
        ],
    )
    assert Window.objects.get(pk=window.pk).status == Window.Status.OPEN  # the late row reopened it
    due_windows_reconcile(now=LATER + dt.timedelta(minutes=1))
    missing = Finding.objects.get(topic=topic, category="missing")
    assert missing.status == Finding.Status.RESOLVED and missing.detail["resolved_by"] == "reconcile"
    delayed = Finding.objects.get(topic=topic, category="delayed")
    assert delayed.uuid == lost.uuid and delayed.status == Finding.Status.OPEN
    assert content_hash(b"x")  # hashing stays importable alongside the ledger


def test_before_end_plus_grace_unconsumed_messages_are_pending_not_missing():
    topic = topic_make("pending", grace_seconds=120)
    scenario_write(topic, n=10, missing=2)
    window = Window.objects.get(topic=topic)
    in_grace = window.end + dt.timedelta(seconds=30)
    window_reconcile(window_id=window.pk, now=in_grace)
    window.refresh_from_db()
    assert window.status == Window.Status.OPEN and window.summary["pending"] == 2
    assert not Finding.objects.filter(topic=topic).exists()
    assert list(due_windows_reconcile(now=in_grace)) == []  # not due yet
    runs = due_windows_reconcile(now=window.end + dt.timedelta(seconds=121))
    assert len(runs) == 1 and runs[0].trigger == "schedule"
    assert runs[0].report["findings"]["missing"]["count"] == 2
    assert Window.objects.get(pk=window.pk).status == Window.Status.DISCREPANT


def test_methods_switched_off_are_not_reported():
    topic = topic_make("methods", method_uuid=False)
    scenario_write(topic, n=40, missing=2, altered=1, duplicate=1)
    run = _reconcile(topic)
    # UUID tracking off: no per-UUID loss; the hash method still names the altered one,
    # and the counts method says the totals differ (40 published, 39 consumed).
    assert set(run.report["findings"]) == {"altered", "count"}
    count = Finding.objects.get(topic=topic, category="count")
    assert count.detail == {"published": 40, "consumed": 39}

    quiet = topic_make("methods-off", method_uuid=False, method_hash=False, method_counts=False)
    scenario_write(quiet, n=40, missing=2, altered=1)
    run = _reconcile(quiet)
    assert run.report["findings"] == {}
    assert Window.objects.get(topic=quiet).status == Window.Status.MATCHED


@pytest.mark.parametrize("algorithm", ["xxh3", "crc32"])
def test_checksum_modes_find_altered_messages(algorithm):
    topic = topic_make(f"alg-{algorithm}", hash_algorithm=algorithm)
    faults = scenario_write(topic, n=30, altered=2)
    run = _reconcile(topic)
    assert report_uuids(run.report) == expected_uuids(faults)


def test_rules_turn_tolerated_delays_into_matches():
    topic = topic_make("rules")
    scenario_write(topic, n=30, delayed=2)
    Rule.objects.create(
        name="delays under a minute are fine",
        topic=topic,
        category="delayed",
        detail_field="delay_seconds",
        max_value=60,
        classification="match",
        severity="info",
    )
    run = _reconcile(topic)
    assert run.report["classification"] == {"match": 2}
    assert Window.objects.get(topic=topic).status == Window.Status.MATCHED
    assert set(Finding.objects.filter(topic=topic).values_list("classification", flat=True)) == {"match"}


def test_a_re_read_offset_is_counted_as_redelivery_not_a_duplicate():
    topic = topic_make("redelivered")
    faults = scenario_write(topic, n=60, duplicate=2, redelivered=5)
    _reconcile(topic)
    window = Window.objects.get(topic=topic)
    assert window.redelivered == 5 and window.summary["redelivered"] == 5
    duplicates = set(Finding.objects.filter(topic=topic, category="duplicate").values_list("uuid", flat=True))
    assert duplicates == faults.duplicate  # a second copy at another offset stays a duplicate
    assert window.summary["findings"] == {"duplicate": 2}


def test_a_redelivery_that_came_late_is_judged_by_its_first_delivery():
    topic = topic_make("redelivered-late")
    faults = scenario_write(topic, n=10, redelivered=1)
    # the re-read came long after the latency limit; the first delivery was on time
    from recon.models import ConsumedMessage

    (late,) = faults.redelivered
    row = ConsumedMessage.objects.filter(uuid=late).order_by("consumed_at").last()
    ConsumedMessage.objects.filter(pk=row.pk).update(consumed_at=row.consumed_at + dt.timedelta(minutes=10))
    Window.objects.filter(topic=topic).update(consumed_max_latency_ms=10 * 60 * 1000)
    _reconcile(topic)
    window = Window.objects.get(topic=topic)
    assert (window.redelivered, window.summary["findings"], window.status) == (1, {}, Window.Status.MATCHED)


def test_one_version_published_twice_under_two_uuids_is_republished_info():
    import uuid as uuid_

    from core.hashing import content_hash
    from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record

    topic = topic_make("republished")
    first, again, replayed = (uuid_.uuid4() for _ in range(3))
    digest = content_hash(b"v7")
    at = T0 + dt.timedelta(seconds=5)
    rows = [
        PublishedRow(first, 0, 1, "client:7", "bulk", digest, 2, at, source_version=7),
        PublishedRow(again, 0, 2, "client:7", "bulk", digest, 2, at + dt.timedelta(seconds=30), source_version=7),
        # a replay of the same version is not a republication
        PublishedRow(replayed, 0, 3, "client:7", "bulk", digest, 2, at + dt.timedelta(seconds=40), None, first, 7),
        PublishedRow(uuid_.uuid4(), 0, 4, "client:8", "bulk", digest, 2, at, source_version=8),
    ]
    published_record(topic=topic, rows=rows)
    consumed_record(
        topic=topic,
        rows=[
            ConsumedRow(r.uuid, "g", 0, r.offset, r.key, digest, r.published_at, r.published_at, "stored") for r in rows
        ],
    )
    _reconcile(topic)
    window = Window.objects.get(topic=topic)
    assert window.summary["fast_path"] is True  # counts and digests are clean: only the versions tell
    finding = Finding.objects.get(topic=topic, category="republished")
    assert (finding.uuid, finding.key, finding.severity) == (again, "client:7", "info")
    assert finding.detail["uuids"] == [str(first), str(again)] and finding.detail["source_version"] == 7
    _reconcile(topic)  # found again: kept, not duplicated
    assert Finding.objects.filter(topic=topic, category="republished").count() == 1


def _stray(topic, *, offset: int, outcome: str, message_uuid=None):
    from core.hashing import content_hash
    from recon.services.ledger import ConsumedRow, consumed_record

    at = T0 + dt.timedelta(seconds=2)
    row = ConsumedRow(
        message_uuid, topic.consumer_group, 0, offset, f"stray:{offset}", content_hash(b"x"), at, at, outcome
    )
    consumed_record(topic=topic, rows=[row])


def test_a_dead_letter_is_one_finding_not_also_an_orphan():
    import uuid

    from recon.services.findings import finding_record

    topic = topic_make("dead-not-orphan")
    scenario_write(topic, n=20)
    # Two bad messages the feed dead-lettered (one with no usable uuid), one real stray delivery.
    dead_uuid, stray_uuid = uuid.uuid4(), uuid.uuid4()
    _stray(topic, offset=900, outcome="dead", message_uuid=dead_uuid)
    _stray(topic, offset=901, outcome="dead")
    _stray(topic, offset=902, outcome="stored", message_uuid=stray_uuid)
    for offset, message_uuid in ((900, dead_uuid), (901, None)):
        finding_record(
            topic=topic,
            category="dead-lettered",
            uuid=message_uuid,
            detail={"reason": "bad", "partition": 0, "offset": offset},
        )
    run = _reconcile(topic)
    assert {c: e["count"] for c, e in run.report["findings"].items()} == {"orphan": 1}
    assert run.report["findings"]["orphan"]["uuids"] == [str(stray_uuid)]
    by_category = sorted(Finding.objects.filter(topic=topic).values_list("category", flat=True))
    assert by_category == ["dead-lettered", "dead-lettered", "orphan"]


def test_a_message_dead_lettered_again_updates_its_finding():
    from recon.services.findings import finding_record

    topic = topic_make("dead-again")
    place = {"partition": 2, "offset": 41}
    first = finding_record(
        topic=topic, category="dead-lettered", key="client:1", detail={"reason": "schema 9", **place}
    )
    again = finding_record(
        topic=topic, category="dead-lettered", key="client:1", detail={"reason": "still bad", **place}
    )
    assert again.pk == first.pk
    assert Finding.objects.filter(topic=topic).count() == 1
    first.refresh_from_db()
    assert (first.detail["attempts"], first.detail["last_error"], first.detail["reason"]) == (
        2,
        "still bad",
        "schema 9",
    )
    # Once resolved, a new dead letter at the same place is a new problem.
    Finding.objects.filter(pk=first.pk).update(status=Finding.Status.RESOLVED)
    third = finding_record(topic=topic, category="dead-lettered", key="client:1", detail={"reason": "new", **place})
    assert third.pk != first.pk
