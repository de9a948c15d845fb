"""bench/cache_leg.py at a small size: every injected divergence found, nothing else (no speed asserted)."""

import pytest

from bench.cache_leg import bench_run
from tests.cache_state import cached_keys

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_small_cache_leg_bench_finds_exactly_what_it_injected(cache):
    figures = bench_run(keys=3000, inject=15)
    assert figures["checked"] == 3000
    assert figures["findings"] == {"stale": 15, "absent": 15, "unexpected": 15, "differs": 15}
    assert figures["findings_stored"] == {"new": 60, "updated": 0, "resolved": 0}
    assert not cached_keys(cache)  # it cleans up after itself
