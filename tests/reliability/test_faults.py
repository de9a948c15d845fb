"""Faults injected during a bulk load, on private Kafka, Redis and PostgreSQL instances.

Each scenario runs the product's own processes (`manage.py produce_load`,
`manage.py consume`), breaks one thing mid-run, waits until every published
message is in the consume ledger, and then accounts with recon itself
(tests/reliability/harness.py). Each must end with:
- nothing lost: every published UUID consumed, recon's report names no missing,
  altered or orphaned message, and nothing is pending;
- duplicates from at-least-once redelivery counted (recon's duplicate findings
  equal the UUIDs the consume ledger holds more than once), not lost;
- Redis equal to the source record by record, and recon's cache leg matched;
- the fault seen by the consumer (its retries in the logs) and the loop resumed;
- no secret (Django key, field and audit encryption keys, the database
  password) and no card number in any log of the run.

The suite runs them at FAULT_MESSAGES (10,000) messages; bench/faults.py runs the
same scenarios at 100,000 for the README's table.
"""

import pytest

from tests.reliability.accounting import accounted_for
from tests.reliability.conftest import FAULT_MESSAGES
from tests.reliability.harness import scenario_run

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


def test_consumer_sigkilled_three_times_mid_run(private_services):
    result = scenario_run(private_services, "kill", messages=FAULT_MESSAGES)
    accounted_for(result)
    kills = [e for e in result["events"] if e["what"] == "consumer SIGKILLed"]
    assert len(kills) == 3
    assert len(result["recovery_seconds"]) == 3, result["events"]  # each restarted consumer made progress
    assert result["unexpected_exits"] == 0


def test_redis_stopped_and_restarted_mid_run(private_services):
    result = scenario_run(private_services, "redis", messages=FAULT_MESSAGES)
    accounted_for(result)
    assert result["retries"]["redis retries"] >= 1  # the batch in hand was retried, not skipped
    assert result["recovery_seconds"] and result["unexpected_exits"] == 0, result["events"]


def test_kafka_broker_stopped_and_restarted_mid_run(private_services):
    result = scenario_run(private_services, "kafka", messages=FAULT_MESSAGES)
    accounted_for(result)
    stopped = next(e for e in result["events"] if e["what"] == "kafka stopped")
    assert 0 < stopped["published"] < FAULT_MESSAGES  # the load was publishing when the broker went
    assert result["retries"]["kafka errors"] >= 1
    assert result["recovery_seconds"] and result["unexpected_exits"] == 0, result["events"]


def test_postgres_unavailable_for_a_while_mid_run(private_services):
    result = scenario_run(private_services, "postgres", messages=FAULT_MESSAGES)
    accounted_for(result)
    assert result["retries"]["ledger retries"] >= 1  # the loop paused on the ledger write
    assert result["recovery_seconds"] and result["unexpected_exits"] == 0, result["events"]


def test_consumer_added_to_and_removed_from_the_group_mid_run(private_services):
    result = scenario_run(private_services, "rebalance", messages=FAULT_MESSAGES)
    accounted_for(result)
    # recorded: the first member's assignment, the newcomer's, the hand-back after it left
    assert result["rebalances"].get("assigned", 0) >= 3, result["rebalances"]
    assert result["rebalances"].get("revoked", 0) >= 1
    assert result["recovery_seconds"] and result["unexpected_exits"] == 0, result["events"]
