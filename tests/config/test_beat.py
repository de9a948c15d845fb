"""Exactly one beat sends tasks: the Redis lock of config/beat.py, against the real Redis."""

import pytest

from config.beat import HEARTBEAT_KEY, LOCK_KEY, SingleBeatScheduler
from config.celery import app
from config.health import check_beat

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def beats(tmp_path, cache):
    made = [SingleBeatScheduler(app=app, schedule_filename=str(tmp_path / f"beat-{i}"), lazy=True) for i in (1, 2)]
    yield made
    cache.delete(LOCK_KEY, HEARTBEAT_KEY)


def test_a_second_beat_stands_by_until_the_first_is_gone(beats, cache, settings):
    first, second = beats
    with pytest.raises(RuntimeError, match="no beat heartbeat"):
        check_beat()
    assert first.lock_hold() is True
    assert second.lock_hold() is False
    assert second.tick() == pytest.approx(settings.BEAT_LOCK_SECONDS / 3)  # standby: sends nothing
    assert first.lock_hold() is True  # renewing keeps it
    assert check_beat().startswith("heartbeat")
    cache.delete(LOCK_KEY)  # the first beat's host died and its lock expired
    assert second.lock_hold() is True
    assert first.lock_hold() is False  # a beat that lost the lock does not take it back


def test_a_closing_beat_hands_over_at_once(beats):
    first, second = beats
    assert first.lock_hold()
    first.close()
    assert second.lock_hold()
