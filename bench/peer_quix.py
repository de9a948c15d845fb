"""The Quix Streams peer: its RedisSink on the same topic, in a virtualenv of its own.

Quix Streams 3.28.1 requires confluent-kafka < 2.13 and the product pins 2.16,
so the bench makes var/bench/venv-quix from bench/quix/requirements.txt (once;
again when the pins change) and runs bench/quix/sink_app.py in it. The sink
buffers a whole checkpoint (5 s by default) and then writes one MULTI/EXEC per
partition, so a rate from its first write would flatter it: the rate runs from
the first message the app consumed to the moment the last message of every
partition is a key in Redis (each partition's writes are in order, so by then
all of them are). Every key is then counted, and deleted.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from confluent_kafka import TopicPartition
from django.conf import settings

from bench.cpu import tree_seconds
from core.clients import make_consumer, redis_client

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "bench" / "quix" / "requirements.txt"
VENV = ROOT / "var" / "bench" / "venv-quix"


def quix_python() -> Path:
    """The peer's interpreter, its virtualenv made (or remade) from the pinned requirements."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirements-sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    stamp.write_text(wanted)
    return python


def last_keys(topic: str) -> dict[int, bytes]:
    """The key of the last message of each partition of `topic`."""
    consumer = make_consumer(f"bench-last-{uuid.uuid4().hex[:8]}", **{"enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        wanted = []
        for p in partitions:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > 0:
                wanted.append(TopicPartition(topic, p, high - 1))
        consumer.assign(wanted)
        out: dict[int, bytes] = {}
        deadline = time.monotonic() + 30
        while len(out) < len(wanted) and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=len(wanted), timeout=1.0):
                if m.error() is None:
                    out[m.partition()] = m.key() or b""
        return out
    finally:
        consumer.close()


def _count(client, prefix: bytes, *, delete: bool) -> int:
    seen, batch = 0, []
    for key in client.scan_iter(match=prefix + b"*", count=5000):
        seen += 1
        batch.append(key)
        if delete and len(batch) >= 5000:
            client.unlink(*batch)
            batch = []
    if delete and batch:
        client.unlink(*batch)
    return seen


# A checkpoint interval for throughput: fewer, larger MULTI/EXECs than at 1 s, and the run
# ends at its last message (count) instead of waiting for a 5 s interval to run out.
TUNED_COMMIT_INTERVAL_S = 2.0


def quix_redis_sink(topic: str, expected: int, *, tuned: bool = False, timeout_s: float = 600) -> dict:
    """Run the Quix Streams RedisSink app until the topic's last keys are in Redis (the
    Redis of settings.REDIS_URL, whose CPU the bench counts). Defaults, or `tuned`: the
    commit interval TUNED_COMMIT_INTERVAL_S and run(count=expected).

    Long because it starts the peer with its whole command line inline, waits for it and
    stops it in one place: the `finally` that stops it must see the process."""
    python = quix_python()
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('quixstreams'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ends = last_keys(topic)
    url = urlsplit(settings.REDIS_URL)
    db = int((url.path or "/0").strip("/") or 0)
    prefix = f"bench:quix:{uuid.uuid4().hex[:8]}:".encode()
    client = redis_client()
    wanted = [prefix + key for key in ends.values()]
    with tempfile.TemporaryDirectory(prefix="kc-quix-") as tmp:
        first_file, last_file = Path(tmp) / "first", Path(tmp) / "last"
        log = Path(tmp) / "quix.log"
        proc = subprocess.Popen(
            [
                str(python),
                str(ROOT / "bench" / "quix" / "sink_app.py"),
                *("--broker", settings.KAFKA_BOOTSTRAP_SERVERS, "--topic", topic),
                *("--group", f"bench-quix-{uuid.uuid4().hex[:8]}"),
                *("--redis-host", url.hostname or "127.0.0.1", "--redis-port", str(url.port or 6379)),
                *("--redis-db", str(db), "--prefix", prefix.decode()),
                *("--state-dir", str(Path(tmp) / "state"), "--first", str(first_file), "--last", str(last_file)),
                *(("--commit-interval", str(TUNED_COMMIT_INTERVAL_S), "--count", str(expected)) if tuned else ()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO")},
        )
        done_at = None
        cpu = 0.0
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                exited = proc.poll() is not None  # run(count=...) exits after its final checkpoint
                if client.exists(*wanted) == len(wanted):
                    done_at = time.time()
                    break
                if exited:
                    break
                time.sleep(0.02)
            if done_at is not None:
                # its own CPU as it exited, or now (the keys are in: what follows is idle)
                cpu = float(last_file.read_text().split()[1]) if last_file.exists() else tree_seconds(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if done_at is None:
            return {"error": f"Quix app exited {proc.returncode} or timed out", "log": log.read_text()[-800:]}
        started, cpu_first = (float(x) for x in first_file.read_text().split())
    written = _count(client, prefix, delete=True)
    seconds = done_at - started
    how = (
        f"commit_interval {TUNED_COMMIT_INTERVAL_S:g} s, run(count={expected})"
        if tuned
        else "defaults (commit_interval 5 s)"
    )
    return {
        "sink": f"quixstreams {version} sinks.community.redis.RedisSink, {how}",
        "tuned": tuned,
        "redis": settings.REDIS_URL,
        "messages": written,
        "expected": expected,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(expected / seconds) if seconds > 0 and written >= expected else None,
        "run_cpu_seconds": round(cpu - cpu_first, 3),  # from the first message to the last key
    }
