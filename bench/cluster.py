"""Scale-out at full size on a 3-broker KRaft cluster (replication 3, min.insync.replicas 2).

The scenarios of tests/deploy/test_cluster.py (the suite runs them at 3,000 messages) at
--messages (50,000): `broker` (a broker SIGKILLed mid-load and mid-consume, back, then
another) and `scale` (6 partitions, two `manage.py consume` and the scheduled loop in a
Celery worker with beat; one SIGKILLed, one added). Private PostgreSQL, Redis and the
cluster on free loopback ports, stopped at the end. Prints one row per scenario (the
README's "Scaling out" table); --json writes every result in full.

    .venv/bin/python bench/cluster.py [--messages 50000] [--only broker,scale] [--json out.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.harness import CLUSTER_SCENARIOS, PrivateServices, scenario_run

LABELS = {
    "broker": "broker SIGKILLed mid-load and mid-consume, back; a 2nd broker SIGKILLed mid-consume, back",
    "scale": "3 consumers on 6 partitions (2 manage.py consume + the scheduled loop); 1 SIGKILLed, 1 added",
}


def row(result: dict) -> str:
    n = result["messages"]
    redis = result["redis"]
    redis_ok = redis["cached_keys"] == n and not (redis["missing"] or redis["extra"] or redis["differs"])
    recon = result["recon"]
    rebalances = ", ".join(f"{k} {v}" for k, v in sorted(result["rebalances"].items())) or "-"
    recovery = ", ".join(f"{s:.1f} s" for s in result["recovery_seconds"]) or "-"
    cache = "matched" if result["cache_check"]["all_matched"] else "NOT matched"
    lag = f"lag {result['lag_after']} ({result['lag_zero_seconds']} s)"
    return (
        f"| {LABELS[result['scenario']]} | {n:,} | {result['lost']} | {result['duplicated_uuids']:,} | "
        f"{recon['published']:,} / {recon['consumed']:,} / pending {recon['pending']} | "
        f"{'equal' if redis_ok else 'DIFFERS'}, cache leg {cache} | "
        f"{rebalances} | {recovery} | {lag} | {result['seconds']:.0f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--only", default="", help="comma-separated scenarios (default: broker,scale)")
    parser.add_argument("--json", default="", help="write the full results here")
    args = parser.parse_args()
    chosen = [s for s in (args.only.split(",") if args.only else CLUSTER_SCENARIOS) if s]

    services = PrivateServices.create(cluster=True)
    started = time.monotonic()
    results = []
    try:
        services.up()
        services.manage("seed_source", "--clients", str(args.messages), "--reset", timeout=600)
        print(f"cluster and private services up, {args.messages:,} clients, in {time.monotonic() - started:.0f} s")
        print("| scenario | messages | lost | duplicates | recon published / consumed | Redis vs source |"
              " rebalances recorded | recovery | lag after | run |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for scenario in chosen:
            result = scenario_run(services, scenario, messages=args.messages, timeout=max(300.0, args.messages / 100))
            results.append(result)
            print(row(result), flush=True)
    finally:
        services.down()
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
