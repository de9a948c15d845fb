"""API throttles (DRF), with rates read from the settings at request time.

- UserThrottle: API_THROTTLE_USER_PER_MINUTE per authenticated user;
- AnonThrottle: API_THROTTLE_ANON_PER_MINUTE per address for anonymous calls;
- BadCredentialsThrottle: API_THROTTLE_ANON_PER_MINUTE failed token checks per
  address (config.auth counts them: DRF answers a bad token before any throttle
  runs, so guessing tokens would otherwise be unlimited);
- HealthThrottle: HEALTH_THROTTLE_PER_MINUTE calls of /healthz per address.
The counters live in Django's cache (Redis: shared by every web process).

An address is the client's as `client_address` finds it: X-Forwarded-For is read only
when the connection comes from one of TRUSTED_PROXIES (default: none), and then only
the hops those proxies added; anything a client writes into the header itself is
ignored. The login lockout (django-axes: AXES_CLIENT_IP_CALLABLE) uses the same answer.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().split("%")[0])
    except ValueError:
        return False
    return any(ip in network for network in settings.TRUSTED_PROXIES)


def client_address(request: HttpRequest) -> str:
    """The nearest address no trusted proxy stands for: REMOTE_ADDR, unless it is a trusted
    proxy; then X-Forwarded-For read from the right, past every trusted proxy."""
    remote = request.META.get("REMOTE_ADDR", "")
    if not _trusted(remote):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    nearest = remote
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop.split("%")[0])
        except ValueError:
            return nearest  # not an address: the proxy next to it is as far as anyone vouches
        if not _trusted(hop):
            return hop
        nearest = hop
    return nearest


class _ClientAddress:
    def get_ident(self, request) -> str:
        return client_address(request)


class UserThrottle(_ClientAddress, UserRateThrottle):
    def get_rate(self) -> str:
        return f"{settings.API_THROTTLE_USER_PER_MINUTE}/min"


class AnonThrottle(_ClientAddress, AnonRateThrottle):
    def get_rate(self) -> str:
        return f"{settings.API_THROTTLE_ANON_PER_MINUTE}/min"


class BadCredentialsThrottle(_ClientAddress, SimpleRateThrottle):
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


class HealthThrottle(_ClientAddress, SimpleRateThrottle):
    """HEALTH_THROTTLE_PER_MINUTE calls of /healthz per address (config.health)."""

    scope = "healthz"

    def get_rate(self) -> str:
        return f"{settings.HEALTH_THROTTLE_PER_MINUTE}/min"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
