"""bin/audit: with the vulnerability database out of reach it says plainly that nothing
was checked and does not fail the build (a real run of the script, network cut by a
proxy that does not exist)."""

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_audit_says_it_could_not_run_offline_and_does_not_fail():
    env = dict(os.environ, HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="")
    result = subprocess.run(["bin/audit"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ("requirements.txt", "requirements-dev.txt"):
        assert f"[audit] {name}: DEPENDENCY AUDIT COULD NOT RUN" in result.stderr
    assert "Nothing was checked." in result.stderr


def test_the_audit_on_this_network_says_plainly_what_it_checked():
    """Here PyPI's package index answers but its vulnerability data does not: pip-audit
    "succeeds" with every package skipped, which must not read as a clean audit."""
    result = subprocess.run(["bin/audit"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    honest = (
        r"DEPENDENCY AUDIT COULD NOT RUN .*Nothing was checked\.",  # nothing looked up (this network)
        r"no known vulnerabilities in \d+ packages; \d+ could not be looked up \(not checked\)",
        r"no known vulnerabilities \(\d+ packages\)",  # every package looked up
    )
    for name in ("requirements.txt", "requirements-dev.txt"):
        assert any(re.search(rf"\[audit\] {re.escape(name)}: {form}", out) for form in honest), out


def test_both_locks_pin_every_package_with_a_hash_and_bootstrap_requires_them():
    for name in ("requirements.txt", "requirements-dev.txt"):
        lines = (ROOT / name).read_text().splitlines()
        pins = [line for line in lines if line and not line.startswith(("#", " "))]
        assert pins and all("==" in line and line.endswith("\\") for line in pins), name
        assert sum("--hash=sha256:" in line for line in lines) >= len(pins)
    runtime = (ROOT / "requirements.txt").read_text()
    assert "pytest==" not in runtime and "ruff==" not in runtime  # development only
    assert "--require-hashes -r requirements.txt -r requirements-dev.txt" in (ROOT / "bin/bootstrap").read_text()


def test_every_extra_a_locked_package_asks_for_is_on_its_pin():
    """pip before 23.3 (Debian's venv brings 23.2) resolves `name[extra]` apart from
    `name==version`: a newer release of `name` on PyPI then fails a fresh install under
    --require-hashes. Read from what is installed: each locked package's requirements."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned: dict[str, set[str]] = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            if line and not line.startswith(("#", " ")):
                req = Requirement(line.split()[0])
                pinned[canonicalize_name(req.name)] = set(req.extras)
    missing = []
    for package in pinned:
        for raw in metadata.distribution(package).requires or []:
            req = Requirement(raw)
            name = canonicalize_name(req.name)
            if req.extras and name in pinned and (req.marker is None or req.marker.evaluate({"extra": ""})):
                missing += [f"{name}[{extra}] (asked by {package})" for extra in req.extras - pinned[name]]
    assert not missing, missing
