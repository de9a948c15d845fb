"""One bulk-load worker of the bench: the product's load_parts_run in its own process.

    .venv/bin/python bench/load_worker.py --load <load id> --out w.json [--ready F --go G]

Runs kafkacache.services.loads.load_parts_run unchanged: it claims the load's parts one after
another (those no other worker holds) and runs each (read, build, encrypt, Avro,
seal, publish with acks, ledger, checkpoint, a batch at a time with batches in
flight), as a Celery worker's LOAD_PART_RUN tasks do, until none is left. Several
of these on one load share its parts as Celery workers would. Writes its span (from
the go signal to its last part), the parts and records it published, and CPU
seconds of this process (librdkafka's threads included) and of its PostgreSQL
backend, as JSON. The environment (database, topics) comes from the parent,
bench/run.py.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A laptop run with DEBUG off and the development keys (config.secrets): never in production.
os.environ.setdefault("KAFKACACHE_ALLOW_DEV_SECRETS", "1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")

import django

django.setup()

from django.db import connection  # noqa: E402

from bench.cpu import process_seconds  # noqa: E402
from kafkacache.producer import producer  # noqa: E402
from kafkacache.services.loads import load_parts_run  # noqa: E402
from recon.models import LoadPart  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready", help="file to create once set up (the parent waits for every worker's)")
    parser.add_argument("--go", help="file whose appearance starts the run, so workers start together")
    args = parser.parse_args()

    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    producer()  # the process's producer made before the clock starts, as a long-lived worker's is
    if args.ready:
        Path(args.ready).touch()
    if args.go:
        while not Path(args.go).exists():
            time.sleep(0.005)
    own, backend_cpu = sum(os.times()[:2]), process_seconds(backend)
    started = time.time()
    load_parts_run(load_id=args.load)
    ended = time.time()
    own, backend_cpu = sum(os.times()[:2]) - own, process_seconds(backend) - backend_cpu
    mine = LoadPart.objects.filter(load_id=args.load, worker__endswith=f":{os.getpid()}")
    Path(args.out).write_text(
        json.dumps(
            {
                "started_at": started,
                "ended_at": ended,
                "parts": mine.count(),
                "published": sum(p.published for p in mine),
                "cpu_seconds": round(own, 3),
                "backend_cpu_seconds": round(backend_cpu, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
