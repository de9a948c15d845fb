"""The model-based test of the cache (tests/kafkacache/model.py), bounded for the suite.

Random interleavings each run: hypothesis's state machine (a failure prints the
steps that reproduce it) and seeded random walks over the same steps (a failure
names its seed: `MODEL_SEED=<seed> pytest tests/kafkacache/test_model.py`).
bench/model_soak.py runs both with many more examples and steps.
"""

import os
import random

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from .model import CacheModel, walk

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The suite's bounds; bench/model_soak.py raises them (both tests read them).
EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "3"))
STEPS = int(os.environ.get("MODEL_STEPS", "20"))
WALKS = int(os.environ.get("MODEL_WALKS", "2"))


def test_the_state_machine_ends_with_redis_equal_to_the_source(cache):
    run_state_machine_as_test(
        CacheModel,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS // 2,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


@pytest.mark.parametrize("walk_number", range(1, WALKS + 1))
def test_random_walks_end_with_redis_equal_to_the_source(cache, walk_number):
    seed = int(os.environ.get("MODEL_SEED") or random.randrange(2**32))
    try:
        ran = walk(seed, steps=STEPS)
    except AssertionError as exc:
        raise AssertionError(f"model walk with MODEL_SEED={seed} failed: {exc}") from exc
    # Not a vacuous pass: a walk mixes kinds of step, and ends at a reconcile point.
    assert len(ran) >= 5 and ran["reconcile_point"] >= 1, (seed, dict(ran))
