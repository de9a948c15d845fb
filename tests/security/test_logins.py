"""Logins: the login form locks out after LOGIN_FAILURE_LIMIT wrong passwords (django-axes),
the API throttles bad tokens per address, passwords are validated, API tokens are hashed
with an expiry and can be revoked, and a session ends after its idle time. Against the
real PostgreSQL and Redis (Django's cache: the throttle counters)."""

import datetime as dt
import io

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from recon.models import OperatorAction
from tests.factories import UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

PASSWORD = "correct horse battery staple"
PRODUCTION_BACKENDS = ["axes.backends.AxesStandaloneBackend", *django_settings.AUTHENTICATION_BACKENDS]


@pytest.fixture
def lockout(settings):
    settings.AUTHENTICATION_BACKENDS = PRODUCTION_BACKENDS
    settings.AXES_FAILURE_LIMIT = 5
    from axes.utils import reset

    reset()
    yield
    reset()


def _throttle_counters_clear() -> None:
    from core.clients import redis_client

    client = redis_client()
    for key in client.scan_iter("kc-django:*", count=1000):  # Django's cache keys only
        client.delete(key)


@pytest.fixture
def throttles(settings):
    _throttle_counters_clear()
    settings.API_THROTTLE_ANON_PER_MINUTE = 5
    yield
    _throttle_counters_clear()


def _login(client: Client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_the_login_form_locks_out_after_the_failure_limit_even_for_the_right_password(lockout):
    UserFactory(username="teller", password=PASSWORD)
    client = Client()
    for _ in range(4):
        assert _login(client, "teller", "wrong password").status_code == 200  # the form again
    assert _login(client, "teller", "wrong password").status_code == 429  # the fifth: locked out
    locked = _login(client, "teller", PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # from another address too: the username is locked, not only the address
    other = Client(REMOTE_ADDR="10.9.8.7")
    assert _login(other, "teller", PASSWORD).status_code == 429


def test_a_success_before_the_limit_resets_the_count(lockout):
    UserFactory(username="teller2", password=PASSWORD)
    client = Client()
    for _ in range(4):
        _login(client, "teller2", "wrong password")
    assert _login(client, "teller2", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        _login(client, "teller2", "wrong password")
    assert _login(client, "teller2", PASSWORD).status_code == 302


def test_bad_api_tokens_are_throttled_per_address(throttles):
    user = UserFactory(username="api-user", password=PASSWORD)
    _, token = AuthToken.objects.create(user=user)
    guesser = Client(REMOTE_ADDR="10.1.1.1")
    answers = [guesser.get("/api/topics/", HTTP_AUTHORIZATION=f"Token {i:064x}").status_code for i in range(5)]
    assert set(answers) == {401}  # refused, with the token challenge
    assert guesser.get("/api/topics/", HTTP_AUTHORIZATION="Token 00").status_code == 429
    # even a valid token from that address waits: the address is guessing
    assert guesser.get("/api/topics/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 429
    # another address is not affected; a non-UTF-8 token is refused, not a 500
    other = Client(REMOTE_ADDR="10.1.1.2")
    assert other.get("/api/topics/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert other.get("/api/topics/", HTTP_AUTHORIZATION=b"Token \xff\xfe".decode("latin-1")).status_code == 401


@pytest.mark.parametrize("weak", ["weakpw12", "93718264", "982374650192", "password1234", "api-user-2026"])
def test_weak_passwords_are_refused(weak):
    user = User(username="api-user-2026", email="teller@bank.example")
    with pytest.raises(ValidationError):
        validate_password(weak, user=user)
    validate_password("plum orbit cactus ledger", user=user)


def test_api_tokens_are_hashed_expire_and_can_be_revoked(settings):
    user = UserFactory(username="token-owner", password=PASSWORD)
    out = io.StringIO()
    call_command("api_token", "token-owner", stdout=out)
    token = out.getvalue().strip()
    row = AuthToken.objects.get(user=user)
    assert token not in (row.digest, row.token_key) and len(row.digest) == 128  # only a hash is kept
    assert row.expiry is not None
    assert row.expiry - timezone.now() > dt.timedelta(days=29)
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/topics/").status_code == 200
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    assert api.get("/api/topics/").status_code == 401  # expired: refused
    call_command("api_token", "token-owner", stdout=io.StringIO())
    call_command("api_token", "token-owner", "--revoke", stdout=io.StringIO())
    assert not AuthToken.objects.filter(user=user).exists()
    assert OperatorAction.objects.filter(action="token-revoke", target="user:token-owner").exists()


def test_a_session_ends_after_its_idle_time_and_each_request_extends_it(settings):
    UserFactory(username="idler", password=PASSWORD)
    client = Client()
    assert _login(client, "idler", PASSWORD).status_code == 302
    session = Session.objects.get(session_key=client.session.session_key)
    first_expiry = session.expire_date
    assert first_expiry - timezone.now() <= dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() + dt.timedelta(seconds=60))
    assert client.get(reverse("dashboard:overview")).status_code == 200
    assert Session.objects.get(pk=session.pk).expire_date > timezone.now() + dt.timedelta(seconds=120)  # extended
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - dt.timedelta(seconds=1))  # idle
    answer = client.get(reverse("dashboard:overview"))
    assert answer.status_code == 302 and reverse("login") in answer["Location"]


def test_old_clear_text_tokens_end_at_the_migration_to_knox(settings):
    """config/migrations/0001_sec_tokens_to_knox: an authtoken key (stored in clear) is deleted,
    not carried over into knox; it works nowhere afterwards."""
    import importlib

    from django.apps import apps
    from rest_framework.authtoken.models import Token

    user = UserFactory(username="legacy-api", password=PASSWORD)
    old = Token.objects.create(user=user)
    importlib.import_module("config.migrations.0001_sec_tokens_to_knox").tokens_delete(apps, None)
    assert not Token.objects.exists() and not AuthToken.objects.filter(user=user).exists()
    assert Client(HTTP_AUTHORIZATION=f"Token {old.key}").get("/api/topics/").status_code == 401


def test_failures_from_elsewhere_cannot_lock_the_break_glass_admin_out(lockout):
    """A local superuser is locked per (username, address) and per address: whoever guesses
    from outside locks out their own address only."""
    from dashboard.services import user_ensure

    user_ensure(username="break-glass", password=PASSWORD, role="admin")
    attacker = Client(REMOTE_ADDR="203.0.113.66")
    for _ in range(4):
        assert _login(attacker, "Break-Glass", "guess").status_code == 200
    assert _login(attacker, "break-glass", "guess").status_code == 429  # the attacker's address is locked
    assert _login(attacker, "break-glass", PASSWORD).status_code == 429
    console = Client(REMOTE_ADDR="10.0.0.7")
    assert _login(console, "break-glass", PASSWORD).status_code == 302  # the admin at the console is not
    # an ordinary account is still locked by its name, from any address
    UserFactory(username="teller3", password=PASSWORD)
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5"):
        _login(Client(REMOTE_ADDR=address), "teller3", "guess")
    assert _login(console, "teller3", PASSWORD).status_code == 429


def test_a_name_counts_once_in_every_spelling_for_the_lockout(lockout):
    UserFactory(username="teller4", password=PASSWORD)
    client = Client()
    for spelling in ("teller4", "TELLER4", " Teller4", "tEller4"):
        assert _login(client, spelling, "wrong password").status_code == 200
    assert _login(client, "TeLLeR4", "wrong password").status_code == 429
    assert _login(Client(REMOTE_ADDR="10.9.8.6"), "teller4", PASSWORD).status_code == 429


def test_usernames_are_stored_in_one_spelling_and_a_clash_stops_the_migration():
    import importlib

    from django.apps import apps

    assert UserFactory(username=" Mixed.Case ").username == "mixed.case"
    migration = importlib.import_module("dashboard.migrations.0002_directory_accounts")
    User.objects.filter(username="mixed.case").update(username="Mixed.Case")  # as stored before the migration
    migration.usernames_normalise(apps, None)
    assert User.objects.filter(username="mixed.case").exists()
    User.objects.filter(username="mixed.case").update(username="MIXED.case")
    UserFactory(username="other")
    User.objects.filter(username="other").update(username="mixed.case")  # two that meet once normalised
    with pytest.raises(RuntimeError, match=r"'MIXED\.case' = 'mixed\.case'|'mixed\.case' = 'MIXED\.case'"):
        migration.usernames_normalise(apps, None)


def test_a_client_sent_forwarded_for_is_ignored_without_trusted_proxies(throttles, settings):
    settings.TRUSTED_PROXIES = ()
    guesser = Client(REMOTE_ADDR="10.1.1.1")
    for i in range(5):  # a new "address" in the header each time: still one guesser
        answer = guesser.get(
            "/api/topics/", HTTP_AUTHORIZATION=f"Token {i:064x}", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}"
        )
        assert answer.status_code == 401
    assert (
        guesser.get("/api/topics/", HTTP_X_FORWARDED_FOR="198.51.100.99", HTTP_AUTHORIZATION="Token 00").status_code
        == 429
    )


def test_behind_a_trusted_proxy_each_client_counts_on_its_own(throttles, settings, lockout):
    import ipaddress

    from config.throttles import client_address

    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.1/32"), ipaddress.ip_network("10.0.1.0/24"))
    proxy = "10.0.0.1"
    guesser = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7, 10.0.1.9")  # a spoof, then real
    for i in range(5):
        assert guesser.get("/api/topics/", HTTP_AUTHORIZATION=f"Token {i:064x}").status_code == 401
    assert guesser.get("/api/topics/", HTTP_AUTHORIZATION="Token 00").status_code == 429
    neighbour = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.8")
    user = UserFactory(username="api-user-2", password=PASSWORD)
    _, token = AuthToken.objects.create(user=user)
    assert neighbour.get("/api/topics/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    # the lockout counts the same addresses: the guesser's is locked, the neighbour's is not
    for i in range(5):
        _login(guesser, f"nobody{i}", "guess")
    assert _login(guesser, "api-user-2", PASSWORD).status_code == 429
    assert _login(neighbour, "api-user-2", PASSWORD).status_code == 302

    class Request:
        def __init__(self, remote: str, forwarded: str = ""):
            self.META = {"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}

    assert client_address(Request("198.51.100.1", "10.0.0.1")) == "198.51.100.1"  # not from a proxy: header unread
    assert client_address(Request(proxy, "not-an-ip, 198.51.100.2")) == "198.51.100.2"
    assert client_address(Request(proxy, "198.51.100.2, not-an-ip")) == proxy  # garbage next to the proxy
    assert client_address(Request(proxy, "")) == proxy
