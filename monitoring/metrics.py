"""Prometheus metrics, read at scrape time from where the truth is kept.

Counts come from the reconciliation state (window counters, findings), so
/metrics agrees with the ledger whichever process did the work. Latencies are
measured in the consume workers and kept as histogram buckets in Redis (one
small pipeline a second per process), because several processes write them.
"""

import logging
from collections.abc import Iterable, Iterator

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from core.clients import redis_client
from kafkacache.latencies import BUCKETS, HISTOGRAMS, LATENCY_KEY
from monitoring.lag import consumer_lag
from monitoring.lag_status import STATUSES
from monitoring.selectors import lag_statuses
from recon.models import Finding, Topic, Window

logger = logging.getLogger(__name__)


def _histogram(name: str, metric: str, groups: Iterable[str]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(metric, f"Consume path {name} latency per batch", labels=["group"])
    client = redis_client()
    for group in groups:
        raw = client.hgetall(LATENCY_KEY.format(name=name, group=group))
        if not raw:
            continue
        data = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
        cumulative, buckets = 0, []
        for bound in (*map(str, BUCKETS), "+Inf"):
            cumulative += int(data.get(bound, 0))
            buckets.append((bound, cumulative))
        family.add_metric([group], buckets, float(data.get("sum", 0)))
    return family


class PipelineCollector(Collector):
    """The pipeline's metrics, of every topic (the scrape token) or of `topics` only (a
    user: recon.access.topics_visible, the rule every list uses)."""

    def __init__(self, topics: QuerySet[Topic] | None = None):
        self.topics = topics

    def collect(self) -> Iterator:
        rows = Topic.objects.all() if self.topics is None else self.topics
        topics = list(rows.values_list("id", "name", "consumer_group"))
        names = {pk: name for pk, name, _ in topics}
        yield from _ledger_counts(names)
        yield from _finding_counts(names)
        yield _consumer_lag(topics)
        yield _lag_status(rows)
        for name, metric in HISTOGRAMS.items():
            yield _histogram(name, metric, sorted({group for _, _, group in topics}))


def _ledger_counts(names: dict[int, str]) -> Iterator:
    """Messages published and deliveries consumed per topic, from the windows' counters."""
    produced = CounterMetricFamily("kafkacache_produced", "Messages published (publish ledger)", labels=["topic"])
    consumed = CounterMetricFamily("kafkacache_consumed", "Deliveries processed (consume ledger)", labels=["topic"])
    totals = (
        Window.objects.filter(topic_id__in=names)
        .values("topic_id")
        .annotate(p=Sum("published_count"), c=Sum("consumed_count"))
    )
    for row in totals:
        produced.add_metric([names[row["topic_id"]]], row["p"] or 0)
        consumed.add_metric([names[row["topic_id"]]], row["c"] or 0)
    yield produced
    yield consumed


def _finding_counts(names: dict[int, str]) -> Iterator:
    """Findings per topic and category (all, and those nobody has taken up), dead letters among them."""
    dead = CounterMetricFamily("kafkacache_dead_lettered", "Messages sent to the dead-letter topic", labels=["topic"])
    findings = CounterMetricFamily(
        "kafkacache_discrepancies", "Findings recorded, by category", labels=["topic", "category"]
    )
    open_findings = GaugeMetricFamily(
        "kafkacache_open_discrepancies", "Findings not yet acknowledged or resolved", labels=["topic", "category"]
    )
    by_category = (
        Finding.objects.filter(topic_id__in=names).values("topic_id", "category", "status").annotate(n=Count("id"))
    )
    totals_by: dict[tuple[str, str], int] = {}
    open_by: dict[tuple[str, str], int] = {}
    for f in by_category:
        key = (names[f["topic_id"]], f["category"])
        totals_by[key] = totals_by.get(key, 0) + f["n"]
        if f["status"] in (Finding.Status.OPEN, Finding.Status.REOPENED):  # nobody has taken it up (again)
            open_by[key] = open_by.get(key, 0) + f["n"]
    for (topic, category), n in sorted(totals_by.items()):
        findings.add_metric([topic, category], n)
        open_findings.add_metric([topic, category], open_by.get((topic, category), 0))
        if category == Finding.Category.DEAD_LETTERED:
            dead.add_metric([topic], n)
    yield dead
    yield findings
    yield open_findings


def _consumer_lag(topics: list[tuple[int, str, str]]) -> GaugeMetricFamily:
    lag = GaugeMetricFamily(
        "kafkacache_consumer_lag", "Messages not yet consumed", labels=["group", "topic", "partition"]
    )
    for _, name, group in topics:
        try:
            for p in consumer_lag(group, [name]):
                lag.add_metric([group, name, str(p.partition)], p.lag)
        except Exception:  # Kafka down: the other metrics still answer
            logger.warning("consumer lag unavailable for %s/%s", group, name, exc_info=True)
    return lag


def _lag_status(topics: QuerySet[Topic]) -> GaugeMetricFamily:
    """Each partition's lag status, of the scraped topics only (like every other family)."""
    status = GaugeMetricFamily(
        "kafkacache_lag_status",
        "Lag status per partition (1 for the current one): ok, warning, stalled, stopped, rewind, unknown",
        labels=["group", "topic", "partition", "status"],
    )
    for topic_status in lag_statuses(topics=topics, now=timezone.now()):
        for judged in topic_status.partitions:
            for name in STATUSES:
                value = 1 if judged.judgement.status == name else 0
                labels = [topic_status.group, topic_status.topic.name, str(judged.partition), name]
                status.add_metric(labels, value)
    return status
