"""A Redis Cluster of our own (3 masters, 3 replicas; `bin/services up --redis-cluster`) for tests.

The harness for running the cache on Redis Cluster: start it on free loopback ports,
a cluster client, the slot and master of a key, and the two fail-overs a test needs
(a replica promoted cleanly with CLUSTER FAILOVER, or a master SIGKILLed so that its
replica takes over after cluster-node-timeout and asynchronous replication may drop
the last writes).
"""

import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from .helpers import port_open, services_run


def _cluster_ports(count: int = 6) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free and valid too, both below
    Linux's ephemeral range (32768 on): a port an outgoing connection of this process
    happens to hold is not listening, looks free, and then cannot be bound."""
    ports: list[int] = []
    candidate = 11000 + secrets.randbelow(11000)
    while len(ports) < count:
        candidate += 1
        if not port_open(candidate) and not port_open(candidate + 10000):
            ports.append(candidate)
    return ports


@dataclass
class RedisClusterServices:
    var_dir: Path
    ports: list[int] = field(default_factory=_cluster_ports)

    @classmethod
    def create(cls) -> "RedisClusterServices":
        return cls(var_dir=Path(tempfile.mkdtemp(prefix="kc-rcluster-")))

    def services(self, action: str) -> None:
        services_run(
            action, "redis-cluster", var_dir=self.var_dir, env={"REDIS_CLUSTER_PORTS": " ".join(map(str, self.ports))}
        )

    def up(self) -> None:
        self.services("up")
        # The replicas' roles reach every node's view by gossip, shortly after `create` returns.
        deadline = time.monotonic() + 30
        while not (len(m := self.masters()) == 3 and all(len(r) == 1 for r in m.values()) and self._synced(m)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster layout not settled: {m}")
            time.sleep(0.2)

    def _synced(self, masters: dict[int, list[int]]) -> bool:
        """Every replica's link to its master is up (its first full sync is done)."""
        return all(
            self.node(replica).info("replication").get("master_link_status") == "up"
            for replicas in masters.values()
            for replica in replicas
        )

    def down(self) -> None:
        try:
            self.services("down")
        finally:
            shutil.rmtree(self.var_dir, ignore_errors=True)

    def revive(self) -> None:
        """Start the nodes that are down again (a killed master rejoins as a replica of the
        node that took its slots) and wait for 3 masters with a synced replica each."""
        self.up()

    def seeds(self) -> list[str]:
        """REDIS_CLUSTER_NODES for the product (every node: any may be the one that is down)."""
        return [f"127.0.0.1:{port}" for port in self.ports]

    def clear(self) -> None:
        """Drop every kc:* key on every master (one DEL per key: a DEL of many must stay in one slot)."""
        for port in self.masters():
            node = self.node(port)
            pipe = node.pipeline(transaction=False)
            for name in node.scan_iter("kc:*", count=1000):
                pipe.delete(name)
            pipe.execute()

    def client(self) -> ClusterClient:
        return ClusterClient(host="127.0.0.1", port=self.ports[0], socket_timeout=5)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def masters(self) -> dict[int, list[int]]:
        """{master port: [its replicas' ports]}."""
        out: dict[int, list[int]] = {}
        replicas: dict[str, list[int]] = {}
        ids = {}
        for line in self._answering().execute_command("CLUSTER", "NODES").decode().splitlines():
            node_id, addr, flags, master_id = line.split()[:4]
            port = int(addr.split("@")[0].rsplit(":", 1)[1])
            ids[node_id] = port
            if "master" in flags and "fail" not in flags:
                out.setdefault(port, [])
            elif "slave" in flags:
                replicas.setdefault(master_id, []).append(port)
        for master_id, ports in replicas.items():
            if master_id in ids and ids[master_id] in out:
                out[ids[master_id]] = ports
        return out

    def _answering(self) -> redis.Redis:
        """A node that answers (one may be killed or stopped by the test)."""
        for port in self.ports:
            node = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
            try:
                node.ping()
            except redis.RedisError:
                continue
            return node
        raise ConnectionError("no cluster node answers")

    def kill_master_while_replica_lags(self, port: int, *, lag: float) -> int:
        """Cut the master's replication link for `lag` seconds of writes (the replica stopped
        with SIGSTOP so it cannot reconnect, its connection closed on the master), then
        SIGKILL the master and let the replica go on: it takes the slots over without those
        writes (what asynchronous replication drops, made certain). Answers the promoted port."""
        replica = self.masters()[port][0]
        os.kill(self.pid(replica), signal.SIGSTOP)
        try:
            self.node(port).execute_command("CLIENT", "KILL", "TYPE", "replica")
            time.sleep(lag)
            os.kill(self.pid(port), signal.SIGKILL)
        finally:
            os.kill(self.pid(replica), signal.SIGCONT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.node(replica).execute_command("ROLE")[0] == b"master":
                    return replica
            except redis.RedisError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{replica} did not take over from {port}")

    def master_of(self, key: str) -> int:
        slot = key_slot(key.encode())  # computed here: a cluster client per call costs a full slot-map fetch
        for entry in self._answering().execute_command("CLUSTER", "SLOTS"):
            start, end, master = entry[0], entry[1], entry[2]
            if start <= slot <= end:
                return int(master[1])
        raise LookupError(slot)

    def pid(self, port: int) -> int:
        return int((self.var_dir / "redis-cluster" / str(port) / "redis.pid").read_text())

    def kill_master(self, port: int, *, timeout: float = 30) -> int:
        """SIGKILL a master; answer the replica port that took its slots over."""
        replicas = self.masters()[port]
        os.kill(self.pid(port), signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for replica in replicas:
                try:
                    role = self.node(replica).execute_command("ROLE")[0]
                except redis.RedisError:
                    continue
                if role == b"master":
                    return replica
            time.sleep(0.2)
        raise TimeoutError(f"no replica of {port} took over")

    def failover(self, replica: int) -> None:
        """A clean, acknowledged fail-over: the replica catches up, then takes the slots."""
        self.node(replica).execute_command("CLUSTER", "FAILOVER")
        deadline = time.monotonic() + 20
        while self.node(replica).execute_command("ROLE")[0] != b"master":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{replica} did not become master")
            time.sleep(0.1)
