"""Tasks are queued by name (core.jobs.job_enqueue, jobs_resume) and sent by beat by
name: every such name is a registered task and lands on a queue a worker serves. Nothing
else checks a name before a worker would drop its message as unregistered."""

import ast
import importlib
from pathlib import Path

from django.conf import settings

from config.celery import QUEUES, app

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "core", "recon", "kafkacache", "replay", "monitoring", "dashboard")


def _queued_names() -> list[tuple[str, str]]:
    """(where, name) of every task name the code passes to job_enqueue or jobs_resume."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            calls = [
                node
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("job_enqueue", "jobs_resume")
            ]
            if not calls:
                continue
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            for call in calls:
                if call.func.id == "job_enqueue":
                    expression = call.args[0]
                else:
                    expression = next(k.value for k in call.keywords if k.arg == "task")
                # The name as the module holds it: a constant beside the service, or the service's.
                name = eval(compile(ast.Expression(expression), str(path), "eval"), vars(module))  # noqa: S307
                found.append((f"{path.relative_to(ROOT)}:{call.lineno}", name))
    return found


def test_every_task_queued_by_name_or_sent_by_beat_is_registered_and_routed():
    queued = _queued_names()
    # Every app that queues work by name was read (the check cannot pass on nothing).
    assert {where.split("/")[0] for where, _ in queued} >= {"kafkacache", "recon", "replay"}
    beat = [(f"beat {entry}", spec["task"]) for entry, spec in settings.CELERY_BEAT_SCHEDULE.items()]
    app.loader.import_default_modules()  # the tasks modules, as a worker loads them
    unknown = [(where, name) for where, name in queued + beat if name not in app.tasks]
    assert unknown == []
    unserved = [
        (where, name) for where, name in queued + beat if app.amqp.router.route({}, name)["queue"].name not in QUEUES
    ]
    assert unserved == []
