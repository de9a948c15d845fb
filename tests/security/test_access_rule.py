"""One access rule (recon.access) for lists, object pages, CSV, the API and /metrics.

- a global "Can view topic" (given in the admin) grants no topic anywhere: the lists,
  the CSV, the API and /metrics answer as for an outsider, as the object pages do;
- a rebalance's partitions of topics the caller may not see are left out;
- retrieval keys (they read the load's records) only for who may read payloads.
"""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from recon import access
from recon.models import Load, RebalanceEvent
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LISTS = ["/api/topics/", "/api/windows/", "/api/findings/", "/api/rebalances/", "/api/loads", "/api/recon/runs"]


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def global_viewer(db):
    user = UserFactory(username="global-viewer", password=PASSWORD, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_topic", "operate_topic", "view_topic_payload"])
    )
    return user


def test_a_global_permission_grants_no_topic_in_any_list(data, topic_a, topic_b, people, global_viewer):
    client, outsider = _login(global_viewer), _login(people["outsider"])
    for url in LISTS:
        answer, baseline = client.get(url), outsider.get(url)
        assert answer.status_code == baseline.status_code == 200, url
        assert answer.json() == baseline.json(), url
        assert topic_a.name not in answer.content.decode() and topic_b.name not in answer.content.decode()
    csv = client.get(reverse("dashboard:findings-csv"))
    assert csv.status_code == 200
    assert topic_a.name.encode() not in b"".join(csv.streaming_content)
    page = client.get(reverse("dashboard:findings")).content.decode()
    assert topic_a.name not in page
    # the object pages already said 404: the lists now agree with them
    assert client.get(reverse("dashboard:finding", args=[data["missing"].pk])).status_code == 404
    assert client.get(f"/api/findings/{data['missing'].pk}/").status_code == 404
    metrics = client.get("/metrics").content.decode()
    assert topic_a.name not in metrics and topic_b.name not in metrics


def test_a_per_topic_grant_still_shows_exactly_that_topic(data, topic_a, topic_b, global_viewer):
    access.topic_grant(global_viewer, topic_b, "viewer")
    findings = _login(global_viewer).get("/api/findings/").json()["results"]
    assert {f["topic"] for f in findings} == {topic_b.name}


def test_rebalances_show_only_the_partitions_of_visible_topics(data, topic_a, topic_b, people):
    # One consumer group can hold partitions of several topics: topic B's group here.
    RebalanceEvent.objects.create(
        group=topic_b.consumer_group,
        member="m",
        kind="assigned",
        partitions=[{"topic": topic_b.name, "partition": 0}, {"topic": "payments.secret", "partition": 3}],
    )
    for client in (_login(people["viewer"]),):
        api = client.get("/api/rebalances/").json()["results"]
        shown = [p for r in api for p in r["partitions"]]
        assert {"topic": topic_b.name, "partition": 0} in shown
        assert all(p["topic"] in {topic_a.name, topic_b.name} for p in shown)
        page = client.get(reverse("dashboard:rebalances")).content.decode()
        assert f"{topic_b.name}/0" in page and "payments.secret" not in page


def test_retrieval_keys_only_to_who_may_read_the_load(data, topic_a, people):
    load = Load.objects.create(topic=topic_a, source="ods", retrieval_key="rk-secret-4711")
    viewer, operator = _login(people["viewer"]), _login(people["operator"])
    for client, shown in ((viewer, False), (operator, True)):
        listed = {row["id"]: row for row in client.get("/api/loads").json()["results"]}[str(load.id)]
        one = client.get(f"/api/loads/{load.id}").json()
        for row in (listed, one):
            assert (row["retrieval_key"] == "rk-secret-4711") is shown
            assert (row["cache_url"] is not None) is shown
        assert (b"rk-secret-4711" in client.get("/api/loads").content) is shown
