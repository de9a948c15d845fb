"""Scale-out on a 3-broker KRaft cluster (replication 3, min.insync.replicas 2), all private:
PostgreSQL, Redis and the cluster on free loopback ports (tests/reliability/harness.py).

- broker: a broker SIGKILLed mid-load and mid-consume, back, then another one: nothing lost,
  the reconcile accounts for every message, the leader changes are recorded like rebalances.
- scale: 6 partitions, three consumers (two `manage.py consume`, the scheduled loop in a Celery
  worker with beat), one SIGKILLed, one added: nothing lost, rebalances recorded, lag back to 0.

Small message counts here; bench/cluster.py runs the same scenarios at 50,000 and prints the figures.
"""

import os

import pytest

from tests.reliability.accounting import accounted_for
from tests.reliability.harness import PrivateServices, scenario_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGES = int(os.environ.get("CLUSTER_MESSAGES", "3000"))


@pytest.fixture(scope="module")
def cluster_services():
    services = PrivateServices.create(cluster=True)
    try:
        services.up()
        services.manage("seed_source", "--clients", str(MESSAGES), "--reset")
        yield services
    finally:
        services.down()


def _nothing_lost(result: dict) -> None:
    """The fault tests' accounting: every published message consumed and reconciled (redeliveries
    counted as duplicates, never as losses), the cache equal to the source, no secret in the logs."""
    accounted_for(result)
    assert result["messages"] == MESSAGES


def test_a_broker_lost_mid_load_and_mid_consume_loses_nothing(cluster_services):
    result = scenario_run(cluster_services, "broker", messages=MESSAGES)
    _nothing_lost(result)
    events = [e["what"] for e in result["events"]]
    assert "broker 1 SIGKILLed" in events, result["events"]
    assert "leader change recorded" in events, result["events"]
    assert result["rebalances"].get("leader", 0) >= 1, result["rebalances"]


def test_three_consumers_one_killed_one_added_lose_nothing_and_lag_returns_to_zero(cluster_services):
    result = scenario_run(cluster_services, "scale", messages=MESSAGES)
    _nothing_lost(result)
    assert result["rebalances"].get("assigned", 0) >= 3, result["rebalances"]
    assert result["lag_after"] == 0 and result["lag_zero_seconds"] is not None, result["events"]
    events = [e["what"] for e in result["events"]]
    for step in ("three consumers assigned", "consumer 1 SIGKILLed", "consumer 3 added", "consumer 3 assigned"):
        assert step in events, result["events"]
