"""Property: whatever mix of faults a window holds, the report names exactly those UUIDs."""

import datetime as dt
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.models import Window
from recon.services.windows import range_reconcile
from tests.recon.helpers import T0, expected_uuids, report_uuids, scenario_write, topic_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

faults = st.fixed_dictionaries(
    {
        "missing": st.integers(0, 4),
        "altered": st.integers(0, 4),
        "duplicate": st.integers(0, 4),
        "delayed": st.integers(0, 4),
        "orphan": st.integers(0, 4),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mix=faults, clean=st.integers(0, 30), algorithm=st.sampled_from(["blake2b", "xxh3", "crc32"]))
def test_report_names_exactly_the_injected_faults(mix, clean, algorithm):
    topic = topic_make(f"prop-{uuid.uuid4().hex[:8]}", hash_algorithm=algorithm)
    n = clean + mix["missing"] + mix["altered"] + mix["duplicate"] + mix["delayed"]
    injected = scenario_write(topic, n=n, **mix)
    run = range_reconcile(
        topic=topic, start=T0, end=T0 + dt.timedelta(minutes=5), trigger="test", now=T0 + dt.timedelta(hours=1)
    )
    assert report_uuids(run.report) == expected_uuids(injected)
    statuses = set(Window.objects.filter(topic=topic).values_list("status", flat=True))
    any_fault = any(mix.values())
    assert run.report["all_matched"] is (not any_fault)
    assert statuses <= ({"discrepant"} if any_fault else {"matched"})
