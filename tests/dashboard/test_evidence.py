"""The evidence pack: permission-gated, audited, masked, with a checksum that the trail and every format agree on."""

import datetime as dt
import hashlib
import io
import json
import zipfile

import pytest
from django.urls import reverse

from core.records import record_encode, record_from_document
from recon.models import OperatorAction, Replay
from recon.services import finding_lifecycle
from recon.services.audit import payloads_record
from tests.documents import DOC

from .conftest import CARD

pytestmark = pytest.mark.django_db


def _query(topic, fmt: str, data) -> dict:
    return {
        "topic": topic.name,
        "start": (data["now"] - dt.timedelta(days=1)).isoformat(),
        "end": (data["now"] + dt.timedelta(hours=1)).isoformat(),
        "format": fmt,
    }


@pytest.fixture
def story(data, people, topic_a):
    """A break with a history and a replay that was approved by a second person."""
    missing = data["missing"]
    finding_lifecycle.finding_assign(
        finding=missing, user=people["operator"], assignee=people["operator"], comment=f"card {CARD}"
    )
    finding_lifecycle.finding_fix(finding=missing, user=people["operator"], comment="re-sent")
    Replay.objects.create(
        topic=topic_a,
        way="kafka",
        scope="messages",
        target={"uuids": [str(missing.uuid)]},
        fingerprint="e1",
        reason="lost",
        requested_by=people["operator"],
        decided_by=people["admin"],
        needs_approval=True,
        status="done",
        size=1,
        preview={"totals": {"messages": 1, "apply": 1}},
    )
    return missing


def test_json_pack_has_everything_masked_and_its_checksum_is_in_the_trail(client_for, story, topic_a, data):
    response = client_for("operator").get(reverse("dashboard:evidence-download"), _query(topic_a, "json", data))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.content
    checksum = hashlib.sha256(body).hexdigest()
    assert response["X-Evidence-SHA256"] == checksum
    assert CARD.encode() not in body
    pack = json.loads(body)
    finding = next(f for f in pack["findings"] if f["id"] == story.pk)
    assert [h["action"] for h in finding["history"]] == ["assign", "fix"]
    assert finding["owner"] == "operator1" and finding["status"] == "fixed"
    assert finding["comments"][0]["text"].endswith(CARD[-4:]) and CARD not in finding["comments"][0]["text"]
    replay = pack["replays"][0]
    assert (replay["requested_by"], replay["decided_by"], replay["dry_run"]) == (
        "operator1",
        "admin1",
        {"messages": 1, "apply": 1},
    )
    assert pack["legs"]["transport"]["published"] == 6 and pack["legs"]["transport"]["consumed"] == 5
    assert any(a["action"] == "finding.fix" for a in pack["operator_actions"])
    assert pack["payloads_included"] is False and "payloads" not in pack
    recorded = OperatorAction.objects.get(action="evidence.export")
    assert recorded.detail["sha256"] == checksum and recorded.user.username == "operator1"


def test_csv_zip_and_printable_summary_carry_the_same_checksum(client_for, story, topic_a, data):
    client = client_for("operator")
    archive = client.get(reverse("dashboard:evidence-download"), _query(topic_a, "csv", data))
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        manifest = json.loads(z.read("manifest.json"))
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(z.read(name)).hexdigest() == digest, name
        pack_bytes = z.read("pack.json")
        findings_csv = z.read("findings.csv").decode()
        history_csv = z.read("finding_history.csv").decode()
    assert hashlib.sha256(pack_bytes).hexdigest() == manifest["pack_sha256"] == archive["X-Evidence-SHA256"]
    assert CARD not in findings_csv and str(story.pk) in findings_csv and "fix" in history_csv
    html = client.get(reverse("dashboard:evidence-download"), _query(topic_a, "html", data))
    assert html.status_code == 200 and html["X-Evidence-SHA256"].encode() in html.content
    assert b"Evidence pack" in html.content and CARD.encode() not in html.content
    assert OperatorAction.objects.filter(action="evidence.export").count() == 2


def test_payload_fields_only_with_the_setting_on_and_masked_even_then(client_for, data, topic_a, settings):
    topic_a.method_audit = True  # the audit log keeps payloads only for topics that ask
    topic_a.save(update_fields=["method_audit"])
    message = data["rows_a"][5]  # the missing finding's message
    encoded = record_encode(record_from_document({**DOC, "client_id": 5}))
    payloads_record(topic=topic_a, side="published", items=[(message.uuid, encoded.value, message.published_at, 1)])
    url = reverse("api-evidence")
    off = client_for("operator").get(url, _query(topic_a, "json", data)).json()
    assert "payloads" not in off
    settings.EVIDENCE_EXPORT_PAYLOADS = True
    response = client_for("operator").get(url, _query(topic_a, "json", data))
    pack = response.json()
    assert pack["payloads_included"] is True and pack["payloads"][0]["uuid"] == str(message.uuid)
    text = json.dumps(pack["payloads"])
    assert "Grace Hopper" in text and DOC["cards"][0]["card_number"] not in text


def test_export_is_permission_gated_and_refusals_are_recorded(client_for, data, topic_a, topic_b):
    url = reverse("dashboard:evidence-download")
    assert client_for("viewer").get(url, _query(topic_a, "json", data)).status_code == 403
    assert client_for("operator").get(url, _query(topic_b, "json", data)).status_code == 403  # only views B
    assert client_for("outsider").get(url, _query(topic_a, "json", data)).status_code == 404
    api = client_for("viewer").get(reverse("api-evidence"), _query(topic_a, "json", data))
    assert api.status_code == 403 and api.json()["error"]["code"] == "permission_denied"
    assert OperatorAction.objects.filter(action="evidence.export", outcome="refused").count() == 3
    assert client_for("operator").get(url, {"topic": topic_a.name}).status_code == 400
    page = client_for("operator").get(reverse("dashboard:evidence")).content
    assert topic_a.name.encode() in page and topic_b.name.encode() not in page
