"""Webhook destinations (monitoring.webhooks): https only unless allowed, allow-listed hosts,
no private/loopback/link-local address after resolution, no redirect followed, and failures
that do not map the network. Against real sockets (a local receiver, a closed port)."""

import http.server
import socket
import threading

import pytest

from monitoring import webhooks


@pytest.fixture
def strict(settings):
    """Production's webhook settings, with one allowed host."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.bank.example", ".alerts.example"]
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    return settings


def _refused(url: str, match: str) -> None:
    with pytest.raises(webhooks.DeliveryError, match=match):
        webhooks.post(url, {"x": 1}, secret="s")


def test_only_https_to_an_allowed_host(strict):
    _refused("http://hooks.bank.example/h", "https only")
    _refused("ftp://hooks.bank.example/h", "https only")
    _refused("https://evil.example/h", "not in WEBHOOK_ALLOWED_HOSTS")
    _refused("https://hooks.bank.example.evil.example/h", "not in WEBHOOK_ALLOWED_HOSTS")
    _refused("https://user:pw@hooks.bank.example/h", "credentials")
    assert webhooks._host_allowed("pager.alerts.example", strict.WEBHOOK_ALLOWED_HOSTS)
    assert webhooks._host_allowed("alerts.example", strict.WEBHOOK_ALLOWED_HOSTS)
    assert not webhooks._host_allowed("badalerts.example", strict.WEBHOOK_ALLOWED_HOSTS)


def test_private_loopback_and_link_local_addresses_are_refused_after_resolution(strict):
    strict.WEBHOOK_ALLOWED_HOSTS = ["localhost", "127.0.0.1", "169.254.169.254", "10.0.0.8", "::ffff:127.0.0.1"]
    for url in (
        "https://localhost/h",  # a name: refused for what it resolves to
        "https://127.0.0.1/h",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.8/h",
        "https://[::ffff:127.0.0.1]/h",
    ):
        _refused(url, "private, loopback or link-local")
    assert webhooks._public("93.184.216.34") and not webhooks._public("100.64.0.1")


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.server.hits += 1
        self.send_response(302)
        self.send_header("Location", "ftp://elsewhere.example/")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_redirect_is_not_followed(settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    server.hits = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(webhooks.DeliveryError, match="HTTP 302 from webhook: redirects are not followed"):
            webhooks.post(f"http://127.0.0.1:{server.server_address[1]}/hook", {"x": 1}, secret="s")
        assert server.hits == 1
    finally:
        server.shutdown()
        server.server_close()


def test_failures_say_what_kind_without_the_remotes_details(settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(webhooks.DeliveryError) as refused:
        webhooks.post(f"http://127.0.0.1:{closed}/hook", {"x": 1}, secret="s")
    assert str(refused.value) == "webhook delivery failed: no answer"  # no "Connection refused", no errno
    settings.WEBHOOK_ALLOWED_HOSTS = ["does-not-resolve.invalid"]
    with pytest.raises(webhooks.DeliveryError, match=r"^webhook host does not resolve$"):
        webhooks.post("http://does-not-resolve.invalid/hook", {"x": 1}, secret="s")


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 (well-known prefix) of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254, the metadata service
        "64:ff9b::a00:8",  # NAT64 of 10.0.0.8
        "64:ff9b:1::808:808",  # a local NAT64 prefix, whatever it carries
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:8::1",  # 6to4 of 10.0.0.8
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1
        "::ffff:10.0.0.8",  # IPv4-mapped
        "::1",
        "::",
    ],
)
def test_ipv6_forms_of_a_private_ipv4_address_are_refused(strict, address):
    assert not webhooks._public(address)
    strict.WEBHOOK_ALLOWED_HOSTS = [address]
    _refused(f"https://[{address}]/h", "private, loopback or link-local")  # resolved for real (a literal)


def test_ipv6_forms_of_a_public_ipv4_address_pass():
    for address in ("64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:93.184.216.34", "2606:4700::6810:84e5"):
        assert webhooks._public(address), address
