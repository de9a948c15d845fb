"""Celery tasks of the feed: thin, they take ids and call a service."""

from celery import shared_task
from django.conf import settings

from core.jobs import job_enqueue, jobs_resume
from kafkacache.consumer import consume_run
from kafkacache.services import change_feed, loads
from kafkacache.services.cache_scrub import cache_scrub_slice
from kafkacache.services.leaders import leaders_watch
from recon.models import Load, LoadPart
from recon.services.runs import LOAD_VERIFY


@shared_task(name=loads.LOAD_RUN)
def load_run_task(load_id: str) -> str:
    """Split the load into its parts and queue them (each on whichever worker takes it)."""
    load = loads.load_split(load_id=load_id, queue=True)
    if load.finished_at is not None:  # no clients, or a source that cannot be read
        job_enqueue(LOAD_VERIFY, str(load_id))
    return load.status


@shared_task(name=loads.LOAD_PART_RUN)
def load_part_run_task(part_id: str) -> str:
    part, finished = loads.load_part_run(part_id=part_id)
    if finished:
        # Reconciliation judges the load in both legs once the feed has consumed it (its
        # task waits for that).
        job_enqueue(LOAD_VERIFY, str(part.load_id))
    return part.status


@shared_task(name="kafkacache.tasks.consume_task")
def consume_task(instance: int = 0) -> dict:
    """Started by beat every CONSUMER_SCHEDULE_SECONDS; a no-op while a run holds the lock."""
    return consume_run(instance=instance, max_seconds=settings.CONSUMER_RUN_SECONDS)


@shared_task(name="kafkacache.tasks.change_feed_task")
def change_feed_task() -> dict:
    return change_feed.change_feed_run()


@shared_task(name="kafkacache.tasks.loads_resume_task")
def loads_resume_task() -> list[str]:
    """Beat: queue again the loads and load parts whose worker went away (or that no worker picked up)."""
    stale = settings.LOAD_STALE_SECONDS
    return [
        *jobs_resume(Load, task=loads.LOAD_RUN, stale_seconds=stale, beating=loads.UNSPLIT, limit=1000),
        *jobs_resume(LoadPart, task=loads.LOAD_PART_RUN, stale_seconds=stale, limit=1000),
    ]


@shared_task(name="kafkacache.tasks.leaders_watch_task")
def leaders_watch_task() -> int:
    return len(leaders_watch())


@shared_task(name="kafkacache.tasks.cache_scrub_task")
def cache_scrub_task() -> dict:
    """The rolling scrub's next slice (kafkacache.services.cache_scrub)."""
    scrub = cache_scrub_slice()
    return {"pass": scrub.pk, "next_slot": scrub.next_slot, "finished": scrub.finished_at is not None}
