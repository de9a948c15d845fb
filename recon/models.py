"""The record: topics under watch, bulk loads, both ledgers, windows, findings, runs, replays.

State rules
- A message is published once (one PublishedMessage per UUID; a replay is a new
  UUID with `replay_of` set) and consumed zero or more times (one ConsumedMessage
  per delivery: at-least-once redelivery shows as duplicates, never as loss).
- Both ledgers count a message in the window of its *publish* time, so the two
  sides of a window describe the same messages.
- A Window is OPEN until its end + grace has passed, then the engine sets it
  MATCHED or DISCREPANT. Only the reconcile (recon.services.windows) changes its status.
- A Finding has a lifecycle (recon.services.finding_lifecycle, one function per transition):
  OPEN -> ACKNOWLEDGED / INVESTIGATING -> FIXED (a person says so) -> RESOLVED (the next
  reconcile, cache check or a replay no longer finds it: verified), or ACCEPTED as-is
  with a reason code; REOPENED when a person reopens it or a check finds a FIXED one again.
- A Load is a bulk load's request and progress (see Load); a Replay is a person's
  request (see Replay); its items say what each message became.
"""

import secrets
import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import HashIndex
from django.db import models
from django.utils import timezone


class Topic(models.Model):
    """A Kafka topic under reconciliation, and the object that permissions attach to."""

    class Kind(models.TextChoices):
        BULK = "bulk", "Bulk load"
        CHANGE = "change", "Change data"
        OTHER = "other", "Other"

    class HashAlgorithm(models.TextChoices):
        BLAKE2B = "blake2b", "BLAKE2b-128 (digest)"
        XXH3 = "xxh3", "xxHash3-128 (checksum)"
        CRC32 = "crc32", "CRC32 (checksum)"

    name = models.CharField(max_length=249, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OTHER)
    consumer_group = models.CharField(max_length=255)
    # The four reconciliation methods, each switchable per topic (README: Reconciliation).
    method_counts = models.BooleanField(default=True)
    method_uuid = models.BooleanField(default=True)
    method_hash = models.BooleanField(default=True)
    method_audit = models.BooleanField(default=False, help_text="Keep full payloads (encrypted) for diff and replay.")
    hash_algorithm = models.CharField(max_length=16, choices=HashAlgorithm.choices, default=HashAlgorithm.BLAKE2B)
    # Tolerances.
    window_seconds = models.PositiveIntegerField(default=300)
    grace_seconds = models.PositiveIntegerField(default=120)
    latency_limit_seconds = models.PositiveIntegerField(default=60)
    audit_retention_days = models.PositiveIntegerField(default=30)
    validate_payloads = models.BooleanField(default=True, help_text="Run business validation rules on consumed data.")
    # Four eyes (replay.services.approval): a replay or reprocess naming more than this many
    # messages waits for a second operator of the topic; empty: never by size.
    approval_threshold = models.PositiveIntegerField(
        null=True, blank=True, help_text="Replays of more messages than this need a second operator's approval."
    )
    approval_always = models.BooleanField(default=False, help_text="Every replay of this topic needs an approval.")
    # Feed integrity (docs/security.md): off, a message whose seal is missing or does not
    # verify is dead-lettered; on, it is taken only within the source's version bound and
    # the cache leg re-checks its key. Changed in the admin only, audited there.
    accepts_unsealed = models.BooleanField(
        default=False,
        help_text=(
            "Take messages without a verified seal (other producers), their versions bounded by the source's"
            " sequence and their keys re-checked by the cache leg. Off: such messages are dead-lettered."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("operate_topic", "Can replay, reprocess, load and reconcile this topic"),
            ("view_topic_payload", "Can see audit payloads of this topic"),
            ("export_topic_evidence", "Can download the evidence pack of this topic"),
            ("manage_topic_people", "Can give people roles on this topic (its admins)"),
        ]

    def __str__(self) -> str:
        return self.name


def new_retrieval_key() -> str:
    return secrets.token_urlsafe(24)


class Load(models.Model):
    """A bulk load: what was asked for, how far it got, and the key to read it back.

    State rules: QUEUED -> RUNNING -> DONE | FAILED, moved only by kafkacache.services.loads
    through core.jobs (claimed with a conditional update, so two workers never run
    the same load). Once claimed it is split into parts (LoadPart: client-id ranges,
    `part_count` of them) that any number of workers run at once; its counters are
    the sum of its parts', written in each part's batch transaction, and it is done
    when every part is, failed (with each failed part's reason) when one failed. A
    RUNNING load not yet split whose heartbeat is older than LOAD_STALE_SECONDS lost
    its worker and is claimed again; a split one does not beat itself, its parts do.
    The feed writes it; the record keeps it beside the ledger rows, findings and runs
    that name it. Its table kept the name it had when the feed held the model.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    retrieval_key = models.CharField(max_length=64, unique=True, default=new_retrieval_key, editable=False)
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="loads")
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
    part_count = models.IntegerField(default=0)  # 0 until it is split into its parts
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # moved at every batch of any part
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "kafkacache_load"
        ordering = ["-created_at"]
        # the Loads page by status, newest first, and core.jobs.jobs_stalled: WHERE status = ? ... created_at
        indexes = [models.Index(fields=["status", "-created_at"], name="load_status_time")]

    def __str__(self) -> str:
        return f"load {self.id} ({self.status})"


class LoadPart(models.Model):
    """One client-id range of a bulk load, run by whichever worker claims it.

    The keys in (key_after, key_last] of the load's source (None: unbounded), and of
    those only the load's chosen clients when it names some. State rules, as for any
    job (core.jobs): QUEUED -> RUNNING -> DONE | FAILED, moved only by kafkacache.services.loads.
    Each batch is ledgered, counted and checkpointed in one transaction: `position`
    is the source position after the last ledgered batch (a client key; a line of a
    file), `offsets` per partition of the topic where messages of this part that are
    not ledgered yet can be (the high watermark at its first claim, then past each
    ledgered batch). A RUNNING part whose heartbeat is older than LOAD_STALE_SECONDS
    lost its worker: it is claimed again (`attempts` + 1), ledgers first what Kafka
    acknowledged after `offsets` that the dead worker never ledgered (read back from
    the topic, their seals verified), then reads on after `position`, so every
    acknowledged message is ledgered once and none of its clients is sent twice.
    """

    Status = Load.Status  # one job lifecycle (core.jobs)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    load = models.ForeignKey(Load, on_delete=models.CASCADE, related_name="parts")
    number = models.IntegerField()  # 1, 2, ... in key order
    key_after = models.BigIntegerField(null=True, blank=True)
    key_last = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total = models.IntegerField(default=0)  # the source's count of its range when the load was split
    built = models.IntegerField(default=0)
    published = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    exceptions = models.IntegerField(default=0)
    unordered = models.IntegerField(default=0)
    error = models.TextField(blank=True)
    position = models.BigIntegerField(null=True, blank=True)
    offsets = models.JSONField(default=dict, blank=True)  # {"<partition>": offset}
    attempts = models.IntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)  # host:pid of the process that claimed it last
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # moved at every batch while running
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["load", "number"]
        constraints = [models.UniqueConstraint(fields=["load", "number"], name="loadpart_number")]
        # core.jobs.jobs_stalled: WHERE status = ? ... created_at
        indexes = [models.Index(fields=["status", "created_at"], name="loadpart_status_time")]

    def __str__(self) -> str:
        return f"part {self.number} of load {self.load_id} ({self.status})"


class EventType(models.TextChoices):
    BULK = "bulk", "Bulk add"
    ADD = "add", "Add"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    RESTORE = "restore", "Restore from the system of record"


class PublishedMessage(models.Model):
    """Publish-side ledger: one row per message the producer got acknowledged.

    Range-partitioned by published_at in PostgreSQL (see migration 0001_squashed_0015); the
    table's real primary key is (id, published_at), `id` alone is still unique.
    Rows are written in bulk (COPY) by the producer, never one by one.
    """

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField()
    # No database-level foreign keys on the ledgers: append-only, high volume.
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, db_index=False, db_constraint=False, related_name="+")
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    key = models.CharField(max_length=512)
    event_type = models.CharField(max_length=8, choices=EventType.choices)
    content_hash = models.BinaryField(max_length=16)
    size = models.IntegerField()
    published_at = models.DateTimeField()
    load = models.ForeignKey(
        Load, null=True, blank=True, on_delete=models.SET_NULL, db_index=False, db_constraint=False
    )
    replay_of = models.UUIDField(null=True, blank=True)
    # The record's source version (core.sources); null: unordered, or published before versions.
    source_version = models.BigIntegerField(null=True, blank=True)
    # What the message was, headers included: its seal leaf (kafkacache.seal.seal_leaf, over
    # the topic, the sealed headers, the key and the value's hash), kept for every message
    # whether sealed or not. Reprocessing a dead letter runs it only if its leaf is this one.
    # Null: published before the ledger kept it.
    seal_leaf = models.BinaryField(max_length=16, null=True, blank=True)

    class Meta:
        indexes = [
            # window compare: WHERE topic_id = ? AND published_at >= ? AND published_at < ?
            models.Index(fields=["topic", "published_at"], name="pub_topic_time"),
            # the cache leg's latest version per key, and republished versions:
            # WHERE topic_id = ? AND key = ANY(?) ORDER BY key, source_version DESC
            models.Index(fields=["topic", "key", "source_version"], name="pub_topic_key_version"),
            # drill-down and the per-UUID join
            models.Index(fields=["uuid"], name="pub_uuid"),
            # the message search by place: WHERE topic_id = ? AND partition = ? AND "offset" = ?
            # (offsets grow per partition: each insert lands at the index's right edge)
            models.Index(fields=["topic", "partition", "offset"], name="pub_topic_place"),
            # load progress and retrieval: WHERE load_id = ?
            models.Index(fields=["load"], name="pub_load"),
        ]

    def __str__(self) -> str:
        return f"{self.uuid} {self.topic_id}/{self.partition}@{self.offset}"


class ConsumedMessage(models.Model):
    """Consume-side ledger: one row per delivery the consumer processed.

    `published_at` is copied from the message's header so the row lands in the
    same window (and partition) as its publish-side twin.
    """

    class Outcome(models.TextChoices):
        STORED = "stored", "Stored in Redis"
        DELETED = "deleted", "Deleted from Redis"
        DEAD_LETTERED = "dead", "Dead-lettered"
        INVALID = "invalid", "Stored, failed validation"
        # What the cache did instead (kafkacache.cache verdicts): consumed, not applied.
        REFUSED_OLDER = "refused-older", "Refused: older than what the cache holds"
        REFUSED_UNORDERED = "refused-unordered", "Refused: unversioned, the cache holds a versioned record"
        # From a producer without a verified seal, on a topic that accepts them, within the
        # source's version bound: applied, and its key re-checked by the cache leg.
        UNSEALED = "unsealed", "Applied from an unsealed producer (key re-checked)"

    # Outcomes of a message the cache took (stored, deleted or restored).
    APPLIED = (Outcome.STORED, Outcome.DELETED, Outcome.INVALID, Outcome.UNSEALED)
    REFUSED = (Outcome.REFUSED_OLDER, Outcome.REFUSED_UNORDERED)

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(null=True, blank=True)  # null: the message had no usable UUID
    # No database-level foreign keys on the ledgers: append-only, high volume.
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, db_index=False, db_constraint=False, related_name="+")
    group = models.CharField(max_length=255)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    key = models.CharField(max_length=512, blank=True)
    content_hash = models.BinaryField(max_length=16)
    published_at = models.DateTimeField()
    consumed_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)

    class Meta:
        indexes = [
            models.Index(fields=["topic", "published_at"], name="con_topic_time"),
            # Hash, not B-tree, for the two lookups by equality only: UUIDs and keys arrive
            # in random order, and a hash index takes such an insert with less work (a
            # 4-byte code, no page splits in key order), which the consume path pays per row.
            # drill-down and replay checks: WHERE uuid = ?
            HashIndex(fields=["uuid"], name="con_uuid_hash"),
            # cache leg: the latest delivery of each key, WHERE key = ANY(?) (a key has a
            # handful of deliveries, sorted by published_at after the lookup)
            HashIndex(fields=["key"], name="con_key_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.uuid} {self.group} {self.partition}@{self.offset}"


class Window(models.Model):
    """Reconciliation state of one topic over one tumbling window of publish time.

    Counts and digests are kept up to date by the ledger writers, one UPSERT per
    batch; the digest is the sum of a 64-bit hash of (UUID, content hash) per
    message mod 2**64 (order-free, core.hashing.message_digest), so a clean
    window is proven by comparing four numbers (and its slowest delivery).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MATCHED = "matched", "Matched"
        DISCREPANT = "discrepant", "Discrepant"

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="windows")
    start = models.DateTimeField()
    end = models.DateTimeField()
    published_count = models.BigIntegerField(default=0)
    consumed_count = models.BigIntegerField(default=0)
    published_digest = models.DecimalField(max_digits=20, decimal_places=0, default=0)
    consumed_digest = models.DecimalField(max_digits=20, decimal_places=0, default=0)
    # Slowest first delivery in the window (consumed_at - published_at), kept by the
    # ledger writer: a clean window below the latency limit needs no per-UUID pass.
    consumed_max_latency_ms = models.BigIntegerField(default=0)
    # Consume rows that re-read a (group, partition, offset) already taken (a consumer that
    # died before committing): counted by the reconcile, never duplicate findings.
    redelivered = models.BigIntegerField(default=0, db_default=0)  # the ledger writers insert windows in SQL
    # Consume rows that delivered no message this window published (another producer's, garbage
    # without a known uuid, redeliveries), counted by the reconcile: the gap is
    # published - (consumed - consumed_other), so they never hide a lost message. Negative only
    # when the publish ledger holds a uuid twice (the engine's republished finding says so).
    consumed_other = models.BigIntegerField(default=0, db_default=0)
    # Messages published in each second of the window (index: seconds after start, up to its
    # last busy second) and the largest of them, kept by the publish ledger writer in the
    # statement that bumps the counts: a range's busiest second is its windows' largest peak,
    # read without a ledger row.
    published_seconds = ArrayField(models.IntegerField(), default=list, db_default=[], blank=True)
    published_peak = models.BigIntegerField(default=0, db_default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    # Set when retention dropped the ledger partition(s) under this window: from then
    # on only the counts, digests, summary and findings remain, and it is not re-compared.
    ledger_dropped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["topic", "start"], name="window_topic_start")]
        indexes = [
            # the scheduler: WHERE status = 'open' AND end < now() - grace
            models.Index(fields=["status", "end"], name="window_status_end"),
        ]
        ordering = ["-start"]

    def __str__(self) -> str:
        return f"{self.topic_id} {self.start:%Y-%m-%d %H:%M} {self.status}"


class Finding(models.Model):
    """Something ops must see: a reconciliation discrepancy or a feed exception.

    Written by the recon engine (missing, delayed, duplicate, altered, orphan,
    cache) and by the feed as it happens (dead-lettered, oversize, invalid data,
    rebalance errors).
    """

    class Classification(models.TextChoices):
        MATCH = "match", "Match"
        MISMATCH = "mismatch", "Mismatch"
        EXCEPTION = "exception", "Exception"

    class Category(models.TextChoices):
        MISSING = "missing", "Missing"
        DELAYED = "delayed", "Delayed"
        DUPLICATE = "duplicate", "Duplicate"
        ALTERED = "altered", "Altered"
        ORPHAN = "orphan", "Orphan"
        COUNT = "count", "Count mismatch"
        CACHE = "cache", "Cache differs"
        INVALID_DATA = "invalid-data", "Invalid data"
        DEAD_LETTERED = "dead-lettered", "Dead-lettered"
        OVERSIZE = "oversize", "Oversize (not published)"
        REBALANCE_ERROR = "rebalance-error", "Rebalance error"
        CLOCK_SKEW = "clock-skew", "Producer clock skew"
        REPUBLISHED = "republished", "Republished (same version, new UUID)"

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        INVESTIGATING = "investigating", "Investigating"
        FIXED = "fixed", "Fixed (awaiting verification)"
        ACCEPTED = "accepted", "Accepted as-is"
        REOPENED = "reopened", "Reopened"
        RESOLVED = "resolved", "Resolved (verified)"

    # Findings someone still owes work on: they age, count against the SLA, show as open.
    UNRESOLVED = (Status.OPEN, Status.ACKNOWLEDGED, Status.INVESTIGATING, Status.REOPENED)
    # Standing: a check that finds the same problem again updates it rather than adding a copy.
    STANDING = (*UNRESOLVED, Status.FIXED, Status.ACCEPTED)

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="findings")
    window = models.ForeignKey(Window, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings")
    run = models.ForeignKey("ReconRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="findings")
    load = models.ForeignKey(Load, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    uuid = models.UUIDField(null=True, blank=True)
    key = models.CharField(max_length=512, blank=True)
    category = models.CharField(max_length=16, choices=Category.choices)
    classification = models.CharField(max_length=10, choices=Classification.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    detail = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The finding's owner: a person or a team (a Group), set by recon.services.finding_lifecycle.finding_assign.
    assigned_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assigned_at = models.DateTimeField(null=True, blank=True)
    reason_code = models.ForeignKey("ReasonCode", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    rule = models.ForeignKey("Rule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The problem it is a member of (recon.problems.problem_of, set when raised): what one
    # cause produced (a reload, a lost partition range, a failing consumer) is one problem,
    # listed, aged, counted and exported once with its members a click away.
    problem = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            # Re-reconciling a window updates its findings instead of adding copies.
            models.UniqueConstraint(
                fields=["window", "category", "uuid"],
                condition=models.Q(window__isnull=False, uuid__isnull=False),
                name="finding_window_category_uuid",
            )
        ]
        indexes = [
            # the findings page: WHERE topic_id IN (...) AND status = ? ORDER BY created_at DESC
            models.Index(fields=["topic", "status", "-created_at"], name="finding_topic_status_time"),
            models.Index(fields=["category", "-created_at"], name="finding_category_time"),
            models.Index(fields=["uuid"], name="finding_uuid"),
            # My findings: WHERE assigned_user_id = ? AND status IN (...)
            models.Index(fields=["assigned_user", "status"], name="finding_assignee_status"),
            # problems list and members: WHERE topic_id IN (...) AND status IN (...) GROUP BY topic, problem
            models.Index(fields=["topic", "problem", "status"], name="finding_topic_problem"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.category} {self.uuid or self.key}"


class ReasonCode(models.Model):
    """Why a finding was accepted as-is (the configurable list, edited in the admin)."""

    code = models.SlugField(max_length=48, unique=True)
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True, help_text="Disabled codes stay on old breaks but cannot be chosen.")
    position = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return f"{self.code}: {self.label}"


class FindingTransition(models.Model):
    """One change of a finding: its status or owner, who did it (empty: the system), and why.

    Written only by recon.services.finding_lifecycle, in the same transaction as the change itself, so
    the history is the finding's full story (the evidence pack exports it).
    """

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="transitions")
    action = models.CharField(max_length=24)  # assign, acknowledge, investigate, fix, accept, reopen, resolve
    from_status = models.CharField(max_length=16)
    to_status = models.CharField(max_length=16)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason_code = models.ForeignKey(ReasonCode, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        # a finding's history: WHERE finding_id = ? ORDER BY at
        indexes = [models.Index(fields=["finding", "at"], name="transition_finding_time")]

    def __str__(self) -> str:
        return f"{self.finding_id} {self.action} {self.from_status}->{self.to_status}"


class FindingComment(models.Model):
    """The comment thread of a finding (recon.services.finding_lifecycle.finding_comment)."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="comments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["finding", "at"], name="comment_finding_time")]

    def __str__(self) -> str:
        return f"{self.finding_id} {self.user_id} {self.at:%Y-%m-%d %H:%M}"


class ReconRun(models.Model):
    """One reconciliation of a topic over a time range (scheduled or on demand).

    State rules: the scheduler and the feed's checks start a run RUNNING; a run an
    operator (or a finished replay or load) asks for starts QUEUED and a worker
    claims it QUEUED -> RUNNING (core.jobs.job_claim, recon.services.runs.run_execute), so a
    redelivered task does nothing. RUNNING -> DONE | FAILED by recon.services.run_lifecycle.run_finish
    (core.jobs.job_finish), whichever way it started. A queued run whose task was
    lost, or a transport run whose worker went silent (it beats `heartbeat_at` every
    window), is queued again by recon.tasks.runs_resume (core.jobs.jobs_resume).
    `total`/`processed` count windows (transport) as the run goes; `replay` names
    the replay a run verifies; `params` holds the windows it was asked to re-judge.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        TRANSPORT = "transport", "Transport (published vs consumed)"
        CACHE = "cache", "Cache leg (consumed vs Redis)"
        VALIDATION = "validation", "Validation (business rules on consumed data)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TRANSPORT)
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="runs")
    load = models.ForeignKey(Load, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    range_start = models.DateTimeField()
    range_end = models.DateTimeField()
    # schedule, api, dashboard, task, load, replay, unsealed (the consumer), bench
    trigger = models.CharField(max_length=16, default="schedule")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    report = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)  # {"windows": [ids]}: re-judge exactly these
    total = models.IntegerField(null=True, blank=True)  # windows to reconcile, once known
    processed = models.IntegerField(default=0)
    replay = models.ForeignKey("Replay", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    created_at = models.DateTimeField(default=timezone.now)  # queued at (started_at moves at the claim)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # a claimed run's last sign of life

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # the Runs page: WHERE topic_id IN (...) ORDER BY started_at DESC
            models.Index(fields=["topic", "-started_at"], name="run_topic_time"),
        ]

    def __str__(self) -> str:
        return f"run {self.id} {self.topic_id} {self.status}"


class RebalanceEvent(models.Model):
    """A consumer-group rebalance callback, or an error raised during one."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", "Assigned"
        REVOKED = "revoked", "Revoked"
        LOST = "lost", "Lost"
        ERROR = "error", "Error"
        # Not a group callback: a partition's leader or in-sync replicas changed (broker lost,
        # back, or moved), seen by kafkacache.services.leaders; member names the watcher.
        LEADER = "leader", "Leader change"

    group = models.CharField(max_length=255)
    member = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    partitions = models.JSONField(default=list)  # [{"topic": ..., "partition": ..., "offset": ...}]
    error = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["group", "-at"], name="rebalance_group_time")]
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.group} {self.member} {self.kind}"


class CacheScrub(models.Model):
    """One pass of the rolling scrub over every hash slot of the cache
    (kafkacache.services.cache_scrub): the bucket digests rebuilt from what Redis holds and
    every record's value checked against its published hash, a slice of slots at a time.
    Moved only by recon.services.scrubs. A pass that finished re-proved every key Redis held
    (with the digest leg, every key of the source: recon.selectors.runs.keys_reproved)."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_slot = models.IntegerField(default=0)  # the first slot of the next slice
    retry = models.JSONField(default=list, blank=True)  # slots whose digests a write moved mid-rebuild
    slices = models.IntegerField(default=0)
    keys_read = models.BigIntegerField(default=0)
    buckets_repaired = models.IntegerField(default=0)  # digests that were not what Redis holds
    values_differ = models.IntegerField(default=0)  # records whose value is not their published bytes
    seconds = models.FloatField(default=0)

    class Meta:
        indexes = [models.Index(fields=["-started_at"], name="scrub_time")]

    def __str__(self) -> str:
        return f"scrub from {self.started_at:%Y-%m-%d %H:%M} at slot {self.next_slot}"


class OperatorAction(models.Model):
    """Audit trail of what people did: replay, reprocess, load, reconcile, acknowledge."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=32)
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target = models.CharField(max_length=255, blank=True)  # "load:<id>", "finding:<id>", "message:<uuid>"
    detail = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=255, default="accepted")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["-at"], name="action_time")]
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.user_id} {self.action} {self.target}"


class Rule(models.Model):
    """How a finding is classified: match (tolerated), mismatch or exception, and how severe.

    The engine and the feed ask `recon.rules.classify` for every finding. The first
    enabled rule that fits wins: rules of the finding's topic before global rules
    (topic empty), then by ascending priority. A rule fits when its category is the
    finding's, its event type (if set) is the message's, and the number at
    `detail_field` in the finding's detail (if set) lies in [min_value, max_value).
    Without a fitting rule the built-in default of the category applies.
    """

    name = models.CharField(max_length=120)
    topic = models.ForeignKey(
        Topic, null=True, blank=True, on_delete=models.CASCADE, related_name="rules", help_text="Empty: all topics."
    )
    category = models.CharField(max_length=16, choices=Finding.Category.choices)
    event_type = models.CharField(max_length=8, choices=EventType.choices, blank=True, help_text="Empty: any.")
    detail_field = models.CharField(
        max_length=64, blank=True, help_text="A number in the finding's detail, e.g. delay_seconds or deliveries."
    )
    min_value = models.FloatField(null=True, blank=True, help_text="Inclusive lower bound of detail_field.")
    max_value = models.FloatField(null=True, blank=True, help_text="Exclusive upper bound of detail_field.")
    classification = models.CharField(max_length=10, choices=Finding.Classification.choices)
    severity = models.CharField(max_length=8, choices=Finding.Severity.choices, default=Finding.Severity.WARNING)
    priority = models.IntegerField(default=100, help_text="Lower is tried first.")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "priority", "id"]

    def __str__(self) -> str:
        scope = self.topic.name if self.topic_id and self.topic else "all topics"
        return f"{self.name} ({self.category} on {scope} -> {self.classification}/{self.severity})"


class AuditPayload(models.Model):
    """Audit log: the full message value, AES-GCM encrypted at rest.

    Written only when the topic's method_audit is on, one bulk insert per feed
    batch (recon.services.audit.payloads_record). Kept audit_retention_days, then purged.
    `payload` is nonce (12 bytes) + ciphertext; the associated data binds it to
    its topic, UUID and side so a row cannot be passed off as another.

    Re-encryption (kafkacache.services.reencrypt) rewrites the card and account ciphertexts inside
    the value to the newest field key, so an old key can be retired. The row then
    keeps what proves the evidence: `original_hashes`, the published bytes' hash under
    every algorithm (set once, at the first re-encryption; the ledgers hold the same
    hash), `reencrypted_hash`, the BLAKE2b of the bytes it now holds, the time and the
    key ids it replaced. recon.audit.payload_hash answers the original hash for bytes
    that are still the ones re-encryption wrote, so nothing compares them as altered.
    """

    class Side(models.TextChoices):
        PUBLISHED = "published", "Published"
        CONSUMED = "consumed", "Consumed"

    uuid = models.UUIDField()
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="+")
    side = models.CharField(max_length=9, choices=Side.choices)
    key_id = models.CharField(max_length=32)
    payload = models.BinaryField()
    size = models.IntegerField()  # plaintext bytes
    schema_version = models.IntegerField(null=True, blank=True)  # the message's "schema" header, when given
    at = models.DateTimeField()  # published_at or consumed_at of the message
    stored_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    reencrypted_at = models.DateTimeField(null=True, blank=True)  # the last field re-encryption; null: never
    reencrypted_from = models.CharField(max_length=255, blank=True)  # field key ids replaced then, comma-separated
    original_hashes = models.CharField(max_length=200, blank=True)  # the original bytes, "alg:hex,..."
    reencrypted_hash = models.CharField(max_length=32, blank=True)  # BLAKE2b hex of the bytes held now

    class Meta:
        indexes = [
            # field diff of an altered message: WHERE topic_id = ? AND uuid = ANY(?)
            models.Index(fields=["topic", "uuid"], name="audit_topic_uuid"),
            # purge: WHERE expires_at < now()
            models.Index(fields=["expires_at"], name="audit_expires"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.uuid}"


class Replay(models.Model):
    """An operator's request to replay messages or to reprocess dead letters (replay.services.requests).

    What: `scope` and its parameters in `target` (message UUIDs, a window, a
    publish-time range, a load, a partition's offset range, client keys, or
    dead-lettered findings). How: `way` (audit log, Kafka, source, dead letters).

    Four eyes (replay.services.approval): a request the topic says needs approval starts
    PENDING and moves to QUEUED when a second operator of the topic approves it, or to
    REJECTED / EXPIRED; only a QUEUED one is ever claimed, so nothing pending runs.

    State rules: QUEUED -> RUNNING -> DONE | FAILED, moved only by replay.services.requests and
    claimed with a conditional update, so a redelivered task finds the request
    taken and a finished request is never run again. A RUNNING replay whose
    heartbeat is older than REPLAY_STALE_SECONDS lost its worker: it may be claimed
    again and starts over (its items are replaced). DONE means every message got where
    it belongs; PROBLEMS that every message was tried but some were skipped, failed or
    dead-lettered again, each with its reason in its item (`outcome` counts them).
    """

    class Way(models.TextChoices):
        AUDIT = "audit", "Audit log (republish the stored payload as a new message)"
        KAFKA = "kafka", "Kafka (re-read offsets into Redis)"
        SOURCE = "source", "Source (rebuild from the system of record and republish)"
        DEAD_LETTER = "dead-letter", "Dead letters (reprocess from the dead-letter topic)"
        RESTORE = "restore", "Restore from the system of record (over any version or delete)"

    class Scope(models.TextChoices):
        MESSAGES = "messages", "Messages"
        WINDOW = "window", "Window"
        RANGE = "range", "Publish-time range"
        LOAD = "load", "Load"
        OFFSETS = "offsets", "Partition offsets"
        CLIENTS = "clients", "Client keys"
        FINDINGS = "findings", "Dead-lettered findings"

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting approval"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        PROBLEMS = "problems", "Done with problems"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    LIVE = (Status.PENDING, Status.QUEUED, Status.RUNNING)  # the same request again answers this one

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="replays")
    way = models.CharField(max_length=12, choices=Way.choices)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    target = models.JSONField(default=dict, blank=True)
    # Same topic, way, scope and target: while one such request is active, asking
    # again answers it instead of queueing a copy (a double click replays once).
    fingerprint = models.CharField(max_length=64)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total = models.IntegerField(null=True, blank=True)  # known once the scope is resolved
    processed = models.IntegerField(default=0)
    outcome = models.JSONField(default=dict, blank=True)  # items per outcome
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Four eyes and the dry run.
    size = models.IntegerField(null=True, blank=True)  # messages the scope named when asked
    needs_approval = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)  # a PENDING request expires then
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    preview = models.JSONField(default=dict, blank=True)  # the dry run the requester and the approver saw

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=models.Q(status__in=["pending", "queued", "running"]),
                name="replay_one_active_per_fingerprint",
            )
        ]
        indexes = [
            # the Replays page: WHERE topic_id IN (...) ORDER BY created_at DESC
            models.Index(fields=["topic", "-created_at"], name="replay_topic_time"),
            # the resume task: WHERE status = 'running' AND heartbeat_at < ?
            models.Index(fields=["status", "heartbeat_at"], name="replay_status_heartbeat"),
            # the expiry task: WHERE status = 'pending' AND expires_at < now()
            models.Index(fields=["status", "expires_at"], name="replay_status_expires"),
        ]

    def __str__(self) -> str:
        return f"replay {self.id} {self.way}/{self.scope} ({self.status})"


class ReplayItem(models.Model):
    """One message of a replay and what became of it.

    `original_uuid` is the message replayed or reprocessed; `uuid` the message the
    replay delivered: a new UUID for the audit and source ways (published, its
    PublishedMessage.replay_of is the original), the original's own for the Kafka
    and dead-letter ways (processed into Redis here, so the outcome is final).
    """

    class Outcome(models.TextChoices):
        PUBLISHED = "published", "Published (the feed consumes it)"
        STORED = "stored", "Stored in Redis"
        DELETED = "deleted", "Deleted from Redis"
        INVALID = "invalid", "Stored, failed validation"
        DEAD = "dead", "Dead-lettered again"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    # Outcomes that put the message where it belongs (Redis) right away.
    DELIVERED = (Outcome.STORED, Outcome.DELETED, Outcome.INVALID)

    replay = models.ForeignKey(Replay, on_delete=models.CASCADE, related_name="items")
    original_uuid = models.UUIDField(null=True, blank=True)
    uuid = models.UUIDField(null=True, blank=True)
    key = models.CharField(max_length=512, blank=True)
    partition = models.IntegerField(null=True, blank=True)
    offset = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=9, choices=Outcome.choices)
    detail = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # the reconcile asks whether a replay delivered a missing message: WHERE original_uuid = ANY(?)
            models.Index(fields=["original_uuid"], name="replayitem_original"),
        ]

    def __str__(self) -> str:
        return f"{self.original_uuid} -> {self.uuid} {self.outcome}"
