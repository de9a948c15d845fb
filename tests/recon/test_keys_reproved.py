"""Every key re-proved: the last whole-topic cache leg that started within CACHE_REPROVED_HOURS,
as recon.selectors.runs.keys_reproved tells it, on the topic page and in the evidence pack."""

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from core.ods import ods_seed
from recon import access
from recon.models import ReconRun
from recon.selectors.runs import keys_reproved
from recon.services.cache_check import cache_check
from recon.services.evidence import evidence_export
from tests.factories import UserFactory
from tests.recon.helpers import topic_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _started(run: ReconRun, *, hours_ago: float) -> None:
    ReconRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - dt.timedelta(hours=hours_ago))


def test_only_a_finished_whole_topic_run_within_the_period_re_proves_every_key(cache, settings):
    settings.CACHE_REPROVED_HOURS = 24
    ods_seed(clients=0, using="default")  # the source holds nothing and Redis neither: all equal
    topic = topic_make("reproved")
    assert keys_reproved(topic, at=timezone.now()) == {"within_hours": 24, "met": False, "run": None}
    ranged = cache_check(topic=topic, start=timezone.now() - dt.timedelta(hours=1), end=timezone.now())
    keyed = cache_check(topic=topic, keys=["client:1"], keys_source="ods")
    assert (ranged.report["whole_topic"], keyed.report["whole_topic"]) == (False, False)
    assert keys_reproved(topic, at=timezone.now())["run"] is None  # a range or a few keys is not every key

    whole = cache_check(topic=topic)
    assert whole.report["whole_topic"] is True
    proof = keys_reproved(topic, at=timezone.now())
    assert (proof["run"], proof["met"], proof["all_matched"], proof["reference"], proof["checked"]) == (
        str(whole.pk),
        True,
        True,
        "ods",
        0,
    )
    _started(whole, hours_ago=25)
    late = keys_reproved(topic, at=timezone.now())
    assert (late["run"], late["met"]) == (str(whole.pk), False)
    assert keys_reproved(topic, at=timezone.now() - dt.timedelta(hours=26))["run"] is None  # not started by then

    failed = cache_check(topic=topic)
    ReconRun.objects.filter(pk=failed.pk).update(status=ReconRun.Status.FAILED)
    assert keys_reproved(topic, at=timezone.now())["run"] == str(whole.pk)  # a failed run proves nothing


def test_the_topic_page_and_the_evidence_pack_say_whether_every_key_was_re_proved(cache, client, settings):
    settings.CACHE_REPROVED_HOURS = 24
    ods_seed(clients=2, using="default")  # two clients the cache does not hold
    topic = topic_make("reproved-page")
    viewer = UserFactory(username="reproved-viewer", password="x")
    access.topic_grant(viewer, topic, "viewer")
    client.force_login(viewer)
    page = reverse("dashboard:topic", args=[topic.pk])

    assert 'data-reproved="no"' in client.get(page).content.decode()  # no whole-topic run yet
    run = cache_check(topic=topic, now=timezone.now() + dt.timedelta(hours=2))  # past the latency limit
    assert run.report["all_matched"] is False, run.report
    html = client.get(page).content.decode()
    assert 'data-reproved="problems"' in html and "compared, 2 not equal" in html
    assert reverse("dashboard:run", args=[run.pk]) in html

    now = timezone.now()
    export = evidence_export(
        topic=topic, start=now - dt.timedelta(hours=1), end=now, user=viewer, fmt="html", can_payload=False
    )
    assert "compared, 2 not equal, within 24 h before the range's end" in export.body.decode()
    _started(run, hours_ago=30)
    assert 'data-reproved="no"' in client.get(page).content.decode()
    export = evidence_export(
        topic=topic, start=now - dt.timedelta(hours=1), end=now, user=viewer, fmt="json", can_payload=False
    )
    proof = json.loads(export.body)["legs"]["cache"]["keys_reproved"]
    assert (proof["run"], proof["met"], proof["problems"], proof["within_hours"]) == (str(run.pk), False, 2, 24)
