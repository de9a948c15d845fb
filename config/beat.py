"""Celery beat for production: exactly one beat sends tasks, and it says it is alive.

Two beats started by mistake (a second host, a restarted unit that did not stop)
would queue every periodic task twice. So the scheduler takes a lock in Redis
(`kc:lock:beat`, BEAT_LOCK_SECONDS) before it sends anything and renews it every
tick; a beat that does not hold it waits in standby and takes over when the
holder has been gone for the lock's lifetime. Every tick of the holder writes
`kc:beat:heartbeat` (epoch seconds), which the beat health check reads.

Run with: celery -A config beat --scheduler config.beat:SingleBeatScheduler
"""

import contextlib
import logging
import time
import uuid

from celery.beat import PersistentScheduler
from django.conf import settings
from redis.exceptions import RedisError

from core.clients import redis_client

logger = logging.getLogger(__name__)

LOCK_KEY = "kc:lock:beat"
HEARTBEAT_KEY = "kc:beat:heartbeat"

# Renew only if we still hold it: a beat whose lock expired must not steal it back.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"


def tick_seconds() -> float:
    """How often the holder renews the lock and a standby beat tries it: a third of its lifetime."""
    return max(settings.BEAT_LOCK_SECONDS / 3, 1.0)


class SingleBeatScheduler(PersistentScheduler):
    def __init__(self, *args, **kwargs) -> None:
        self.lock_token = uuid.uuid4().hex
        self.holds_lock = False
        super().__init__(*args, **kwargs)

    def lock_hold(self) -> bool:
        """Take or renew the beat lock; answer whether this beat holds it now."""
        client = redis_client()
        ttl_ms = settings.BEAT_LOCK_SECONDS * 1000
        try:
            held = bool(client.eval(_RENEW, 1, LOCK_KEY, self.lock_token, ttl_ms)) or bool(
                client.set(LOCK_KEY, self.lock_token, nx=True, px=ttl_ms)
            )
            if held:
                client.set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=settings.BEAT_LOCK_SECONDS)
        except RedisError as exc:
            # Redis away: stop sending rather than risk a second beat sending too.
            logger.error("beat lock not renewed (%s): standing by", exc)
            held = False
        if held != self.holds_lock:
            logger.warning("beat %s: %s", self.lock_token[:8], "active (holds the lock)" if held else "standby")
        self.holds_lock = held
        return held

    def tick(self, *args, **kwargs) -> float:
        if not self.lock_hold():
            return tick_seconds()
        return min(super().tick(*args, **kwargs), tick_seconds())

    def close(self) -> None:
        super().close()
        if self.holds_lock:  # hand over at once instead of after the lock's lifetime
            with contextlib.suppress(RedisError):
                redis_client().eval(
                    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                    1,
                    LOCK_KEY,
                    self.lock_token,
                )
