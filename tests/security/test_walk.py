"""The security walk: every URL of the site and API, filled with real ids, as each kind of person.

(The anonymous walk is tests/dashboard/test_urls.py; these reuse its enumeration.)
- a viewer: no write succeeds on any URL with any method, and nothing changes in the
  database or the cache;
- an operator of another topic: 404/403 on each of topic A's objects and payloads,
  and nothing of A in any page or API answer;
- every POST form carries a CSRF token, and a post without it is refused (the API too);
- filters and search fields: SQL- and script-injection strings never cause a 500,
  never come back unescaped, never widen what the caller sees;
- secrets (Django key, field and audit encryption keys, webhook secret, database
  password) are in no response, not even the admin's;
- card and account numbers are masked in every answer to someone without payload
  permission (and the operator's message page shows the audit payload masked too).
"""

import json
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client

from core.clients import redis_client
from recon.models import Finding, OperatorAction
from recon.services.feed import feed_topics_ensure
from tests.dashboard.conftest import CARD
from tests.url_walk import OPEN_BY_DESIGN

from .conftest import ACCOUNT, concrete_paths, topic_a_paths

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

WRITES = ("post", "put", "patch", "delete")
OPEN = {"/" + p for p in OPEN_BY_DESIGN}
# A person's own account, which every role may change: their API tokens (tests/dashboard/test_api_tokens.py).
OWN_ACCOUNT = {"/account/tokens/"}
INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE recon_finding; --",
    "x') UNION SELECT username, password FROM auth_user --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "nul\x00byte",
    "%27%20OR%201=1",
]
RAW_SCRIPT = (b"<script>alert(1)</script>", b"<img src=x onerror")


def _client(user=None, *, csrf: bool = False) -> Client:
    client = Client(raise_request_exception=False, enforce_csrf_checks=csrf)
    if user is not None:
        client.force_login(user)
    return client


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _write(client: Client, method: str, path: str, body: dict):
    if path.startswith("/api/"):
        return getattr(client, method)(path, data=json.dumps(body), content_type="application/json")
    if method == "post":
        return client.post(path, body)
    return getattr(client, method)(path)


def _snapshot() -> dict[str, list[str]]:
    """Every row of every table people could change (the audit trail, which records refusals, and
    sessions excepted), and every cache key with its content."""
    rows: dict[str, list[str]] = {}
    for model in apps.get_models():
        if model._meta.app_label in ("sessions", "admin") or model is OperatorAction:
            continue
        rows[model._meta.label] = sorted(repr(r) for r in model._default_manager.values_list())
    cache = redis_client()
    rows["redis"] = sorted(repr((k, cache.dump(k))) for k in cache.scan_iter("kc:*"))
    return rows


def test_a_viewer_writes_nothing_anywhere(world, people, topic_a):
    client = _client(people["viewer"])
    feed_topics_ensure()  # the feed's own topic rows exist in any running system (the feed APIs make them)
    before = _snapshot()
    body = {"comment": "x", "reason": "x", "topic": topic_a.name, "event": "delete", "key": "client:1", "source": "ods"}
    succeeded = []
    for path in concrete_paths(world):
        if path in OPEN or path in OWN_ACCOUNT:
            continue
        for method in WRITES:
            response = _write(client, method, path, body)
            status = response.status_code
            refused = status in (400, 403, 404, 405) or (
                status == 302 and response["Location"].startswith(("/accounts/login/", "/admin/login/"))
            )
            if not refused:
                succeeded.append((method.upper(), path, status))
    assert succeeded == []
    after = _snapshot()
    assert {k: (before[k], after[k]) for k in before if before[k] != after[k]} == {}
    assert OperatorAction.objects.filter(user=people["viewer"], outcome="refused").exists()  # refusals are recorded


def test_an_operator_of_another_topic_gets_404_or_403_on_its_objects_and_payloads(world, operator_b, topic_a):
    client = _client(operator_b)
    leaks = []
    for path in topic_a_paths(world):
        for method in ("get", "post"):
            response = _write(client, method, path, {"comment": "x"}) if method == "post" else client.get(path)
            if response.status_code not in (403, 404, 405):
                leaks.append((method.upper(), path, response.status_code))
    assert leaks == []
    # nor anything of A in any page or answer they may open
    secrets_of_a = [topic_a.name, world.retrieval_key, str(world.message_uuid)]
    for path in concrete_paths(world):
        if path.startswith("/admin/"):
            continue
        content = _body(client.get(path)).decode(errors="replace")
        assert not [s for s in secrets_of_a if s in content], path


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"method": (attrs.get("method") or "get").lower(), "action": attrs.get("action"), "inputs": []}
            )
        elif tag in ("input", "select", "textarea") and self.forms and attrs.get("name"):
            self.forms[-1]["inputs"].append(attrs["name"])


def _forms(content: bytes) -> list[dict]:
    parser = _Forms()
    parser.feed(content.decode(errors="replace"))
    return parser.forms


def _pages(world) -> list[str]:
    return [p for p in concrete_paths(world) if not p.startswith(("/api/", "/assets/", "/metrics", "/healthz"))]


def test_every_post_form_has_a_csrf_token_and_a_post_without_it_is_refused(world, people, data):
    checked = set()
    for role in ("operator", "admin"):
        reader, forger = _client(people[role]), _client(people[role], csrf=True)
        for path in _pages(world):
            response = reader.get(path)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            for form in _forms(response.content):
                if form["method"] != "post":
                    continue
                assert "csrfmiddlewaretoken" in form["inputs"], (role, path, form)
                action = urlsplit(urljoin(path, form["action"] or "")).path
                if (role, action) in checked or action in OPEN:
                    continue
                checked.add((role, action))
                forged = forger.post(action, {name: "x" for name in form["inputs"] if name != "csrfmiddlewaretoken"})
                assert forged.status_code == 403, (role, path, action, forged.status_code)
    assert len(checked) >= 5  # the walk reached the acknowledge, load, replay and admin forms
    # the API with a session cookie and no CSRF token: refused, nothing acknowledged
    api = _client(people["operator"], csrf=True)
    response = api.post(f"/api/findings/{world.finding_pk}/acknowledge/", {"comment": "x"})
    assert response.status_code == 403
    assert Finding.objects.get(pk=world.finding_pk).status == Finding.Status.OPEN


def _executable(response) -> bool:
    """Could a browser run markup in this answer? HTML yes; JSON (an API error may quote the bad
    value back) only if the browser were allowed to sniff it as HTML."""
    kind = response.get("Content-Type", "")
    if kind.startswith("application/json"):
        return response.get("X-Content-Type-Options") != "nosniff"
    return True


def _filter_params(world, client: Client) -> dict[str, set[str]]:
    """Query parameters each list page's GET forms and each API list's schema name."""
    params: dict[str, set[str]] = {}
    for path in _pages(world):
        response = client.get(path)
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            for form in _forms(response.content):
                if form["method"] == "get":
                    params.setdefault(path, set()).update(form["inputs"])
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, operations in schema["paths"].items():
        if "{" in path or "get" not in operations:
            continue
        names = {p["name"] for p in operations["get"].get("parameters", []) if p.get("in") == "query"}
        if names:
            params[path] = names
    return params


def test_filters_and_search_fields_withstand_injection(world, operator_b, topic_a):
    client = _client(operator_b)
    params = _filter_params(world, client)
    assert "/findings/" in params and "/api/findings/" in params and "topic" in params["/api/findings/"]
    before = Finding.objects.count()
    failures = []
    for path, names in sorted(params.items()):
        for name in sorted(names):
            for evil in INJECTIONS:
                response = client.get(path, {name: evil})
                content = _body(response)
                if response.status_code >= 500:
                    failures.append((path, name, evil, response.status_code))
                elif _executable(response) and any(raw in content for raw in RAW_SCRIPT):
                    failures.append((path, name, evil, "unescaped"))
                elif topic_a.name.encode() in content:
                    failures.append((path, name, evil, "widened to topic A"))
    assert failures == []
    assert Finding.objects.count() == before


def test_no_secret_in_any_response_even_the_admins(world, people, secrets):
    client = _client(people["admin"])
    database = settings.DATABASES["default"]
    forbidden = {**secrets, "database url": f"{database['USER']}:{database['PASSWORD']}@"}
    found = []
    for path in concrete_paths(world):
        if path in OPEN:
            continue
        content = _body(client.get(path)).decode(errors="replace")
        found += [(name, path) for name, value in forbidden.items() if value in content]
    assert found == []


@pytest.mark.parametrize("role", ["viewer", "operator_b"])
def test_card_and_account_numbers_masked_everywhere_without_payload_permission(world, people, operator_b, role):
    client = _client(operator_b if role == "operator_b" else people["viewer"])
    shown = []
    spaced = " ".join(CARD[i : i + 4] for i in range(0, 16, 4))
    for path in concrete_paths(world):
        content = _body(client.get(path)).decode(errors="replace")
        shown += [(path, number) for number in (CARD, spaced, ACCOUNT) if number in content]
    assert shown == []


def test_payload_permission_shows_numbers_and_the_audit_view_stays_masked(world, people):
    operator = _client(people["operator"])  # operates topic A: payload permission
    cache = operator.get(f"/api/cache/{world.retrieval_key}").json()
    assert CARD in json.dumps(cache)  # the walk above would have seen it, had it leaked
    page = operator.get(f"/messages/{world.message_uuid}/").content.decode()
    assert "Grace Hopper" in page  # the audit payload is shown...
    assert CARD not in page and ACCOUNT not in page  # ...masked


def test_unknown_api_urls_and_nul_bytes_get_the_api_error_shape(world, people):
    client = _client(people["viewer"])
    for path, status in (
        ("/api/no-such-endpoint", 404),
        ("/api/cache/a%00b", 400),
        ("/api/recon/runs?topic=a%00", 400),
    ):
        response = client.get(path)
        assert response.status_code == status, path
        assert set(response.json()["error"]) == {"code", "message", "details"}
    page = client.get("/findings/", {"key": "a\x00b"})  # pages: the filter form refuses it and says so
    assert page.status_code == 200 and b"Filter not applied" in page.content


def test_admin_object_permission_urls_with_a_non_numeric_id_are_404(world, people, topic_a):
    client = _client(people["admin"])
    for kind in ("user", "group"):
        assert client.get(f"/admin/recon/topic/{topic_a.pk}/permissions/{kind}-manage/x/").status_code == 404
