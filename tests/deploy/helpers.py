"""Helpers of the deployment tests: free ports, private Redis, generated secrets, bounded waits."""

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[2]


def services_run(action: str, mode: str, *, var_dir: Path, env: dict[str, str]) -> None:
    """`bin/services <action> --<mode>` for a harness; a failure is raised with the script's
    stderr and the tail of each node's redis.log under var_dir/<mode>/ (why it did not start)."""
    done = subprocess.run(
        [str(ROOT / "bin" / "services"), action, f"--{mode}"],
        env={**os.environ, "VAR_DIR": str(var_dir), **env},
        timeout=120,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        logs = " | ".join(
            f"{log.parent.name}: {log.read_text(errors='replace')[-400:]}"
            for log in sorted((var_dir / mode).glob("*/redis.log"))
        )
        raise RuntimeError(f"bin/services {action} --{mode} failed: {done.stderr[-1500:]} logs: {logs}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def production_secrets() -> dict[str, str]:
    """Fresh, non-default secrets: production refuses the development defaults."""

    def key() -> str:
        return base64.b64encode(os.urandom(32)).decode()

    seal_seed = os.urandom(32)  # Ed25519: producers sign with the seed, everyone verifies with its public key
    seal_public = Ed25519PrivateKey.from_private_bytes(seal_seed).public_key().public_bytes_raw()
    return {
        "DJANGO_SECRET_KEY": base64.urlsafe_b64encode(os.urandom(48)).decode(),
        "FIELD_ENCRYPTION_KEYS": f"prod1:{key()}",
        "AUDIT_ENCRYPTION_KEYS": f"audit-prod1:{key()}",
        "SEAL_SIGNING_KEYS": f"seal-prod1:{base64.b64encode(seal_seed).decode()}",
        "SEAL_VERIFY_KEYS": f"seal-prod1:{base64.b64encode(seal_public).decode()}",
        "METRICS_TOKEN": base64.urlsafe_b64encode(os.urandom(24)).decode(),
    }


def stop_group(proc: subprocess.Popen, *, grace: float = 45) -> None:
    """SIGTERM the process group the test started, SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


class PrivateRedis:
    """A throwaway redis-server on a free loopback port, with optional extra arguments (TLS, ACL)."""

    def __init__(self, directory: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        directory.mkdir(parents=True, exist_ok=True)
        argv = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(directory)]
        if "--port" not in args:
            argv += ["--port", str(self.port)]
        self.proc = subprocess.Popen([*argv, *args], stdout=subprocess.DEVNULL, start_new_session=True)
        self.listen_port = int(args[args.index("--tls-port") + 1]) if "--tls-port" in args else self.port
        wait_for(lambda: port_open(self.listen_port) or self.proc.poll() is not None, timeout=10, what="redis")
        assert self.proc.poll() is None, "redis-server exited at start"

    def stop(self) -> None:
        stop_group(self.proc, grace=10)
