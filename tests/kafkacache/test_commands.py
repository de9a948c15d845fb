"""The management commands ops run outside Celery: seed_source, kafka_topics, produce_load, consume."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from recon.models import Load, Topic

from .conftest import cached_keys

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_source_creates_once_and_resets_on_request():
    assert "40 clients" in run("seed_source", "--clients", "40", "--reset")
    assert "exists (40 clients): left alone" in run("seed_source", "--clients", "10")
    assert "10 clients" in run("seed_source", "--clients", "10", "--reset")


def test_kafka_topics_also_makes_the_recon_topic_rows(feed):
    output = run("kafka_topics")
    assert f"{feed.KAFKA_TOPIC_BULK}: exists" in output
    assert Topic.objects.get(name=feed.KAFKA_TOPIC_BULK).kind == "bulk"
    assert Topic.objects.get(name=feed.KAFKA_TOPIC_CHANGE).consumer_group == feed.KAFKA_CONSUMER_GROUP


def test_produce_load_then_consume_with_progress_and_summaries(feed, cache):
    run("seed_source", "--clients", "120", "--reset")
    output = run("produce_load", "--source", "ods", "--clients", "1,2,3")
    assert "load done" in output and "published 3" in output and "[####" in output
    assert Load.objects.get().published == 3
    output = run("consume", "--drain", "--max-seconds", "60")
    assert "consumer stopped:" in output and "stored 3" in output
    assert cached_keys(cache) == {"client:1", "client:2", "client:3"}
    with pytest.raises(CommandError, match="unknown source"):
        run("produce_load", "--source", "db2")
    with pytest.raises(CommandError, match="comma-separated integers"):
        run("produce_load", "--clients", "a,b")
