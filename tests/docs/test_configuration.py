"""docs/configuration.md, .env.example and the code agree: every setting the code reads is
documented (with a meaning), and every documented setting is read.

The register (config.env.SETTINGS) is filled as the settings are read, so it is the list
the code reads; the page is written from it (`make docs`). These tests also look at the
code itself for a read that bypasses the register."""

import re
import subprocess
import sys

import pytest

from tests.docs.doc_names import PACKAGES, ROOT

# Reads of the environment in the project's code that are not settings, and why.
NOT_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "Django's own: which settings module to load (manage.py, wsgi, celery)",
}
READ = (
    r"(?:os\.environ\.get\(|os\.getenv\(|\benv\.get\(|env_declared\(\s*env,)\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
    r"os\.environ\[\s*[\"']([A-Z][A-Z0-9_]*)[\"']\s*\]",
    r"\benv_(?:str|int|bool|list|int_map|choice_map|pair|networks|json_object|declare|retired)\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
    r"\bdatabase_from_url\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
)


def _live(register: dict) -> dict[str, dict]:
    return {s["name"]: s for s in register["settings"] if not s["retired"]}


def _env_example() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), re.M)
    return dict(pairs)


def test_the_configuration_page_is_written_from_the_code():
    out = subprocess.run(
        [sys.executable, "scripts/docs_generate.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


def test_every_setting_says_what_it_does(register):
    assert len(_live(register)) > 100  # the register is filled (the settings were read through config.env)
    undocumented = [s["name"] for s in register["settings"] if not s["doc"].strip()]
    assert undocumented == [], f"give these a doc= where they are read: {undocumented}"


def test_env_example_lists_exactly_the_settings_with_their_defaults(register):
    live, example = _live(register), _env_example()
    assert sorted(set(live) - set(example)) == [], "read by the code, missing from .env.example"
    assert sorted(set(example) - set(live)) == [], "in .env.example, not read by the code"
    # A default that follows from other settings (doc_default) may be left empty or shown as at the defaults.
    wrong = {
        name: (value, live[name]["default"])
        for name, value in example.items()
        if not live[name]["doc_default"] and value != live[name]["default"]
    }
    assert wrong == {}, "(.env.example, the code's default)"


def _python_reads() -> dict[str, set[str]]:
    """{name: files} of every environment read written in the project's code (tests and tools aside)."""
    found: dict[str, set[str]] = {}
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")] + [ROOT / "manage.py"]
    for path in files:
        if "migrations" in path.parts or path.name == "settings_test.py":
            continue
        text = path.read_text()
        for pattern in READ:
            for name in re.findall(pattern, text):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_read_of_the_environment_is_a_registered_setting(register):
    """A read that bypasses config.env (or sits in a module `make docs` does not load) is caught here."""
    reads = _python_reads()
    assert {"DJANGO_DEBUG", "AUTH_LDAP_SERVER_URI", "WEB_BIND"} <= set(reads)  # the scan sees the three readers
    names = {s["name"] for s in register["settings"]}
    unregistered = {name: sorted(files) for name, files in reads.items() if name not in names | set(NOT_SETTINGS)}
    assert unregistered == {}, "read from the environment but not in config.env's register"


@pytest.mark.parametrize("path", ["bin/prod", "deploy/systemd/kafkacache-worker@.service"])
def test_what_the_production_layout_reads_is_documented(register, path):
    """The production layout's own reads are declared settings; each declared one is still read there."""
    text = (ROOT / path).read_text()
    reads = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    declared = {s["name"] for s in register["settings"] if s["read_by"] == path}
    assert declared, f"nothing declared as read by {path}"
    assert sorted(declared - reads) == [], f"declared as read by {path}, which no longer reads them"
    page = (ROOT / "docs" / "configuration.md").read_text()
    undocumented = sorted(name for name in reads if f"`{name}`" not in page)
    assert undocumented == [], f"{path} reads these; docs/configuration.md does not name them"
