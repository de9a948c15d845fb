"""Celery tasks, called directly (thin: ids in, a service does the work)."""

import datetime as dt
import uuid

import pytest
from django.conf import settings
from django.utils import timezone

from recon import tasks
from recon.models import AuditPayload, ReconRun, Window
from recon.services.audit import payloads_record
from tests.recon.helpers import scenario_write, topic_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_beat_schedules_the_recon_tasks():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "recon.tasks.windows_reconcile_due",
        "recon.tasks.partitions_maintain",
        "recon.tasks.audit_purge",
    } <= scheduled


def test_due_windows_task_reconciles_closed_windows():
    topic = topic_make("task-due", window_seconds=60, grace_seconds=0)
    scenario_write(topic, n=10, missing=1, at=timezone.now() - dt.timedelta(minutes=10))
    assert tasks.windows_reconcile_due() == 1
    assert Window.objects.get(topic=topic).status == Window.Status.DISCREPANT
    assert tasks.windows_reconcile_due() == 0  # nothing due any more


def test_purge_and_cache_tasks():
    topic = topic_make("task-misc", method_audit=True, audit_retention_days=1)
    payloads_record(topic=topic, side="published", items=[(uuid.uuid4(), b"x", timezone.now())])
    AuditPayload.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.audit_purge() == 1
    start = timezone.now() - dt.timedelta(hours=1)
    run_id = tasks.cache_check_task(topic.pk, start=start.isoformat(), end=timezone.now().isoformat())
    run = ReconRun.objects.get(pk=run_id)
    assert run.kind == "cache" and run.status == "done" and run.report["checked"] == 0
