"""Alert rules, the alerts they raise, and the notifications sent for them.

State rules
- A rule fires for a topic when, in its evaluation, its measure reaches `threshold`.
  Kind DISCREPANCY counts findings matching it (its categories, at least its
  severity, older than its grace): new findings over the last `window_minutes`
  (measure NEW), findings still open (measure OPEN), or the age in minutes of the
  oldest open one (measure AGE). Kind LAG: the consumer lag of the topic's group
  reaches `threshold` messages. Kind BREAK_SLA: `threshold` findings of the topic
  (its categories, at least its severity) are open past the SLA of their severity
  (recon.selectors.findings). Kind LAG_STATUS: `threshold` partitions of the topic's group are
  judged WARNING / STALLED / STOPPED / REWIND (monitoring.lag_status). Kind NOT_REPROVED: the
  topic's keys were last re-proved (a whole-topic cache leg started, recon.selectors.runs.keys_reproved)
  `threshold` hours ago or more, or never while the topic is that old. Every kind is
  evaluated by the same path (monitoring.services.alerts_evaluate).
- `categories` is the list of finding categories a rule counts; the single
  `category` is the older form of the same thing (read through `category_list()`,
  cleared when a rule is saved from the form or the API).
- A Silence (a maintenance window) over a rule and/or topic holds back the
  notifications of the alerts it covers while it lasts; the alerts are still
  raised and recorded (history keeps which silence held them).
- There is at most one live (OPEN or ACKNOWLEDGED) alert per rule and topic: a
  burst of findings raises one alert, not one per message. While it stays live
  a firing rule only updates it; an OPEN alert is notified again only after the
  rule's quiet period; an ACKNOWLEDGED one is not notified again.
- When an evaluation finds the rule no longer firing, the alert is RESOLVED.
- Only monitoring.services changes these states.
"""

from django.conf import settings
from django.db import models

from recon.models import Finding, Topic


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        DISCREPANCY = "discrepancy", "Discrepancies (count of findings over a window)"
        LAG = "lag", "Consumer lag (messages)"
        BREAK_SLA = "break-sla", "Breaks open past their severity's SLA"
        LAG_STATUS = "lag-status", "Lag status (partitions not OK: growing, stalled, stopped, rewound)"
        NOT_REPROVED = "not-reproved", "Keys not re-proved (hours since a whole-topic cache leg started)"

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.DISCREPANCY)
    topic = models.ForeignKey(
        Topic, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: every topic.", related_name="+"
    )
    category = models.CharField(
        max_length=16, choices=Finding.Category.choices, blank=True, help_text="Empty: any category."
    )

    class Measure(models.TextChoices):
        NEW = "new", "New findings over the window (count)"
        OPEN = "open", "Findings still open (count)"
        AGE = "age", "Age of the oldest open finding (minutes)"

    class WebhookFormat(models.TextChoices):
        SIGNED = "signed", "kafkacache JSON, HMAC-signed"
        ALERTMANAGER = "alertmanager", "Alertmanager API v2 (POST /api/v2/alerts)"

    categories = models.JSONField(
        default=list, blank=True, help_text="Finding categories to count (empty with no category: any)."
    )
    measure = models.CharField(max_length=8, choices=Measure.choices, default=Measure.NEW)
    min_severity = models.CharField(max_length=8, choices=Finding.Severity.choices, default=Finding.Severity.WARNING)
    threshold = models.PositiveIntegerField(
        default=1, help_text="Findings (new, open), minutes (age), messages (lag) or hours (keys not re-proved)."
    )
    window_minutes = models.PositiveIntegerField(default=15)
    grace_minutes = models.PositiveIntegerField(
        default=0, help_text="Findings younger than this are not counted: the loop may still close them itself."
    )
    quiet_minutes = models.PositiveIntegerField(default=60)
    email_to = models.CharField(max_length=500, blank=True, help_text="Comma-separated addresses.")
    webhook_url = models.URLField(blank=True)
    webhook_format = models.CharField(max_length=12, choices=WebhookFormat.choices, default=WebhookFormat.SIGNED)
    webhook_secret = models.CharField(max_length=200, blank=True, help_text="HMAC-SHA256 key for the signature.")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True, null=True)

    # What a person sets, in the order the forms show it (page form, admin, API).
    EDITABLE = (
        "name",
        "enabled",
        "kind",
        "topic",
        "categories",
        "measure",
        "min_severity",
        "threshold",
        "window_minutes",
        "grace_minutes",
        "quiet_minutes",
        "email_to",
        "webhook_url",
        "webhook_format",
        "webhook_secret",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def category_list(self) -> list[str]:
        """The categories the rule counts; empty means any."""
        return list(self.categories or ([self.category] if self.category else []))


class Alert(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    value = models.BigIntegerField(help_text="Findings in the window, or lag, at the last evaluation.")
    # Of the findings that fired it, at the last evaluation: {"severity": the highest, "category":
    # theirs, comma-separated}. Empty for a rule that counts no finding (lag); notifications route on it.
    labels = models.JSONField(default=dict, blank=True)
    evaluations = models.PositiveIntegerField(default=1, help_text="Evaluations that found the rule firing.")
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    last_notified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    silenced_by = models.ForeignKey(
        "Silence", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts", help_text="Held back by."
    )

    class Meta:
        ordering = ["-last_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "topic"],
                condition=models.Q(status__in=["open", "acknowledged"]),
                name="alert_one_live_per_rule_topic",
            )
        ]
        # alerts page: WHERE topic_id IN (...) ORDER BY last_at DESC
        indexes = [models.Index(fields=["topic", "-last_at"], name="alert_topic_time")]

    def __str__(self) -> str:
        return f"{self.rule} on {self.topic} ({self.status})"


class Notification(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Event(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    event = models.CharField(max_length=8, choices=Event.choices, default=Event.FIRING)
    target = models.CharField(max_length=500)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.channel} to {self.target} ({self.status})"


class LagSample(models.Model):
    """One look at a group's committed offset and the end offset of one partition.

    Written by monitoring.services.lag_sample (beat, every LAG_SAMPLE_SECONDS); the
    last LAG_WINDOW_SAMPLES per partition are the sliding window monitoring.lag_status
    judges. Older ones are deleted by the same task.
    """

    group = models.CharField(max_length=255)
    topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    committed = models.BigIntegerField()  # negative: never committed
    end = models.BigIntegerField()
    lag = models.BigIntegerField()
    active = models.BooleanField(null=True)  # the group had members (None: not known)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at"]
        # the window of a group: WHERE group = ? AND topic = ? ORDER BY at DESC
        indexes = [models.Index(fields=["group", "topic", "-at"], name="lagsample_group_topic_time")]

    def __str__(self) -> str:
        return f"{self.group} {self.topic}/{self.partition} lag {self.lag} at {self.at:%H:%M:%S}"


class Silence(models.Model):
    """A maintenance window: no notifications for the alerts it covers while it lasts.

    Empty rule and topic cover everything; ending a silence early sets `ends_at` to now.
    """

    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="silences")
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        # the evaluator: WHERE starts_at <= now AND ends_at > now
        indexes = [models.Index(fields=["ends_at", "starts_at"], name="silence_active")]

    def __str__(self) -> str:
        scope = " / ".join(filter(None, [str(self.rule or ""), str(self.topic or "")])) or "everything"
        return f"silence of {scope} {self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%H:%M}"
