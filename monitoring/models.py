"""Alert rules, the alerts they raise, and the notifications sent for them.

State rules
- A rule fires for a topic when, in its evaluation, findings matching it over
  the last `window_minutes` reach `threshold` (kind DISCREPANCY), or the
  consumer lag of the topic's group reaches `threshold` messages (kind LAG), or
  `threshold` breaks of the topic are open past the SLA of their severity
  (kind BREAK_SLA, recon.breaks), or `threshold` partitions of the topic's group
  are judged WARNING / STALLED / STOPPED / REWIND (kind LAG_STATUS, monitoring.lag_status).
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

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.DISCREPANCY)
    topic = models.ForeignKey(
        Topic, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: every topic.", related_name="+"
    )
    category = models.CharField(
        max_length=16, choices=Finding.Category.choices, blank=True, help_text="Empty: any category."
    )
    min_severity = models.CharField(max_length=8, choices=Finding.Severity.choices, default=Finding.Severity.WARNING)
    threshold = models.PositiveIntegerField(default=1)
    window_minutes = models.PositiveIntegerField(default=15)
    quiet_minutes = models.PositiveIntegerField(default=60)
    email_to = models.CharField(max_length=500, blank=True, help_text="Comma-separated addresses.")
    webhook_url = models.URLField(blank=True)
    webhook_secret = models.CharField(max_length=200, blank=True, help_text="HMAC-SHA256 key for the signature.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    value = models.BigIntegerField(help_text="Findings in the window, or lag, at the last evaluation.")
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

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=8, choices=Channel.choices)
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
