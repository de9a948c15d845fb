"""Fixtures of the reliability tests.

- `feed` and `cache` are the feed tests' own fixtures (fresh topics and group per
  test, a clean cache), reused rather than copied.
- `private_services`: one private Kafka, Redis and PostgreSQL for all fault tests of
  the session, on free loopback ports, migrated and seeded, stopped at the end.
  The shared services the other engineers test against are never stopped.
"""

import os

import pytest

from tests.kafkacache.conftest import feed  # noqa: F401 - fixture, re-exported for pytest
from tests.reliability.harness import PrivateServices

# Messages per fault scenario in the suite. The README's figures come from
# bench/faults.py at 100,000 (35-70 s per scenario on 2 cores: five of them are
# more than the suite's budget); the scenarios and the accounting are the same code.
FAULT_MESSAGES = int(os.environ.get("FAULT_MESSAGES", "10000"))


@pytest.fixture(scope="session")
def private_services():
    services = PrivateServices.create()
    try:
        services.up()
        services.manage("seed_source", "--clients", str(FAULT_MESSAGES), "--reset")
        yield services
    finally:
        services.down()
