"""The secured services of `bin/services up --secure`, started on free loopback ports for a test."""

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .helpers import ROOT, free_port, production_secrets


def env_file(path: Path) -> dict[str, str]:
    """KEY='value' lines (as bin/services writes them) into a dict."""
    out = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key] = value[1:-1] if value[:1] == "'" and value[-1:] == "'" else value
    return out


@dataclass
class SecureServices:
    var_dir: Path
    ports: dict[str, int] = field(
        default_factory=lambda: {
            name: free_port()
            for name in (
                "SECURE_KAFKA_PORT",
                "SECURE_KAFKA_MTLS_PORT",
                "SECURE_KAFKA_CONTROLLER_PORT",
                "SECURE_REDIS_PORT",
                "SECURE_PG_PORT",
            )
        }
    )

    @classmethod
    def create(cls) -> "SecureServices":
        var_dir = Path(tempfile.mkdtemp(prefix="kc-secure-"))
        os.chmod(var_dir, 0o755)  # noqa: S103 - PostgreSQL runs as `postgres` when we are root
        shared = ROOT / "var" / "kafka" / "classpath.txt"
        if shared.exists():  # the resolved jar list: spares a Maven run
            (var_dir / "kafka").mkdir(parents=True)
            shutil.copy(shared, var_dir / "kafka" / "classpath.txt")
        return cls(var_dir=var_dir)

    @property
    def secure_dir(self) -> Path:
        return self.var_dir / "secure"

    @property
    def tls(self) -> Path:
        return self.secure_dir / "tls"

    def services(self, action: str) -> None:
        env = {**os.environ, "VAR_DIR": str(self.var_dir), "KAFKA_HEAP": "384m", **map_str(self.ports)}
        subprocess.run([str(ROOT / "bin" / "services"), action, "--secure"], env=env, check=True, timeout=180)

    def product_env(self) -> dict[str, str]:
        return env_file(self.secure_dir / "product.env")

    def secrets(self) -> dict[str, str]:
        return env_file(self.secure_dir / "secrets.env")

    def down(self) -> None:
        try:
            self.services("down")
        finally:
            shutil.rmtree(self.var_dir, ignore_errors=True)


def map_str(values: dict[str, int]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def child_env(overrides: dict[str, str]) -> dict[str, str]:
    """A product process's environment: production settings, fresh secrets, the overrides."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST", "KAFKA_", "REDIS_"))}
    base.pop("DATABASE_URL", None)
    base.pop("CELERY_BROKER_URL", None)
    return {**base, **production_secrets(), "DJANGO_SETTINGS_MODULE": "config.settings", **overrides}


def manage(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_stranger_ca(directory: Path) -> Path:
    """A CA nobody trusts: certificates the services present do not chain to it."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl(
        directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=stranger CA",
        "-keyout", "stranger.key", "-out", "stranger.pem",
    )  # fmt: skip
    return directory / "stranger.pem"


def make_expired_cert(tls: Path, directory: Path) -> tuple[Path, Path]:
    """A server certificate for localhost, signed by the services' own CA, that expired in 2020."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("1000\n")
    (directory / "ext").write_text("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (directory / "ca.cnf").write_text(
        "[ca]\ndefault_ca=d\n[d]\ndir=.\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n"
        f"certificate={tls / 'ca.pem'}\nprivate_key={tls / 'ca.key'}\ndefault_md=sha256\npolicy=p\n"
        "[p]\ncommonName=supplied\n"
    )
    openssl(directory, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "expired.key",
            "-out", "expired.csr")  # fmt: skip
    openssl(
        directory, "ca", "-batch", "-config", "ca.cnf", "-in", "expired.csr", "-out", "expired.pem",
        "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extfile", "ext",
    )  # fmt: skip
    return directory / "expired.pem", directory / "expired.key"
