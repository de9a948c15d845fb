"""The physical limits the product is measured against, on this machine, now.

Each function measures one raw path with no product code in it: a bare
confluent-kafka consume loop, redis-py pipelined SETs, redis-benchmark, and
Kafka's own perf tools (from the Maven jars bin/services resolved).
"""

import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from django.conf import settings

from core.clients import make_consumer, make_producer, redis_client

ROOT = Path(__file__).resolve().parent.parent


def bare_consume(topic: str, expected: int, *, batch: int = 500, timeout_s: float = 120) -> dict:
    """A consumer group reading `expected` messages and doing nothing with them."""
    consumer = make_consumer(f"bench-bare-{uuid.uuid4().hex[:8]}", **{"enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, started, first = 0, time.perf_counter(), None
    try:
        while seen < expected and time.perf_counter() - started < timeout_s:
            messages = consumer.consume(num_messages=batch, timeout=1.0)
            if messages and first is None:
                first = time.perf_counter()  # exclude the group join from the rate
            seen += sum(1 for m in messages if m.error() is None)
    finally:
        consumer.close()
    elapsed = time.perf_counter() - (first or started)
    return {"messages": seen, "seconds": round(elapsed, 3), "msgs_per_s": round(seen / elapsed) if elapsed else 0}


def fetch_values(topic: str, n: int, *, timeout_s: float = 60) -> list[bytes]:
    """The first `n` message values of `topic` (the same bytes the product consumed)."""
    consumer = make_consumer(f"bench-fetch-{uuid.uuid4().hex[:8]}", **{"enable.auto.commit": False})
    consumer.subscribe([topic])
    values: list[bytes] = []
    started = time.perf_counter()
    try:
        while len(values) < n and time.perf_counter() - started < timeout_s:
            for m in consumer.consume(num_messages=500, timeout=1.0):
                if m.error() is None and m.value():
                    values.append(m.value())
    finally:
        consumer.close()
    return values[:n]


def bare_produce(topic: str, values: list[bytes]) -> dict:
    """The product's producer settings (idempotent, acks=all, zstd, linger) and nothing else:
    produce every value with a key, serve delivery reports, flush once at the end."""
    producer = make_producer()
    failed = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failed.append(err)

    started = time.perf_counter()
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, key=f"client:{i}".encode(), value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    return {
        "messages": len(values),
        "failed": len(failed),
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(len(values) / elapsed) if elapsed else 0,
    }


def redis_pipelined_set(values: list[bytes], *, pipeline: int = 100) -> dict:
    client = redis_client()
    prefix = f"bench:set:{uuid.uuid4().hex[:6]}:"
    started = time.perf_counter()
    for i in range(0, len(values), pipeline):
        pipe = client.pipeline(transaction=False)
        for j, value in enumerate(values[i : i + pipeline], start=i):
            pipe.set(prefix + str(j), value)
        pipe.execute()
    elapsed = time.perf_counter() - started
    delete_prefix(client, prefix)
    return {"ops": len(values), "seconds": round(elapsed, 3), "ops_per_s": round(len(values) / elapsed)}


def delete_prefix(client, prefix: str) -> None:
    batch = []
    for key in client.scan_iter(match=prefix + "*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def redis_benchmark(*, requests: int, value_size: int, pipeline: int = 100) -> dict:
    exe = shutil.which("redis-benchmark")
    if not exe:
        return {"error": "redis-benchmark not installed"}
    url = settings.REDIS_URL
    match = re.match(r"redis://([^:/]+):(\d+)", url)
    host, port = (match.group(1), match.group(2)) if match else ("127.0.0.1", "6379")
    out = subprocess.run(
        [
            exe,
            "-h",
            host,
            "-p",
            port,
            "-t",
            "set",
            "-n",
            str(requests),
            "-d",
            str(value_size),
            "-P",
            str(pipeline),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    rate = re.search(r"SET: ([\d.]+) requests per second", out)
    return {"ops_per_s": round(float(rate.group(1))) if rate else None, "raw": out.strip()[-200:]}


def _kafka_java(main: str, args: list[str], timeout: int = 600) -> str:
    classpath = (ROOT / "var" / "kafka" / "classpath.txt").read_text().strip()
    log4j = ROOT / "var" / "kafka" / "log4j2.properties"
    return subprocess.run(
        ["java", "-Xmx512m", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath, main, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout


def kafka_producer_perf(topic: str, *, records: int, record_size: int) -> dict:
    out = _kafka_java(
        "org.apache.kafka.tools.ProducerPerformance",
        [
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(record_size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={settings.KAFKA_BOOTSTRAP_SERVERS}",
            "acks=all",
            f"compression.type={settings.KAFKA_COMPRESSION}",
            f"linger.ms={settings.KAFKA_LINGER_MS}",
        ],
    )
    match = re.search(r"(\d+) records sent, ([\d.]+) records/sec", out.strip().splitlines()[-1])
    return {"msgs_per_s": round(float(match.group(2))) if match else None, "raw": out.strip().splitlines()[-1][:200]}


def kafka_consumer_perf(topic: str, *, messages: int) -> dict:
    out = _kafka_java(
        "org.apache.kafka.tools.ConsumerPerformance",
        [
            "--bootstrap-server",
            settings.KAFKA_BOOTSTRAP_SERVERS,
            "--topic",
            topic,
            "--messages",
            str(messages),
            "--group",
            f"bench-perf-{uuid.uuid4().hex[:8]}",
            "--timeout",
            "60000",
        ],
    )
    # CSV: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    last = out.strip().splitlines()[-1].split(",")
    try:
        fetch_rate = float(last[-1])  # fetch.nMsg.sec: excludes the group join time
        overall = float(last[5])
    except (IndexError, ValueError):
        return {"msgs_per_s": None, "raw": out.strip()[-200:]}
    return {"msgs_per_s": round(fetch_rate), "overall_msgs_per_s": round(overall), "raw": ",".join(last)[:200]}
