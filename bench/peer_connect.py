"""The peer: Kafka Connect standalone running a sink on the same topic (bench/connect/pom.xml).

No Redis sink connector resolves from Maven Central (see the pom), so the sink is
Connect's own FileStreamSink with the byte-array converter: one line per record
into a file. That is the Connect framework's ceiling (consume, convert, put,
commit offsets) for any sink on this machine; a Redis sink would add its Redis
writes on top. The rate is taken from the first record written to the last, so
JVM start and the group join are left out, as for the product's figures.
"""

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "bench" / "connect" / "pom.xml"
CLASSPATH = ROOT / "var" / "bench" / "connect-classpath.txt"


def connect_classpath() -> str:
    """connect-runtime + connect-file and their dependencies, resolved once from Maven Central."""
    if not CLASSPATH.exists() or CLASSPATH.stat().st_mtime < POM.stat().st_mtime:
        CLASSPATH.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mvn", "-q", "-B", "-f", str(POM), "dependency:build-classpath", f"-Dmdep.outputFile={CLASSPATH}"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return CLASSPATH.read_text().strip()


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def connect_file_sink(topic: str, expected: int, *, timeout_s: float = 300) -> dict:
    """Run Connect standalone with FileStreamSink on `topic` until `expected` records are written.

    Long because it writes the peer's whole configuration inline, as its operator would,
    and waits for it in one place; a helper per file would hide what the peer runs with."""
    if not shutil.which("java") or not shutil.which("mvn"):
        return {"error": "java and mvn are needed for the Kafka Connect peer"}
    classpath = connect_classpath()
    name = f"bench-peer-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="kc-connect-") as tmp:
        work = Path(tmp)
        sink_file = work / "sink.txt"
        (work / "worker.properties").write_text(
            "\n".join(
                [
                    f"bootstrap.servers={settings.KAFKA_BOOTSTRAP_SERVERS}",
                    "key.converter=org.apache.kafka.connect.converters.ByteArrayConverter",
                    "value.converter=org.apache.kafka.connect.converters.ByteArrayConverter",
                    f"offset.storage.file.filename={work / 'offsets'}",
                    "offset.flush.interval.ms=1000",
                    "listeners=http://127.0.0.1:0",  # any free port: other runs may hold 8083
                    "plugin.discovery=only_scan",
                    "consumer.auto.offset.reset=earliest",
                ]
            )
            + "\n"
        )
        (work / "sink.properties").write_text(
            "\n".join(
                [
                    f"name={name}",
                    "connector.class=org.apache.kafka.connect.file.FileStreamSinkConnector",
                    "tasks.max=1",
                    f"topics={topic}",
                    f"file={sink_file}",
                ]
            )
            + "\n"
        )
        log4j = ROOT / "var" / "kafka" / "log4j2.properties"
        proc = subprocess.Popen(
            [
                "java",
                "-Xmx512m",
                f"-Dlog4j2.configurationFile={log4j}",
                "-cp",
                classpath,
                "org.apache.kafka.connect.cli.ConnectStandalone",
                str(work / "worker.properties"),
                str(work / "sink.properties"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(work / "connect.log").open("w"),
        )
        try:
            started = time.perf_counter()
            first: float | None = None
            seen = first_seen = 0
            while time.perf_counter() - started < timeout_s and proc.poll() is None:
                seen = _lines(sink_file)
                now = time.perf_counter()
                if seen and first is None:
                    first, first_seen = now, seen
                if seen >= expected:
                    break
                time.sleep(0.05)
            ended = time.perf_counter()
            if proc.poll() is not None and seen < expected:
                log = (work / "connect.log").read_text()[-800:]
                return {"error": f"Connect exited ({proc.returncode}) after {seen} records", "log": log}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # The first sample may have seen some records already: the rate counts from there.
    seconds = ended - first if first else 0.0
    return {
        "connector": "FileStreamSink (connect-file), ByteArrayConverter",
        "redis_sink": "none resolves from Maven Central",
        "messages": seen,
        "seconds": round(seconds, 3),
        "msgs_per_s": round((seen - first_seen) / seconds) if seconds and seen >= expected else None,
    }
