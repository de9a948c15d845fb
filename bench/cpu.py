"""CPU seconds per process tree, from /proc: what a message costs across the machine.

The services (Kafka broker, Redis, PostgreSQL) are found by the port they listen
on, so another stack on the same machine (a test's own broker) is not counted.
PostgreSQL is split in two: the backends serving the measured clients (exact:
each worker reports its own backend's pid) and the server's shared processes
(WAL writer, checkpointer, background writer, autovacuum), which, like Redis and
the broker, also serve other clients of the machine. For those shared processes
the caller samples the rate just before a run and subtracts it over the run's
span (`adjusted`), as well as reporting the raw figure.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import redis

TICK = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of one process (all its threads), 0 when it is gone; with reaped, also
    its children that have exited (cutime + cstime): Redis forks for an AOF rewrite, and a
    child's CPU must not vanish from the tree's sum when it exits."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # 16 and 17
    return ticks / TICK


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def tree(pid: int) -> list[int]:
    """pid and every descendant now."""
    children = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_seconds(pid: int) -> float:
    """CPU seconds of a process tree, children that exited included (the sum only grows)."""
    return sum(process_seconds(p, reaped=True) for p in tree(pid))


def _listen_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(parts[9])
    return inodes


def listener(port: int) -> int | None:
    """The pid of the process listening on a local TCP port (the lowest, if several)."""
    wanted = {f"socket:[{i}]" for i in _listen_inodes(port)}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    found.append(int(entry.name))
                    break
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return min(found) if found else None


class Services:
    """The broker, Redis and PostgreSQL serving this bench (by port)."""

    def __init__(self, *, kafka_port: int, redis_port: int, postgres_port: int):
        self.kafka = listener(kafka_port)
        self.redis = listener(redis_port)
        self.postgres = listener(postgres_port)

    def sample(self, *, exclude: Iterable[int] = ()) -> dict[str, float]:
        """CPU seconds so far: broker, Redis, PostgreSQL's shared processes (not its client
        backends, which belong to whoever connected; `exclude` drops some more pids)."""
        skip = set(exclude)
        out = {"kafka": tree_seconds(self.kafka) if self.kafka else 0.0}
        out["redis"] = tree_seconds(self.redis) if self.redis else 0.0
        shared = 0.0
        if self.postgres:
            shared = process_seconds(self.postgres)
            for pid in _children().get(self.postgres, []):
                if pid in skip:
                    continue
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except FileNotFoundError:
                    continue
                # client backends read "postgres: user db host(port) STATE"; the shared ones
                # "postgres: walwriter", "postgres: checkpointer", ...
                if b"(" not in cmd:
                    shared += process_seconds(pid)
        out["postgres_shared"] = shared
        return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds between two samples, never below 0: a PostgreSQL shared process (an
    autovacuum worker) that exits between them takes its seconds out of the second sample,
    so that figure is then a floor (seen: postgres_shared below 0 on a loaded machine)."""
    return {k: round(max(0.0, after[k] - before[k]), 3) for k in after}


class PrivateRedis:
    """A redis-server of the bench's own (same binary and persistence flags as bin/services:
    AOF every second, no RDB), so its CPU is the measured runs' alone: the machine's shared
    Redis also serves every other test run, whose SCANs and UNLINKs would be counted and
    would stall the runs."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            raise RuntimeError("redis-server is not installed")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.dir = tempfile.TemporaryDirectory(prefix="kc-bench-redis-")
        self.proc = subprocess.Popen(
            [
                *(exe, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir.name),
                *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the bench's redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def settle(self, timeout_s: float = 300) -> None:
        """Wait until no AOF rewrite or save runs or is scheduled: the fork that rewrites the
        AOF after a run's writes would otherwise burn a core during the next run (and be
        counted as that run's Redis CPU)."""
        client = redis.Redis(host="127.0.0.1", port=self.port)
        busy = ("aof_rewrite_in_progress", "aof_rewrite_scheduled", "rdb_bgsave_in_progress")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if not any(int(info.get(name, 0)) for name in busy):
                return
            time.sleep(0.1)

    def rewrite(self, timeout_s: float = 300) -> None:
        """Rewrite the AOF now and wait for it: every run then starts from a compact AOF, so
        the rewrite its own writes trigger (auto-aof-rewrite-percentage) falls in each run
        alike, not in whichever run the earlier runs' writes happened to push past the threshold."""
        self.settle(timeout_s)
        redis.Redis(host="127.0.0.1", port=self.port).bgrewriteaof()
        self.settle(timeout_s)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
        self.dir.cleanup()
