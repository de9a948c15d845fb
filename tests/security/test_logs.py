"""No secret and no card or account number in the logs of a pipeline run.

Every logger is captured at DEBUG while a change with a card number goes through
the API, the consume loop (with the audit log on), a dead letter holding numbers
in clear, the cache API decrypting for the operator, and recon's transport, cache
and validation runs. The logs must hold none of: the Django secret key, the field
and audit encryption keys, the database password, the card or account number.
(The fault tests grep the logs of the product's own processes the same way, with a
database password of their own: tests/reliability/harness.py.)
"""

import datetime as dt
import json
import logging

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from core.clients import make_producer
from recon import access
from recon.services.cache_check import cache_check
from recon.services.feed import feed_topics_ensure
from recon.services.validation import validation_run
from recon.services.windows import range_reconcile
from tests.dashboard.conftest import CARD
from tests.documents import DOC
from tests.kafkacache import conftest as feed_base
from tests.kafkacache.conftest import consume_all
from tests.reliability.bad_input import good_message, headers_replaced, sealed_with

from .conftest import ACCOUNT

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
feed = feed_base.feed


def test_a_pipeline_run_logs_no_secret_and_no_card_number(feed, cache, secrets, people, caplog):
    caplog.set_level(logging.DEBUG)
    topics = feed_topics_ensure()
    change = topics["change"]
    change.method_audit = True
    change.save(update_fields=["method_audit"])
    operator = people["operator"]
    for topic in topics.values():
        access.topic_grant(operator, topic, "operator")
    api = APIClient()
    api.force_authenticate(operator)

    response = api.post("/api/changes", {"event": "add", "record": DOC}, format="json")
    assert response.status_code == 202, response.content  # published; its status URL says what the cache did
    clear = make_producer()  # a producer that forgot to encrypt: a dead letter, whose reason must not quote numbers
    good = response.json()
    clear.produce(
        change.name, key=b"client:27", value=sealed_with(27, lambda b, f: b), headers=headers_replaced(good_message(27))
    )
    assert clear.flush(10) == 0
    consume_all()
    load = api.post("/api/loads", {"source": "ods", "client_ids": [1]}, format="json")
    assert load.status_code in (202, 400), load.content  # the ODS may be absent here: a clear refusal then
    now = timezone.now()
    range_reconcile(topic=change, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(minutes=1), trigger="t")
    cache_check(topic=change, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(minutes=1))
    validation_run(topic=change, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(minutes=1))
    message = api.get(f"/api/messages/{good['uuid']}/")
    assert message.status_code == 200

    logs = caplog.text + json.dumps([r.args for r in caplog.records], default=str)
    assert "batch of" in logs and "dead-lettered" in logs  # the run did log, at length
    database = settings.DATABASES["default"]
    forbidden = {
        **secrets,
        "database url": f"{database['USER']}:{database['PASSWORD']}@",
        "card": CARD,
        "account": ACCOUNT,
    }
    assert [name for name, value in forbidden.items() if value in logs] == []


def test_a_kafka_key_starting_with_a_newline_cannot_forge_a_log_line(feed, cache, caplog):
    """Untrusted values are logged with %r: a key carrying a newline and a fake log line
    stays inside its own record, escaped."""
    from confluent_kafka import Message

    from kafkacache.consumer import FeedConsumer

    caplog.set_level(logging.DEBUG)
    change = feed_topics_ensure()["change"]
    forged = "\n2026-12-01 12:00:00,000 INFO kafkacache.consumer batch ok"
    message = Message(
        topic=change.name, partition=0, offset=0, key=forged.encode(), value=b"garbage", headers=[("event", b"add")]
    )
    FeedConsumer().process_batch([message])
    text = caplog.text
    assert "\n2026-12-01 12:00:00,000 INFO" not in text
    assert repr(forged) in text  # the finding's log line names the key, escaped
    assert all("\n" not in record.getMessage() for record in caplog.records if record.name.startswith("recon"))
