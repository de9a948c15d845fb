"""Fault injection at full size: each scenario during a bulk load of --messages (100,000) messages.

The same scenarios and accounting as tests/reliability/test_faults.py (the suite runs
them at 10,000 messages to stay within its time budget), on private Kafka, Redis and
PostgreSQL instances started here on free loopback ports and stopped at the end; the
shared services are never touched. Prints one row per fault (the README's table) and,
with --json, every result in full.

    .venv/bin/python bench/faults.py [--messages 100000] [--only kill,redis] [--json out.json]
    .venv/bin/python bench/faults.py --commit-intervals 5000,1000 [--messages 100000]

--commit-intervals runs the SIGKILL scenario once per CONSUMER_COMMIT_INTERVAL_MS given and
prints how many messages each SIGKILL redelivered (offsets re-read after the kill, counted
by the windows as `redelivered`, none a duplicate finding).
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.harness import CLUSTER_SCENARIOS, SCENARIOS, PrivateServices, scenario_run

# How long each stopped service stays down (at least; always until the consumer met the fault).
OUTAGES = {"redis": 5.0, "kafka": 5.0, "postgres": 8.0}
LABELS = {
    "kill": "consumer SIGKILLed mid-run, 3 times",
    "redis": "Redis stopped 5 s, restarted",
    "kafka": "Kafka broker stopped 5 s, restarted",
    "postgres": "PostgreSQL stopped 8 s, restarted",
    "rebalance": "2nd consumer joins at 25%, leaves at 60%",
}


def row(result: dict) -> str:
    n = result["messages"]
    lost = result["lost"]
    redis_ok = result["redis"]["cached_keys"] == n and not (
        result["redis"]["missing"] or result["redis"]["extra"] or result["redis"]["differs"]
    )
    findings = result["recon"]["findings"]
    cache = "matched" if result["cache_check"]["all_matched"] else "NOT matched"
    recovery = ", ".join(f"{s:.1f} s" for s in result["recovery_seconds"]) or "-"
    seen = ", ".join(f"{k} {v}" for k, v in result["retries"].items() if v) or "-"
    return (
        f"| {LABELS[result['scenario']]} | {n:,} | {lost} | {result['duplicated_uuids']:,} "
        f"({result['extra_deliveries']:,} extra deliveries) | {recovery} | "
        f"{'equal' if redis_ok else 'DIFFERS'}; cache leg {cache}"
        f"; recon {dict(findings) or 'clean'} | {seen} | {result['seconds']:.0f} s |"
    )


def commit_row(result: dict) -> str:
    kills = 3  # tests.reliability.harness._kill
    redis_ok = not (result["redis"]["missing"] or result["redis"]["extra"] or result["redis"]["differs"])
    return (
        f"| {result['commit_interval_ms']:,} | {result['messages']:,} | {kills} | {result['redelivered']:,}"
        f" | {result['redelivered'] / kills:,.0f} | {result['duplicate_findings']} | {result['lost']}"
        f" | {'equal' if redis_ok else 'DIFFERS'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    parser.add_argument("--json", default="", help="write the full results here")
    parser.add_argument("--commit-intervals", default="", help="e.g. 5000,1000: the kill scenario at each")
    args = parser.parse_args()
    # The 3-broker scenarios run in bench/cluster.py.
    chosen = [s for s in (args.only.split(",") if args.only else SCENARIOS) if s and s not in CLUSTER_SCENARIOS]
    intervals = [int(ms) for ms in args.commit_intervals.split(",") if ms]

    services = PrivateServices.create()
    started = time.monotonic()
    results = []
    try:
        services.up()
        services.manage("seed_source", "--clients", str(args.messages), "--reset", timeout=600)
        print(f"private services up and seeded with {args.messages:,} clients in {time.monotonic() - started:.0f} s")
        if intervals:
            print("| CONSUMER_COMMIT_INTERVAL_MS | messages | SIGKILLs | redelivered | per SIGKILL"
                  " | duplicate findings | lost | Redis vs source |")  # fmt: skip
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for ms in intervals:
                result = scenario_run(
                    services, "kill", messages=args.messages, env_extra={"CONSUMER_COMMIT_INTERVAL_MS": str(ms)}
                )
                result["commit_interval_ms"] = ms
                results.append(result)
                print(commit_row(result), flush=True)
            return
        print("| fault | messages | lost | duplicates (UUIDs delivered twice+) | recovery | Redis vs source; recon |"
              " seen by the consumer | run |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for scenario in chosen:
            result = scenario_run(services, scenario, messages=args.messages, outage=OUTAGES.get(scenario, 0.0))
            results.append(result)
            print(row(result), flush=True)
    finally:
        services.down()
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
