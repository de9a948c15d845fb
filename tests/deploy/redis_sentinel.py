"""Redis Sentinel of our own (a master, a replica, 3 sentinels; `bin/services up --redis-sentinel`) for tests."""

import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .helpers import port_open, services_run

MASTER_NAME = "kc-cache"


def _ports(count: int = 5) -> list[int]:
    """Free ports below Linux's ephemeral range (see redis_cluster._cluster_ports)."""
    ports: list[int] = []
    candidate = 22000 + secrets.randbelow(9000)
    while len(ports) < count:
        candidate += 1
        if not port_open(candidate):
            ports.append(candidate)
    return ports


@dataclass
class RedisSentinelServices:
    var_dir: Path
    ports: list[int] = field(default_factory=_ports)  # master, replica, then three sentinels

    @classmethod
    def create(cls) -> "RedisSentinelServices":
        return cls(var_dir=Path(tempfile.mkdtemp(prefix="kc-rsentinel-")))

    def services(self, action: str) -> None:
        ports = " ".join(map(str, self.ports))
        services_run(
            action,
            "redis-sentinel",
            var_dir=self.var_dir,
            env={"REDIS_SENTINEL_PORTS": ports, "REDIS_SENTINEL_MASTER": MASTER_NAME},
        )

    def up(self) -> None:
        self.services("up")
        deadline = time.monotonic() + 30
        while not self._settled():
            if time.monotonic() > deadline:
                raise TimeoutError("sentinel layout not settled")
            time.sleep(0.2)

    def _settled(self) -> bool:
        """Every sentinel names the master and sees its replica and the other sentinels;
        the replica's link is up."""
        try:
            for port in self.sentinels():
                node = self.node(port)
                info = node.sentinel_master(MASTER_NAME)
                if int(info["num-slaves"]) < 1 or int(info["num-other-sentinels"]) < 2:
                    return False
            replica = self.replica()
            return replica is not None and self.node(replica).info("replication")["master_link_status"] == "up"
        except (redis.RedisError, KeyError):
            return False

    def down(self) -> None:
        try:
            self.services("down")
        finally:
            shutil.rmtree(self.var_dir, ignore_errors=True)

    def sentinels(self) -> list[int]:
        return self.ports[2:]

    def seeds(self) -> list[str]:
        """REDIS_SENTINELS for the product."""
        return [f"127.0.0.1:{port}" for port in self.sentinels()]

    def node(self, port: int, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=5)

    def master(self) -> int:
        """The master's port, as the first sentinel that answers names it."""
        for port in self.sentinels():
            try:
                return int(self.node(port).sentinel_get_master_addr_by_name(MASTER_NAME)[1])
            except redis.RedisError:
                continue
        raise ConnectionError("no sentinel answers")

    def replica(self) -> int | None:
        master = self.master()
        return next((port for port in self.ports[:2] if port != master), None)

    def pid(self, port: int) -> int:
        return int((self.var_dir / "redis-sentinel" / str(port) / "redis.pid").read_text())

    def kill_master(self, *, timeout: float = 60) -> int:
        """SIGKILL the master; answer the port the sentinels promoted."""
        old = self.master()
        os.kill(self.pid(old), signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if (now := self.master()) != old:
                    return now
            except ConnectionError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the sentinels did not promote a replica of {old}")
