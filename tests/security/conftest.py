"""The security walk's world: every kind of object of topic A, every URL filled with real ids.

People and topics are the dashboard tests' base (tests/dashboard/conftest.py, tests/people.py):
viewer (views A and B), operator (operates A, views B), admin, outsider; plus
`operator_b`, who operates B only, so A is another topic's business to them.

Secrets are set to values known to this test (field and audit encryption keys, the
Django secret key, a webhook secret) so responses and logs can be searched for them.
URLs come from the anonymous walk's enumeration (tests/url_walk.all_paths)
with the placeholders replaced by the ids of topic A's objects.
"""

import base64
import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User

from core.records import record_encode, record_from_document
from kafkacache.cache import CacheOp, cache_apply
from monitoring.models import Alert, AlertRule
from recon import access
from recon.models import Load, ReconRun, Replay
from recon.services.audit import payloads_record
from tests.dashboard import conftest as dashboard_base
from tests.documents import DOC
from tests.factories import PASSWORD, UserFactory
from tests.url_walk import SAMPLE_UUID, all_paths

# The dashboard tests' base, as fixtures of this package (the clean `cache` is tests/conftest.py's).
topic_a, topic_b, people, client_for, data = (
    dashboard_base.topic_a,
    dashboard_base.topic_b,
    dashboard_base.people,
    dashboard_base.client_for,
    dashboard_base.data,
)
ACCOUNT = "3000900001"  # DOC's account number
SECRETS = {
    "DJANGO_SECRET_KEY": "sk-sec-walk-" + "9f3a" * 12,
    "FIELD_ENCRYPTION_KEYS": base64.b64encode(b"F" * 16 + b"i" * 16).decode(),
    "AUDIT_ENCRYPTION_KEYS": base64.b64encode(b"A" * 16 + b"u" * 16).decode(),
    "webhook secret": "whsec-walk-6c1d0b7e9a",
}


@pytest.fixture
def secrets(settings):
    settings.SECRET_KEY = SECRETS["DJANGO_SECRET_KEY"]
    settings.FIELD_ENCRYPTION_KEYS = f"walk1:{SECRETS['FIELD_ENCRYPTION_KEYS']}"
    settings.AUDIT_ENCRYPTION_KEYS = f"walkaudit1:{SECRETS['AUDIT_ENCRYPTION_KEYS']}"
    return SECRETS


@dataclass
class World:
    ids: dict[str, str]  # path segment before a placeholder -> the id of topic A's object
    retrieval_key: str
    message_uuid: uuid.UUID
    finding_pk: int


@pytest.fixture
def operator_b(topic_b):
    user = UserFactory(username="operator-b", password=PASSWORD)
    access.topic_grant(user, topic_b, "operator")
    return user


@pytest.fixture
def world(secrets, data, topic_a, people, cache) -> World:
    """Topic A's objects: the dashboard base's ledger and findings, plus a load whose records are
    in Redis, an audit payload, a replay, a recon run and an alert with a webhook secret."""
    topic_a.method_audit = True
    topic_a.save(update_fields=["method_audit"])
    load = Load.objects.create(topic=topic_a, source="ods", status=Load.Status.DONE)
    encoded = record_encode(record_from_document({**DOC, "client_id": 1}))
    message = data["rows_a"][1]  # key client:1
    cache_apply(
        cache,
        [
            CacheOp(
                "bulk", message.key, 1, encoded.value, str(message.uuid), 1, load=load.retrieval_key, topic=topic_a.name
            )
        ],
    )
    payloads_record(topic=topic_a, side="published", items=[(message.uuid, encoded.value, message.published_at, 1)])
    now = dt.datetime.now(dt.UTC)
    replay = Replay.objects.create(
        topic=topic_a, way="kafka", scope="messages", target={"uuids": [str(message.uuid)]}, fingerprint="f", reason="r"
    )
    run = ReconRun.objects.create(topic=topic_a, range_start=now - dt.timedelta(hours=1), range_end=now)
    rule = AlertRule.objects.create(
        name="walk", topic=topic_a, webhook_url="http://127.0.0.1:9/hook", webhook_secret=SECRETS["webhook secret"]
    )
    alert = Alert.objects.create(rule=rule, topic=topic_a, value=3, first_at=now, last_at=now)
    finding = data["missing"]
    window = finding.window
    ids = {
        "findings": str(finding.pk),
        "windows": str(window.pk),
        "messages": str(message.uuid),
        "loads": str(load.id),
        "replays": str(replay.id),
        "runs": str(run.id),
        "alerts": str(alert.pk),
        "topics": topic_a.name,
        "cache": load.retrieval_key,
    }
    return World(ids=ids, retrieval_key=load.retrieval_key, message_uuid=message.uuid, finding_pk=finding.pk)


def concrete_paths(world: World) -> list[str]:
    """Every URL of the site and API with topic A's ids in place of the walk's placeholders.

    Admin object URLs get the first object of their model (the model's name is the
    segment before the id)."""
    out = set()
    for path in all_paths():
        parts = path.split("/")
        for i, part in enumerate(parts):
            if part not in ("1", "x", SAMPLE_UUID) or i == 0:
                continue
            before = parts[i - 1]
            if before in world.ids:
                parts[i] = world.ids[before]
            elif before in ("user-manage", "group-manage"):  # guardian's object-permission pages
                model = User if before == "user-manage" else Group
                parts[i] = str(model.objects.order_by("pk").values_list("pk", flat=True)[0])
            elif parts[0] == "admin" and i >= 3:
                model = _admin_model(parts[1], before)
                first = model._default_manager.order_by("pk").first() if model else None
                if first is not None:
                    parts[i] = str(first.pk)
        out.add("/" + "/".join(parts))
    return sorted(out)


def _admin_model(app_label: str, model_name: str):
    try:
        return apps.get_model(app_label, model_name)
    except (LookupError, ValueError):
        return None


def topic_a_paths(world: World) -> list[str]:
    """The concrete paths that name one of topic A's objects (not the admin's)."""
    values = set(world.ids.values())
    return [p for p in concrete_paths(world) if not p.startswith("/admin/") and values & set(p.split("/"))]
