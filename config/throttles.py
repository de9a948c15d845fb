"""API throttles (DRF), with rates read from the settings at request time.

- UserThrottle: API_THROTTLE_USER_PER_MINUTE per authenticated user;
- AnonThrottle: API_THROTTLE_ANON_PER_MINUTE per address for anonymous calls;
- BadCredentialsThrottle: API_THROTTLE_ANON_PER_MINUTE failed token checks per
  address (config.auth counts them: DRF answers a bad token before any throttle
  runs, so guessing tokens would otherwise be unlimited).
The counters live in Django's cache (Redis: shared by every web process).
"""

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class UserThrottle(UserRateThrottle):
    def get_rate(self) -> str:
        return f"{settings.API_THROTTLE_USER_PER_MINUTE}/min"


class AnonThrottle(AnonRateThrottle):
    def get_rate(self) -> str:
        return f"{settings.API_THROTTLE_ANON_PER_MINUTE}/min"


class BadCredentialsThrottle(SimpleRateThrottle):
    scope = "bad-credentials"

    def get_rate(self) -> str:
        return f"{settings.API_THROTTLE_ANON_PER_MINUTE}/min"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def exhausted(self, request) -> bool:
        """Too many failures from this address in the window (counts nothing)."""
        self.key = self.get_cache_key(request, None)
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]
        return len(self.history) >= self.num_requests

    def failure(self, request) -> None:
        self.exhausted(request)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
