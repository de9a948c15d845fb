"""Change events (one at a time, through the API) and the change feed (the source's change
table read in batches, coalesced per client without crossing identities).
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import F
from redis.exceptions import LockError

from config.errors import AppError
from core import avro
from core.clients import redis_client
from core.records import RecordError, record_from_document, record_key
from core.sources import Change, SourceItem, SqlSource
from kafkacache.messages import OutMessage, message_build
from kafkacache.models import FeedCursor
from kafkacache.producer import publish
from kafkacache.services.publishing import Pending, batch_record, message_record, oversize
from kafkacache.versions import change_version
from recon.models import Topic
from recon.services.actions import operator_action_record
from recon.services.feed import feed_topics_ensure
from recon.services.findings import finding_record

logger = logging.getLogger(__name__)


CHANGE_EVENTS = ("add", "update", "delete")


@dataclass
class Published:
    uuid: uuid.UUID
    key: str
    event: str
    partition: int
    offset: int
    version: int = 0


def change_publish(
    *,
    topic: Topic,
    event: str,
    key: str = "",
    record: dict | None = None,
    old_key: str = "",
    version: int | None = None,
    source: str = "api",
    requested_by=None,
) -> Published:
    """Publish one change event (add, update with an optional key change, delete).

    `record` is a record document (the file sources' shape) for add/update.
    `version` is the record's source version (the key's delete too), refused beyond
    the source's bound; without one, a version is drawn from the source's sequence
    (kafkacache.versions), so every change is ordered like the source feed's: a
    replay of an older message, a delete (its tombstone) and a rename's old key follow
    the same table. Oversize: a finding, and an AppError for the caller; nothing is
    published. Published is not applied: the consume ledger says what the cache did
    (change_status).
    """
    plain, key = _change_clean(event=event, key=key, record=record, old_key=old_key)
    version = change_version(version)  # checked against, or drawn from, the source's sequence
    pending = Pending()
    message = _change_message(
        topic=topic, event=event, key=key, plain=plain, old_key=old_key, version=version, source=source, pending=pending
    )
    if message is None:  # oversize: record the finding, refuse the request
        with transaction.atomic():
            for spec in pending.findings:
                finding_record(topic=topic, **spec)
        raise AppError(pending.findings[0]["detail"]["reason"], code="oversize", details=pending.findings[0]["detail"])
    if message.size > settings.MESSAGE_MAX_BYTES:  # a delete with an absurd key
        raise AppError(oversize(message)["reason"], code="oversize")
    [delivery] = publish([message], topic=topic.name)
    if delivery.error:
        raise AppError(
            f"Kafka did not acknowledge the message: {delivery.error}", code="publish_failed", status_code=503
        )
    batch_record(topic=topic, deliveries=[delivery], pending=pending)
    if requested_by is not None:
        operator_action_record(
            user=requested_by,
            action="change.publish",
            topic=topic,
            target=f"message:{message.uuid}",
            detail={"event": event, "key": message.key, "old_key": old_key, "version": version},
        )
    return Published(message.uuid, message.key, event, delivery.partition, delivery.offset, version)


def _change_clean(*, event: str, key: str, record: dict | None, old_key: str) -> tuple[dict | None, str]:
    """(the record in clear, None for a delete; its key) of a change request, or an AppError."""
    if event not in CHANGE_EVENTS:
        raise AppError(f"event must be one of {', '.join(CHANGE_EVENTS)}", code="bad_event")
    if event == "delete":
        if not key:
            raise AppError("a delete needs the key of the record", code="bad_key")
        return None, key
    try:
        plain = record_from_document(record)
    except RecordError as exc:
        raise AppError(f"record: {exc}", code="bad_record") from None
    derived = record_key(plain["client_id"])
    if key and key != derived:
        raise AppError(f"key {key!r} does not match the record's key {derived!r}", code="bad_key")
    if old_key and event != "update":
        raise AppError("old_key is only for update", code="bad_key")
    return plain, derived


def _change_message(
    *,
    topic: Topic,
    event: str,
    key: str,
    plain: dict | None,
    old_key: str,
    version: int,
    source: str,
    pending: Pending,
) -> OutMessage | None:
    """The change's message, sealed like the rest: a delete's built here, a record's by the
    load path's message_record (None when oversize: its finding is in `pending`)."""
    if plain is None:
        return message_build(
            key=key,
            event="delete",
            value=None,
            problems=[],
            source=source,
            schema_version=avro.current_version(),
            hash_algorithm=topic.hash_algorithm,
            version=version,
        )
    return message_record(
        topic=topic,
        item=SourceItem(key, plain, "", "request", version),
        event=event,
        source=source,
        pending=pending,
        old_key=old_key if old_key != key else "",
    )


class ChangePlan(NamedTuple):
    """What one client's changes in a feed batch publish."""

    client_id: int
    op: str  # add | update | delete (the last change was a delete)
    version: int  # the newest version among its changes (a delete's own version)
    renames: list[tuple[int, int]]  # (old client id, the rename's version), oldest first


def changes_coalesce(changes: Sequence[Change]) -> list[ChangePlan]:
    """Changes of one batch, one entry per client id, in the order of its last change.

    Several changes of a client (a client and its cards inserted in one
    transaction) become one message, built from the client's current rows, at
    the current version. Nothing is carried across identities: a renumbering
    stays with the client it renumbered, with its own version, so its old key's
    delete can never remove a record inserted later under that key (id reuse),
    nor a delete of the new key swallow the renumbering.
    """
    plans: dict[int, ChangePlan] = {}
    for change in changes:
        before = plans.pop(change.client_id, None)
        renames = list(before.renames) if before else []
        if change.old_client_id and change.old_client_id != change.client_id:
            renames.append((change.old_client_id, change.version))
        if change.op == "delete" or (
            before is not None and before.op == "delete" and change.op == "update" and not change.old_client_id
        ):
            # an update after a delete of the same id is a cascade from its rows; only an add
            # (or a renumbering onto this id) brings it back
            op = "delete"
        elif change.op == "add" or (before is not None and before.op == "add"):
            op = "add"
        else:
            op = "update"
        version = max(change.version, before.version if before else 0)
        plans[change.client_id] = ChangePlan(change.client_id, op, version, renames)  # re-inserted: last-change order
    return list(plans.values())


def change_feed_run(*, source: SqlSource | None = None, max_batches: int | None = None) -> dict[str, int]:
    """Publish the source's pending changes to the change topic, batch by batch.

    Only one run per source at a time (a Redis lock). A batch's changes are
    removed from the source's change table only after Kafka acknowledged the
    messages and their ledger rows are written, so a crash publishes that batch
    again (at-least-once; the cache writes are idempotent).
    """
    source = source or SqlSource()
    lock = redis_client().lock(f"kc:lock:change-feed:{source.name}", timeout=300)
    if not lock.acquire(blocking=False):
        logger.info("change feed of %s already runs elsewhere", source.name)
        return {"skipped": 1}
    stats = {"changes": 0, "published": 0, "exceptions": 0, "batches": 0}
    try:
        topic = feed_topics_ensure()[Topic.Kind.CHANGE]
        cursor, _ = FeedCursor.objects.get_or_create(source=source.name)
        while max_batches is None or stats["batches"] < max_batches:
            changes = source.changes_read(limit=settings.CHANGE_FEED_BATCH_SIZE)
            if not changes:
                break
            published, exceptions = _change_batch(topic, source, changes)
            source.changes_done([c.change_id for c in changes])
            FeedCursor.objects.filter(pk=cursor.pk).update(
                change_id=changes[-1].change_id, published=F("published") + published
            )
            stats["changes"] += len(changes)
            stats["published"] += published
            stats["exceptions"] += exceptions
            stats["batches"] += 1
            lock.extend(300, replace_ttl=True)
    finally:
        try:
            lock.release()
        except LockError:
            logger.warning("change feed lock of %s expired before release", source.name)
    if stats["changes"]:
        logger.info("change feed %s: %s", source.name, stats)
    return stats


def _change_batch(topic: Topic, source: SqlSource, changes: Sequence[Change]) -> tuple[int, int]:
    plans = changes_coalesce(changes)
    current = source.fetch([plan.client_id for plan in plans])
    pending = Pending()
    messages: list[OutMessage] = []

    def delete(key: str, version: int) -> None:
        messages.append(
            message_build(
                key=key,
                event="delete",
                value=None,
                problems=[],  # built here: sealed like the rest
                source=source.name,
                schema_version=avro.current_version(),
                hash_algorithm=topic.hash_algorithm,
                version=version,
            )
        )

    for plan in plans:
        item = current.get(plan.client_id)
        renames = [(record_key(old), version) for old, version in plan.renames]
        if item is None:
            # Gone by now. Its old keys go either way; its own delete is published
            # with the delete's version, or, deleted after this batch was read, by
            # the next batch, which holds that delete's change row.
            for key, version in renames:
                delete(key, version)
            if plan.op == "delete":
                delete(record_key(plan.client_id), plan.version)
            continue
        for key, version in renames[:-1]:  # several renumberings in one batch: all but the last
            delete(key, version)
        old_key, old_version = renames[-1] if renames else ("", None)
        message = message_record(
            topic=topic,
            item=item,
            event="add" if plan.op == "add" else "update",
            source=source.name,
            pending=pending,
            old_key=old_key,
            old_version=old_version,
        )
        if message is not None:
            messages.append(message)
    deliveries = publish(messages, topic=topic.name)
    failed = [d for d in deliveries if d.error]
    if failed:
        # Record what did get through, then stop: the changes stay in the
        # source's table, and the next run publishes the batch again.
        batch_record(topic=topic, deliveries=deliveries, pending=Pending())
        raise RuntimeError(f"{len(failed)} change messages not acknowledged: {failed[0].error}")
    batch_record(topic=topic, deliveries=deliveries, pending=pending)
    return len(deliveries), len(pending.findings)
