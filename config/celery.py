import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("kafkacache")
app.config_from_object("django.conf:settings", namespace="CELERY")

# One queue per kind of work, each served by its own worker pool in production
# (docs/deploy.md), so a long reconcile or bulk load never holds a slot the consume
# loop needs. A development worker (`make run`, tests) subscribes to all of them.
QUEUE_CONSUME = "consume"
QUEUE_LOADS = "loads"
QUEUE_RECONCILE = "reconcile"
QUEUE_ALERTS = "alerts"
QUEUES = (QUEUE_CONSUME, QUEUE_LOADS, QUEUE_RECONCILE, QUEUE_ALERTS)
TASK_ROUTES = {
    "kafkacache.tasks.consume_task": QUEUE_CONSUME,
    "kafkacache.tasks.leaders_watch_task": QUEUE_ALERTS,  # a metadata look, like the alert checks
    # Publishing: bulk loads, their resume, and the change feed (ODS -> change topic).
    "kafkacache.tasks.load_run_task": QUEUE_LOADS,
    "kafkacache.tasks.load_part_run_task": QUEUE_LOADS,
    "kafkacache.tasks.loads_resume_task": QUEUE_LOADS,
    "kafkacache.tasks.change_feed_task": QUEUE_LOADS,
    # Reconciliation and the checks and replays that follow from it.
    "recon.tasks.*": QUEUE_RECONCILE,
    "monitoring.tasks.*": QUEUE_ALERTS,
    "dashboard.tasks.*": QUEUE_ALERTS,  # the directory check: a few lookups, like the alert checks
}
app.conf.task_routes = TASK_ROUTES
# Anything not routed above lands on the reconcile queue, never on a queue no worker serves.
app.conf.task_default_queue = QUEUE_RECONCILE
app.autodiscover_tasks()
