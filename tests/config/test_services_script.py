"""`bin/services` from a checkout inside a directory of mode 700 (root's home, a
`mktemp -d` folder): PostgreSQL runs as the `postgres` user when we are root, which
cannot enter such a directory, so its data must live where that user can reach."""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_checkout():
    """bin/ of this checkout copied into <mode 700 dir>/clone, with a PG_DATA_ROOT of its own."""
    home = Path(tempfile.mkdtemp(prefix="kc-home-"))
    os.chmod(home, 0o700)
    clone = home / "clone"
    shutil.copytree(ROOT / "bin", clone / "bin")
    data_root = Path(tempfile.mkdtemp(prefix="kc-pgroot-"))
    os.chmod(data_root, 0o755)  # noqa: S103 - where the postgres user keeps the relocated cluster
    env = {
        **os.environ,
        "PG_PORT": str(_free_port()),
        "REDIS_PORT": str(_free_port()),
        "PG_DATA_ROOT": str(data_root),
    }
    env.pop("VAR_DIR", None)
    try:
        yield clone, env, data_root
    finally:
        for action in ("postgres-down", "redis-down"):
            subprocess.run([clone / "bin" / "services", action], env=env, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(data_root, ignore_errors=True)


def test_services_start_from_a_checkout_in_a_private_directory(private_checkout):
    clone, env, data_root = private_checkout
    said = {}
    for action in ("postgres-up", "redis-up"):
        services = [clone / "bin" / "services", action]
        done = subprocess.run(services, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        said[action] = done.stderr

    with psycopg.connect(
        host="127.0.0.1", port=env["PG_PORT"], user="kafkacache", password="kafkacache", dbname="kafkacache"
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert redis.Redis(port=int(env["REDIS_PORT"])).ping()

    location = clone / "var" / "postgres.location"
    if os.geteuid() == 0:  # PostgreSQL runs as `postgres`: its cluster moved where that user can enter
        moved = Path(location.read_text().strip())
        assert moved.parent == data_root and (moved / "data" / "PG_VERSION").exists()
        assert f"postgres data in {moved}: the postgres user cannot enter" in said["postgres-up"]
    else:  # PostgreSQL runs as us: the data stays in the checkout
        assert not location.exists() and (clone / "var" / "postgres" / "data" / "PG_VERSION").exists()

    status = subprocess.run([clone / "bin" / "services", "status"], env=env, capture_output=True, text=True)
    assert f"postgres  up    127.0.0.1:{env['PG_PORT']} started here" in status.stdout
    down = subprocess.run([clone / "bin" / "services", "postgres-down"], env=env, capture_output=True, text=True)
    assert down.returncode == 0 and "stopping postgres" in down.stderr
