#!/usr/bin/env python
"""Write the docs that are drawn from the code, so they cannot drift from it:

- docs/configuration.md: every setting the code reads, from the register config.env
  fills as config/settings.py, config/directory.py and config/gunicorn.conf.py read
  them, plus the variables the shell scripts read for themselves;
- the generated blocks of docs/*.md (between `<!-- generated: NAME -->` and
  `<!-- end generated -->`): the finding states of recon.models and the transitions
  of recon.services.finding_lifecycle.

    .venv/bin/python scripts/docs_generate.py           # write them (`make docs`)
    .venv/bin/python scripts/docs_generate.py --check   # exit 1 naming what is stale
    .venv/bin/python scripts/docs_generate.py --settings-json   # the register (tests/docs)

It runs with an empty environment (the development keys allowed, so the settings
load): the defaults written are the code's, whatever the caller's shell holds.
"""

import json
import os
import re
import runpy
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
SHELL_SCRIPTS = ("bin/*", "bin/lib/*.sh")
# `${NAME:-default}` (or `${NAME-default}`): a shell script reading NAME from its environment.
SHELL_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]*):?-((?:[^{}]|\$\{[^}]*\})*)\}")
BLOCK = re.compile(r"(<!-- generated: ([a-z-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def environment_clear() -> None:
    """Nothing from the caller's shell: the register records the defaults the code gives."""
    os.environ.clear()
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings", KAFKACACHE_ALLOW_DEV_SECRETS="1", LOG_LEVEL="WARNING")
    sys.path.insert(0, str(ROOT))


def settings_load() -> list:
    """Django set up (config.settings read), then gunicorn's config file: the register, in reading order."""
    # Django is set up only after environment_clear() has emptied the environment.
    import django

    django.setup()
    runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    # Imported after django.setup() and gunicorn's file: both add settings to the register.
    from config.env import SETTINGS

    return list(SETTINGS.values())


def area_order() -> list[str]:
    # config/ is importable once environment_clear() has put the repository on sys.path.
    from config.env import AREAS, SETTINGS

    return [*AREAS, *dict.fromkeys(s.area for s in SETTINGS.values() if s.area not in AREAS)]


def shell_reads() -> dict[str, dict[str, str]]:
    """{name: {script: default as written}} for every `${NAME:-default}` in bin/ and bin/lib/."""
    found: dict[str, dict[str, str]] = {}
    for pattern in SHELL_SCRIPTS:
        for path in sorted(ROOT.glob(pattern)):
            if not path.is_file():
                continue
            for name, default in SHELL_READ.findall(path.read_text()):
                found.setdefault(name, {}).setdefault(str(path.relative_to(ROOT)), default)
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else "empty"


def configuration_render(settings: list) -> str:
    live = [s for s in settings if not s.retired]
    lines = [
        "# Configuration",
        "",
        "Every setting comes from the environment; `.env.example` lists them with their",
        "defaults. A malformed value stops the process at start-up, naming the variable.",
        "",
        "This page is written from the code by `make docs` (`scripts/docs_generate.py`): each",
        "setting is registered where it is read (`config/env.py`, called by `config/settings.py`,",
        "`config/directory.py` and `config/gunicorn.conf.py`), and `tests/docs` fails when this",
        "page, `.env.example` and the code disagree.",
    ]
    for area in area_order():
        rows = [s for s in live if s.area == area]
        if not rows:
            continue
        lines += ["", f"## {area}", "", "| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
        for s in rows:
            default = _cell(s.doc_default) if s.doc_default else _code(s.default)
            lines.append(f"| `{s.name}` | {_cell(s.kind)} | {default} | {_cell(s.doc)} |")
    retired = [s for s in settings if s.retired]
    if retired:
        lines += [
            "",
            "## No longer read",
            "",
            "Setting one of these stops the process at start-up, saying what replaced it.",
            "",
            "| variable | instead |",
            "| --- | --- |",
        ]
        lines += [f"| `{s.name}` | {_cell(s.retired)} |" for s in retired]
    names = {s.name for s in settings}
    scripts = {name: where for name, where in shell_reads().items() if name not in names}
    lines += [
        "",
        "## Read by the scripts",
        "",
        "The development and production scripts read these for themselves (the local",
        "services `bin/services` starts, `bin/run`, `bin/prod`); the application does not.",
        "",
        "| variable | default | read by |",
        "| --- | --- | --- |",
    ]
    for name in sorted(scripts):
        where = scripts[name]
        defaults = dict.fromkeys(where.values())
        lines.append(
            f"| `{name}` | {', '.join(_code(d) for d in defaults)} | {', '.join(f'`{p}`' for p in sorted(where))} |"
        )
    return "\n".join(lines) + "\n"


def finding_states_render() -> str:
    """The states of recon.models.Finding.Status and the transitions of
    recon.services.finding_lifecycle.TRANSITIONS (imported here: Django is set up first)."""
    from recon.models import Finding
    from recon.services import finding_lifecycle
    from recon.services.finding_lifecycle import TRANSITIONS

    lines = [
        "| state | shown as | unresolved (ages, counts against the SLA) | standing (a check updates it) |",
        "| --- | --- | --- | --- |",
    ]
    for status in Finding.Status:
        unresolved = "yes" if status in Finding.UNRESOLVED else ""
        standing = "yes" if status in Finding.STANDING else ""
        lines.append(f"| `{status.value}` | {status.label} | {unresolved} | {standing} |")
    lines += ["", "| action | from | to | made by |", "| --- | --- | --- | --- |"]
    for action, (sources, to) in TRANSITIONS.items():
        person = hasattr(finding_lifecycle, f"finding_{action}")
        where = "recon.services.finding_lifecycle"
        by = f"a person: `{where}.finding_{action}`" if person else f"a check: `{where}`"
        lines.append(f"| {action} | {', '.join(f'`{s}`' for s in sources)} | `{to}` | {by} |")
    return "\n".join(lines) + "\n"


BLOCKS = {"finding-states": finding_states_render}


def outputs(settings: list) -> dict[Path, str]:
    """Every generated file, as it should read."""
    out = {CONFIGURATION: configuration_render(settings)}
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        if BLOCK.search(text):
            out[path] = BLOCK.sub(lambda m: m.group(1) + BLOCKS[m.group(2)]() + m.group(4), text)
    return out


def main(argv: list[str]) -> int:
    environment_clear()
    settings = settings_load()
    if "--settings-json" in argv:
        json.dump({"settings": [asdict(s) for s in settings], "areas": area_order()}, sys.stdout, indent=1)
        return 0
    stale = []
    for path, text in outputs(settings).items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        stale.append(str(path.relative_to(ROOT)))
        if "--check" not in argv:
            path.write_text(text)
    if "--check" in argv and stale:
        print(f"stale: {', '.join(stale)}; run `make docs`", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
