"""Signed webhook delivery.

The body is JSON; the signature is HMAC-SHA256 over "<timestamp>.<body>" with
the rule's secret, sent as `X-Kafkacache-Signature: v1=<hex>` with the
timestamp in `X-Kafkacache-Timestamp`, so a receiver can reject forgeries and
replays of old bodies. The body is the kafkacache payload, or for a rule in the
Alertmanager format the JSON array Alertmanager's POST /api/v2/alerts takes (the
signature headers are sent too when the rule has a secret; Alertmanager ignores them).
"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

TIMEOUT_S = 5.0


class DeliveryError(Exception):
    pass


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def post(url: str, payload: dict | list, *, secret: str) -> int:
    if not url.startswith(("http://", "https://")):
        raise DeliveryError(f"refusing non-HTTP webhook URL {url!r}")
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "kafkacache-alerts/1",
            "X-Kafkacache-Timestamp": timestamp,
            "X-Kafkacache-Signature": sign(secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} from webhook") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DeliveryError(f"webhook unreachable: {exc}") from exc
