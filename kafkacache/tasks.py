"""Celery tasks of the feed: thin, they take ids and call a service."""

import logging

from celery import current_app, shared_task
from django.conf import settings

from kafkacache import change_feed, loads, selectors
from kafkacache.consumer import consume_run
from kafkacache.leaders import leaders_watch

logger = logging.getLogger(__name__)


@shared_task(name="kafkacache.tasks.load_run_task")
def load_run_task(load_id: str) -> str:
    status = loads.load_run(load_id=load_id).status
    # Reconciliation judges the load in both legs once the feed has consumed it; by
    # task name, so the feed never imports the layer above it.
    current_app.send_task("recon.tasks.load_verify", args=[str(load_id)])
    return status


@shared_task(name="kafkacache.tasks.consume_task")
def consume_task(instance: int = 0) -> dict:
    """Started by beat every CONSUMER_SCHEDULE_SECONDS; a no-op while a run holds the lock."""
    return consume_run(instance=instance, max_seconds=settings.CONSUMER_RUN_SECONDS)


@shared_task(name="kafkacache.tasks.change_feed_task")
def change_feed_task() -> dict:
    return change_feed.change_feed_run()


@shared_task(name="kafkacache.tasks.loads_resume_task")
def loads_resume_task() -> list[str]:
    """Queue again the loads whose worker went away; load_run's claim makes a double queue harmless."""
    stalled = selectors.loads_stalled()
    for load_id in stalled:
        logger.warning("load %s stalled: queued again", load_id)
        load_run_task.delay(load_id)
    return stalled


@shared_task(name="kafkacache.tasks.leaders_watch_task")
def leaders_watch_task() -> int:
    return len(leaders_watch())
