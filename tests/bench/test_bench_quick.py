"""`bench/run.py --quick` end to end: every figure is in its JSON (no speed asserted).

Counts are exact; a figure measured in time or CPU is only checked to be there and a
number at least 0: a tiny run's CPU can round to 0.0, and a test must not fail by chance.

Runs the benchmark once, in its own process, against the real services, with the
test run's isolation: its database is the test database's name plus "_benchq"
(pages: plus "_pages"), made anew each run (a database left by an earlier run may
hold an earlier schema or data), its Redis database the test run's (kc:* keys are cleared
before and after), its topics its own per run.
"""

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.conftest import ROOT

# A first run also makes the Quix peer's virtualenv; a busy shared machine runs it slower.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


def _database_url(suffix: str) -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}{suffix}"


def _database_fresh(url: str) -> None:
    """Drop the bench's database of `url` so that the run makes and migrates it anew."""
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def _measured(value) -> bool:
    """A timing or CPU figure: present and a number (a small run's may round to 0)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def test_quick_bench_writes_every_figure(tmp_path, cache):
    out = tmp_path / "quick.json"
    _database_fresh(_database_url("_benchq"))  # its pages database: bench/dashboard_pages.py makes it anew
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=_database_url("_benchq"),
        REDIS_URL=settings.REDIS_URL,
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    n = result["messages"]

    # the same ~1 KB messages throughout
    assert 800 <= result["value_bytes"] <= 1300
    assert result["source"]["clients"] == n

    limits = result["limits"]
    for name in ("bare_consume", "kafka_consumer_perf", "bare_produce", "kafka_producer_perf"):
        assert _measured(limits[name]["msgs_per_s"]), (name, limits[name])
    assert limits["bare_consume"]["messages"] == n
    assert limits["bare_produce"]["failed"] == 0
    for name in ("redis_set_p100", "redis_set_p1000", "redis_benchmark_p100"):
        assert _measured(limits[name]["ops_per_s"]), (name, limits[name])

    product = result["product"]
    # the bulk load in parts, by 1 worker and by 2 sharing the parts: every record once
    one, two = product["load"]["1_worker"], product["load"]["2_workers"]
    for workers, run in ((1, one), (2, two)):
        assert (run["workers"], run["messages"], len(run["per_worker"])) == (workers, n, workers), run
        assert run["parts"] > 1 and sum(w["parts"] for w in run["per_worker"]) == run["parts"], run
        assert sum(w["published"] for w in run["per_worker"]) == n, run
        assert _measured(run["msgs_per_s"]) and _measured(run["cpu"]["us_per_message_adjusted"]), run
        assert _measured(run["cpu"]["seconds"]["postgres_backends"]), run["cpu"]
    assert _measured(limits["bare_produce"]["cpu"]["us_per_message_adjusted"]), limits["bare_produce"]
    assert set(product["consume"]) == {"1p_b100", "1p_b1000", "2p_b100", "2p_b1000"}
    for key, run in product["consume"].items():
        # every message went through the product's path once per run, split over the processes
        assert run["messages"] == n, (key, run)
        assert sum(sum(o.values()) for o in run["outcomes"]) == n
        assert len(run["per_process_msgs_per_s"]) == run["processes"]
        assert all(_measured(r) for r in run["per_process_msgs_per_s"])
        assert all(0 < first <= peak for first, peak in zip(run["rss_mb_first_batch"], run["rss_mb_peak"], strict=True))
    assert product["consume"]["2p_b100"]["outcomes"][0] and product["consume"]["2p_b100"]["outcomes"][1]

    rec = product["reconcile"]
    assert rec["findings"] > 0 and _measured(rec["discrepant_1pct_s"]) and _measured(rec["baseline_count_s"])
    pages = product["pages"]["pages"]
    for name in ("overview 24h", "overview 7d", "discrepancies", "discrepancies filtered"):
        page = pages[name]
        assert _measured(page["p50_ms"]) and page["p50_ms"] <= page["p95_ms"] <= page["max_ms"], name

    peer = result["peer"]
    assert _measured(peer.get("msgs_per_s")) and peer["messages"] >= n, peer
    # the peers of issue 17 on the same topic: the minimal sink and Quix Streams' RedisSink
    minimal, quix, tuned = result["minimal_sink"], result["quix"], result["quix_tuned"]
    assert minimal["messages"] == n and _measured(minimal["msgs_per_s"]), minimal
    for peer_run in (quix, tuned):  # Quix at its defaults and tuned, into the bench's Redis
        assert peer_run["messages"] == n and _measured(peer_run["msgs_per_s"]), peer_run
    assert (quix["tuned"], tuned["tuned"]) == (False, True)
    # CPU per message across the machine, from /proc, for every run
    for run in (minimal, quix, tuned, *product["consume"].values()):
        cpu = run["cpu"]
        assert _measured(cpu["us_per_message"]), cpu
        assert set(cpu["seconds"]) >= {"clients", "kafka", "redis", "postgres_shared"}, cpu
        assert all(_measured(cpu["seconds"][k]) for k in ("clients", "kafka", "redis", "postgres_shared")), cpu
    for run in product["consume"].values():  # each worker's own PostgreSQL backend did the ledger
        assert _measured(run["cpu"]["seconds"]["postgres_backends"]), run["cpu"]

    # the table: every product figure beside a limit from this run, with its ratio
    rows = {row["figure"]: row for row in result["table"]}
    compared = [row for row in rows.values() if row.get("limit") is not None]
    assert len(compared) >= 16
    assert all(_measured(row["ratio"]) for row in compared), compared
    assert any(f.startswith("worker RSS") for f in rows)
    named = (
        "bulk load, 1 worker",
        "bulk load, 2 workers",
        "CPU per record: bulk load, 1 worker",
        "CPU per record: bulk load, 2 workers",
        "peer: Quix Streams RedisSink, defaults",
        "peer: Quix Streams RedisSink, tuned",
        "CPU per message: Quix tuned",
        "CPU per message: bare produce",
    )
    for name in named:
        assert any(f.startswith(name) for f in rows), name
    assert rows[next(f for f in rows if f.startswith("bulk load, 1 worker"))]["target"] == ">= 0.30"
