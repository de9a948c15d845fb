"""Schemathesis against the OpenAPI schema at /api/schema/, authenticated as an operator.

Every operation of the schema gets a bounded number of generated requests
(MAX_EXAMPLES, derandomized so a run is repeatable) through the WSGI app in this
process, on the test database, with the operator's API token. Checks: no 500, the
status code is one the schema documents, the content type and body conform to the
schema. The operator operates the feed's (per-test) topics and topic A, so
generated writes that pass validation really run (a change is published to this
test's own Kafka topic; loads and replays are only queued, never run, since
on-commit hooks do not fire inside the test's transaction).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from knox.models import AuthToken
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from recon import access
from recon.services.feed import feed_topics_ensure
from tests.kafkacache import conftest as feed_base

pytestmark = [pytest.mark.integration, pytest.mark.django_db, pytest.mark.timeout(300)]

MAX_EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
feed = feed_base.feed


@contextmanager
def _test_connection_kept() -> Iterator[None]:
    """Requests through the WSGI app close "old" database connections at their start and end, which
    would close the test's own (its transaction); Django's test client unhooks the same signals."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_the_api_answers_generated_requests_within_its_schema(feed, world, people):
    operator = people["operator"]
    for topic in feed_topics_ensure().values():
        access.topic_grant(operator, topic, "operator")
    headers = {"Authorization": f"Token {AuthToken.objects.create(user=operator)[1]}"}
    with _test_connection_kept():
        _exercise(schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), headers=headers), headers)


def _describe(exc: BaseException) -> str:
    """An exception group's members one by one (schemathesis raises a group per failing case)."""
    members = getattr(exc, "exceptions", None)
    if not members:
        return f"{type(exc).__name__}: {exc}"
    return "\n".join(_describe(member) for member in members)


def _exercise(schema, headers: dict[str, str]) -> None:

    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def exercise(case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as exc:  # collected: one report per failing operation
            failures.append(f"{operation.label}: {_describe(exc)}"[:3000])
    assert operations >= 15  # the whole API, not just a corner of it
    assert not failures, "\n\n".join(failures)
