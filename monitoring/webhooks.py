"""Signed webhook delivery, to allowed destinations only.

The body is JSON; the signature is HMAC-SHA256 over "<timestamp>.<body>" with
the rule's secret, sent as `X-Kafkacache-Signature: v1=<hex>` with the
timestamp in `X-Kafkacache-Timestamp`, so a receiver can reject forgeries and
replays of old bodies. The body is the kafkacache payload, or for a rule in the
Alertmanager format the JSON array Alertmanager's POST /api/v2/alerts takes (the
signature headers are sent too; Alertmanager ignores them).

Where a webhook may go (an alert rule's URL is typed by staff, and the request is
made from inside the bank's network):
- https only, unless WEBHOOK_ALLOW_HTTP;
- the host must be on WEBHOOK_ALLOWED_HOSTS (exact names, or ".example.com" for a
  domain and its subdomains); an empty list allows none;
- every address the name resolves to must be public: private, loopback,
  link-local, reserved and multicast addresses are refused after resolution, and an
  IPv6 address that carries an IPv4 one (IPv4-mapped, -compatible, -translated, NAT64
  64:ff9b::/96, 6to4) is judged by the IPv4 address it reaches; a local NAT64 prefix
  (64:ff9b:1::/48) and Teredo (2001::/32) are refused outright
  (unless WEBHOOK_ALLOW_PRIVATE_NETWORKS, for tests and closed networks), and the
  connection goes to the address that was checked (no second lookup to rebind);
- no redirect is followed (a 3xx is a failed delivery);
- a failure says what kind it was, never the remote's words or the socket error
  (which would map the network's open ports).
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
import urllib.parse

from django.conf import settings

TIMEOUT_S = 5.0


class DeliveryError(Exception):
    pass


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def _host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in (a.lower().rstrip(".") for a in allowed):
        if entry.startswith(".") and (host == entry[1:] or host.endswith(entry)):
            return True
        if host == entry:
            return True
    return False


# IPv6 forms that carry an IPv4 address in their last 32 bits and reach it (through a
# translator, or as the same socket): judged by that IPv4 address.
_LAST_32_BITS = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # NAT64, well-known prefix
        "::/96",  # IPv4-compatible (deprecated; :: and ::1 are in it too)
    )
)
# Refused whatever they carry: a local NAT64 prefix translates into the site's own
# network, and Teredo tunnels to a host behind some NAT through a relay.
_NEVER = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b:1::/48", "2001::/32"))


def _reached(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """The addresses a connection to `ip` ends at: the address, or the IPv4 one it embeds."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    for network in _LAST_32_BITS:
        if ip in network:
            return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:  # 6to4 (2002::/16): the IPv4 address of the relay's far end
        return [ip, ip.sixtofour]
    return [ip]


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and any(ip in network for network in _NEVER):
        return False
    return all(a.is_global and not a.is_multicast for a in _reached(ip))


def destination_check(url: str) -> tuple[urllib.parse.SplitResult, str]:
    """(the URL's parts, the address to connect to), or DeliveryError saying why not."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not settings.WEBHOOK_ALLOW_HTTP):
        raise DeliveryError("webhook URL refused: https only")
    host = parts.hostname or ""
    if not host or parts.username or parts.password:
        raise DeliveryError("webhook URL refused: no host, or credentials in the URL")
    if not _host_allowed(host, settings.WEBHOOK_ALLOWED_HOSTS):
        raise DeliveryError("webhook URL refused: host not in WEBHOOK_ALLOWED_HOSTS")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        raise DeliveryError("webhook host does not resolve") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise DeliveryError("webhook host does not resolve")
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS and not all(_public(a) for a in addresses):
        raise DeliveryError("webhook URL refused: the host resolves to a private, loopback or link-local address")
    return parts, addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, over the pinned address.
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def body_of(payload: dict | list) -> bytes:
    """The bytes a webhook sends and signs (the alert rule page previews exactly these)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def post(url: str, payload: dict | list, *, secret: str) -> int:
    parts, address = destination_check(url)
    body = body_of(payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "kafkacache-alerts/1",
        "X-Kafkacache-Timestamp": timestamp,
        "X-Kafkacache-Signature": sign(secret, timestamp, body),
    }
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    port = parts.port or (443 if parts.scheme == "https" else 80)
    connection = connection_class(parts.hostname or "", port, address, timeout=TIMEOUT_S)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        status = connection.getresponse().status
    except ssl.SSLError:
        raise DeliveryError("webhook delivery failed: TLS handshake or certificate") from None
    except (OSError, http.client.HTTPException):
        raise DeliveryError("webhook delivery failed: no answer") from None
    finally:
        connection.close()
    if 300 <= status < 400:
        raise DeliveryError(f"HTTP {status} from webhook: redirects are not followed")
    if status >= 400:
        raise DeliveryError(f"HTTP {status} from webhook")
    return status
