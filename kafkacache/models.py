"""Bulk loads: what was asked for, how far it got, and the key to read it back.

State rules: QUEUED -> RUNNING -> DONE | FAILED, moved only by
kafkacache.loads (claimed with a conditional update, so two workers never
run the same load). A RUNNING load whose heartbeat is older than
LOAD_STALE_SECONDS lost its worker: it may be claimed again and restarts from
the beginning (at-least-once; the cache writes are idempotent).
"""

import secrets
import uuid

from django.conf import settings
from django.db import models


def new_retrieval_key() -> str:
    return secrets.token_urlsafe(24)


class Load(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    retrieval_key = models.CharField(max_length=64, unique=True, default=new_retrieval_key, editable=False)
    topic = models.ForeignKey("recon.Topic", on_delete=models.PROTECT, related_name="loads")
    source = models.CharField(max_length=128)  # "ods" or "file:<name>" (core.sources.source_get)
    client_ids = models.JSONField(default=list, blank=True)  # empty: every client
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total = models.IntegerField(null=True, blank=True)  # known once the source is counted
    built = models.IntegerField(default=0)
    published = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    exceptions = models.IntegerField(default=0)
    # Records without a source version were published (a file without a `version`
    # column): they fill keys but never replace an ordered record (kafkacache.cache).
    unordered = models.IntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # moved at every batch while running
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="load_status_time")]

    def __str__(self) -> str:
        return f"load {self.id} ({self.status})"


class FeedCursor(models.Model):
    """Progress of the change feed of a source, for ops and the dashboard.

    The source's change table itself says what is left to publish (published
    rows are deleted from it); this keeps the last change id published and a
    running count. Moved only by kafkacache.change_feed.change_feed_run, after the
    batch is acknowledged by Kafka and in the ledger (at-least-once).
    """

    source = models.CharField(max_length=128, unique=True)
    change_id = models.BigIntegerField(default=0)
    published = models.BigIntegerField(default=0)  # changes published so far, for the dashboard
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.source} @ {self.change_id}"
