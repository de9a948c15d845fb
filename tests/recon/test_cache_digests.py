"""The digest leg and the rolling scrub against the real Kafka, Redis and PostgreSQL: together
they find exactly what the key-by-key leg finds, and nothing in flight."""

import random

import pytest
from django.db import connection

from core.cache_records import bucket_digests, digests_complete
from core.ods import ods_seed
from core.redis_keys import SLOTS, slot_of
from core.sources import SqlSource
from kafkacache.services.cache_scrub import cache_scrub_slice
from kafkacache.services.change_feed import change_feed_run
from kafkacache.services.loads import load_run, load_start
from recon.models import CacheScrub, Finding, Load
from recon.services.cache_check import cache_check
from tests.cache_state import cached, cached_keys, record_forge, records_drop
from tests.recon.test_cache_check import _consume_all, _later
from tests.replay.conftest import feed_topics_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

CLIENTS = 60


@pytest.fixture
def fed(settings, unique_name, cache):
    """A bulk load of CLIENTS clients from the SQL source, consumed into the cache, and one
    whole scrub pass (the digests marked complete)."""
    settings.CACHE_DIGEST_RECHECK_MS = 0
    feed = feed_topics_make(settings, unique_name)
    ods_seed(clients=CLIENTS, using="default")
    load = load_run(load_id=load_start(topic=feed.bulk, source="ods", client_ids=[], requested_by=None, queue=False).id)
    assert load.status == Load.Status.DONE
    feed.bulk_next = _consume_all(feed.bulk.name, 0)
    assert not digests_complete(cache)  # records came in, but nothing said the digests cover them all
    scrub = cache_scrub_slice(slots=SLOTS)
    assert scrub.finished_at is not None and (scrub.keys_read, scrub.buckets_repaired) == (CLIENTS, 0)
    assert digests_complete(cache)
    return feed


def _problems(run) -> dict[str, list[str]]:
    return {kind: entry["keys"] for kind, entry in run.report["problems"].items()}


def _standing(topic) -> dict[str, str]:
    return {
        f.key: f.detail["problem"]
        for f in Finding.objects.filter(topic=topic, category="cache", status__in=("open", "acknowledged"))
    }


def test_a_clean_cache_matches_by_digest_alone(fed, cache):
    run = cache_check(topic=fed.bulk, now=_later())
    report = run.report
    assert (report["method"], report["whole_topic"], report["all_matched"], report["checked"]) == (
        "digest",
        True,
        True,
        CLIENTS,
    )
    assert report["digests"]["differing"] == 0 and report["digests"]["keys_read"] == 0
    assert report["digests"]["buckets"] == len(bucket_digests(cache)) > 0


def test_without_complete_digests_the_leg_reads_every_key(fed, cache):
    cache.delete("kc:dg:complete")
    report = cache_check(topic=fed.bulk, now=_later()).report
    assert (report["method"], report["checked"], report["all_matched"]) == ("keys", CLIENTS, True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_digest_leg_and_scrub_find_exactly_what_the_key_by_key_leg_finds(fed, cache, seed):
    """Random divergence of every kind, made in the source (the feed does not run) and behind
    the cache writer's back (dropped, expired, forged values and versions, junk keys)."""
    rng = random.Random(seed)
    ids = list(range(1, CLIENTS + 1))
    rng.shuffle(ids)
    source_update, source_delete, dropped, expired, forged_value, forged_version = (
        ids[0:3],
        ids[3:5],
        ids[5:8],
        ids[8:10],
        ids[10:13],
        ids[13:15],
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ods.clients SET name = 'Newer' WHERE client_id = ANY(%s)", [source_update])
        cursor.execute("DELETE FROM ods.clients WHERE client_id = ANY(%s)", [source_delete])
    records_drop(cache, [f"client:{i}" for i in dropped])
    for i in expired:
        cache.pexpire(f"kc:rec:{{client:{i}}}", 1)
    for i in forged_value:
        record_forge(cache, f"client:{i}", value=b"changed in place")
    for i in forged_version:
        held = cached(cache, f"client:{i}")
        assert held is not None
        record_forge(cache, f"client:{i}", version=held.version + rng.choice((-1, 5)))
    junk = [f"client:{900_000 + n}" for n in range(rng.randrange(1, 4))]
    record_forge(cache, junk, value=b"junk", uuid="not-a-uuid", topic=fed.bulk.name)
    while any(cached(cache, f"client:{i}") for i in expired):  # expired before anyone looks
        pass

    # The digest leg alone sees what changed in the source: the writer counted the rest.
    alone = _problems(cache_check(topic=fed.bulk, now=_later()))
    assert set(alone.get("stale", [])) == {f"client:{i}" for i in source_update}
    assert set(alone.get("unexpected", [])) >= {f"client:{i}" for i in source_delete}

    scrub = cache_scrub_slice(slots=SLOTS)  # one whole pass
    assert scrub.finished_at is not None
    assert scrub.buckets_repaired > 0 and scrub.values_differ == len(forged_value) + len(junk)
    digest_run = cache_check(topic=fed.bulk, now=_later())
    assert digest_run.report["method"] == "digest"
    by_digest = _standing(fed.bulk)

    full = cache_check(topic=fed.bulk, now=_later(), method="keys")
    assert full.report["method"] == "keys"
    by_keys = {key: kind for kind, keys in _problems(full).items() for key in keys}
    assert by_digest == by_keys, (by_digest, by_keys, digest_run.report["digests"])
    expected = {
        **{f"client:{i}": "stale" for i in source_update},
        **{f"client:{i}": "unexpected" for i in source_delete},
        **{f"client:{i}": "absent" for i in dropped + expired},
        **{f"client:{i}": "differs" for i in forged_value},
        **dict.fromkeys(junk, "unexpected"),
    }
    assert {k: v for k, v in by_keys.items() if k not in {f"client:{i}" for i in forged_version}} == expected
    assert {by_keys[f"client:{i}"] for i in forged_version} <= {"stale", "ahead"}
    # The digest leg read only the keys of buckets that differ.
    assert digest_run.report["digests"]["keys_read"] < CLIENTS


def test_a_change_on_its_way_through_the_feed_is_pending_not_a_finding(fed, cache):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ods.clients SET name = 'On its way' WHERE client_id = 7")
    change_feed_run(source=SqlSource())  # published, not consumed yet
    report = cache_check(topic=fed.bulk).report
    assert (report["method"], report["all_matched"], report["pending"]) == ("digest", True, 1)
    _consume_all(fed.change.name, 0)
    report = cache_check(topic=fed.bulk, now=_later()).report
    assert report["all_matched"] is True and report["pending"] == 0


def test_a_key_that_moves_between_the_read_and_the_recheck_is_in_flight(fed, cache, settings, monkeypatch):
    """The recheck after the pause: a key whose cache caught up meanwhile is not reported."""
    from recon.services import cache_check as module

    settings.CACHE_DIGEST_RECHECK_MS = 1
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ods.clients SET name = 'Caught up' WHERE client_id = 9")
    change_feed_run(source=SqlSource())
    paused: list[float] = []

    def consume_during_the_pause(seconds):
        paused.append(seconds)
        _consume_all(fed.change.name, 0)

    monkeypatch.setattr(module, "_pause", consume_during_the_pause)
    report = cache_check(topic=fed.bulk, now=_later()).report  # past the latency limit: not pending by ledger
    assert (report["all_matched"], report["pending"], paused) == (True, 1, [0.001])


def test_a_scrub_pass_goes_slice_by_slice_and_retries_a_raced_slot(fed, cache, monkeypatch):
    from kafkacache.services import cache_scrub as module

    assert CacheScrub.objects.filter(finished_at__isnull=True).count() == 0
    first = cache_scrub_slice(slots=SLOTS // 2)
    assert (first.next_slot, first.finished_at) == (SLOTS // 2, None)
    junk = next(f"client:{n}" for n in range(950_000, 960_000) if slot_of(f"client:{n}") >= SLOTS // 2)
    record_forge(cache, junk, value=b"junk", uuid="x", topic=fed.bulk.name)
    swap = module.digests_swap
    raced: list[int] = []

    def once_raced(client, slot, **kw):
        if not raced:
            raced.append(slot)
            return False
        return swap(client, slot, **kw)

    monkeypatch.setattr(module, "digests_swap", once_raced)
    second = cache_scrub_slice(slots=SLOTS // 2)
    assert raced == [slot_of(junk)]  # the junk key's slot, in the second half: its swap refused once
    assert (second.finished_at, second.retry, second.next_slot) == (None, raced, SLOTS)
    third = cache_scrub_slice(slots=SLOTS // 2)  # the pass's end: only the raced slot again
    assert third.finished_at is not None and third.pk == first.pk and third.retry == []
    assert third.buckets_repaired == 1 and junk in cached_keys(cache)


def test_keys_are_re_proved_by_digest_only_with_a_recent_scrub_pass(fed, cache, settings):
    import datetime as dt

    from django.utils import timezone

    from recon.selectors.runs import keys_reproved

    run = cache_check(topic=fed.bulk)
    proof = keys_reproved(fed.bulk, at=timezone.now())
    assert (proof["met"], proof["method"], proof["run"]) == (True, "digest", str(run.pk))
    scrub = CacheScrub.objects.get()
    assert proof["scrub_started_at"] == scrub.started_at and proof["scrub_finished_at"] == scrub.finished_at
    # The scrub pass's start is the older of the two: the proof is as old as it.
    CacheScrub.objects.filter(pk=scrub.pk).update(started_at=timezone.now() - dt.timedelta(hours=25))
    proof = keys_reproved(fed.bulk, at=timezone.now())
    assert proof["met"] is False and proof["run"] == str(run.pk)
    CacheScrub.objects.all().delete()
    assert keys_reproved(fed.bulk, at=timezone.now())["met"] is False


def test_an_on_demand_whole_topic_run_may_ask_for_every_key(fed, cache, django_capture_on_commit_callbacks):
    from rest_framework.test import APIClient

    from recon import access, tasks
    from recon.models import OperatorAction
    from tests.factories import UserFactory

    operator = UserFactory(username="digest-api-operator")
    access.topic_grant(operator, fed.bulk, "operator")
    api = APIClient()
    api.force_authenticate(operator)
    methods = {}
    for method in ("keys", "digest"):
        with django_capture_on_commit_callbacks(execute=False):
            response = api.post(
                "/api/recon/runs", {"topic": fed.bulk.name, "kind": "cache", "method": method}, format="json"
            )
        assert response.status_code == 202, response.content
        assert tasks.run_execute_task(response.json()["id"]) == "done"
        report = api.get(response.json()["status_url"]).json()["report"]
        methods[method] = (report["method"], report["checked"], report["all_matched"])
    assert methods == {"keys": ("keys", CLIENTS, True), "digest": ("digest", CLIENTS, True)}
    assert {a.detail.get("method") for a in OperatorAction.objects.filter(user=operator)} == {"keys", "digest"}
    refused = api.post(
        "/api/recon/runs",
        {
            "topic": fed.bulk.name,
            "kind": "transport",
            "start": "2026-01-01T00:00Z",
            "end": "2026-01-01T01:00Z",
            "method": "keys",
        },
        format="json",
    )
    assert refused.status_code == 400 and "method" in refused.content.decode()


def test_the_scrub_command_runs_a_whole_pass(fed, cache):
    import io

    from django.core.management import call_command

    records_drop(cache, ["client:5"])
    out = io.StringIO()
    call_command("cache_scrub", "--pass", stdout=out)
    assert "finished" in out.getvalue() and f"{CLIENTS - 1} records read, 1 bucket digests rebuilt" in out.getvalue()
    assert _problems(cache_check(topic=fed.bulk, now=_later())) == {"absent": ["client:5"]}


def test_a_scrub_period_too_long_for_the_proof_is_a_warning(settings):
    from config.checks import reproved_period_check

    assert reproved_period_check(None) == []  # the defaults: 8 h passes, proofs within 24 h
    settings.CACHE_SCRUB_PERIOD_HOURS = 13
    assert [w.id for w in reproved_period_check(None)] == ["kafkacache.W001"]
    settings.CACHE_LEG_METHOD = "keys"
    assert reproved_period_check(None) == []


def test_a_standing_finding_is_judged_by_reading_its_key_not_by_its_equal_bucket(fed, cache):
    """A key lost behind the writer's back leaves its bucket's digest equal to the source's:
    the digest leg still reads the key of every standing finding, so it neither misses nor
    wrongly resolves it."""
    records_drop(cache, ["client:11"])
    assert _problems(cache_check(topic=fed.bulk, now=_later(), method="keys")) == {"absent": ["client:11"]}
    run = cache_check(topic=fed.bulk, now=_later())
    assert (run.report["method"], run.report["digests"]["differing"]) == ("digest", 0)
    assert _problems(run) == {"absent": ["client:11"]} and run.report["findings"]["resolved"] == 0
    assert _standing(fed.bulk) == {"client:11": "absent"}
