"""Login with the bank's directory: Debian's slapd started for the test (StartTLS on a loopback
port), django-auth-ldap through the ordinary login form, directory groups -> roles and topic grants.

Local and directory accounts stay apart (a directory entry named like the break-glass
admin takes nothing over), a name counts in one spelling (lockout and lookup), and a
person removed or disabled in the directory loses their session, API token and grants:
at their next request, and at the periodic check.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from guardian.models import UserObjectPermission
from knox.models import AuthToken

from config.directory import ldap_settings
from dashboard.directory import _admission_key
from dashboard.models import DirectoryAccount
from dashboard.services import user_ensure
from dashboard.tasks import directory_accounts_check_task
from recon.access import can_operate, can_view
from recon.models import OperatorAction
from recon.services.feed import feed_topics_ensure

from .directory import PEOPLE, Directory, group_dn, make_tls, tmp_directory
from .helpers import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

PASSWORDS = {
    name: f"pw-{name}-{uuid.uuid4().hex[:8]}" for name in ("vera", "otto", "ada", "nobody", "carla", "breakglass")
}
BREAK_GLASS_LOCAL_PASSWORD = "local-only-pw-123"
DISABLED = "(employeeType=disabled)"


@pytest.fixture(scope="module")
def slapd():
    root = tmp_directory()
    directory = Directory(root / "slapd")
    try:
        directory.start(tls=make_tls(root / "tls"))
        directory.seed(
            PASSWORDS,
            {
                "kc-viewers": ["vera", "otto", "carla"],
                "kc-operators": ["otto"],
                "kc-admins": ["ada", "breakglass"],  # an entry named like the local break-glass admin
                "cards-ops": ["carla"],
                "unrelated": ["nobody"],
            },
        )
        yield directory
    finally:
        directory.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def directory_settings(settings, slapd, feed):
    topics = feed_topics_ensure()
    env = {
        "AUTH_LDAP_SERVER_URI": slapd.uri,
        "AUTH_LDAP_CA_FILE": str(slapd.tls_ca),
        "AUTH_LDAP_BIND_DN": slapd.service_dn,
        "AUTH_LDAP_BIND_PASSWORD": slapd.service_password,
        "AUTH_LDAP_USER_SEARCH_BASE": PEOPLE,
        "AUTH_LDAP_GROUP_SEARCH_BASE": group_dn("x").split(",", 1)[1],
        "AUTH_LDAP_ROLE_GROUPS": json.dumps(
            {"viewer": group_dn("kc-viewers"), "operator": group_dn("kc-operators"), "admin": group_dn("kc-admins")}
        ),
        "AUTH_LDAP_DISABLED_FILTER": DISABLED,
        "AUTH_LDAP_TOPIC_GROUPS": json.dumps(
            {
                group_dn("kc-viewers"): {topics["bulk"].name: "viewer", topics["change"].name: "viewer"},
                group_dn("kc-operators"): {topics["bulk"].name: "operator"},
                group_dn("cards-ops"): {topics["change"].name: "operator"},
            }
        ),
    }
    for name, value in ldap_settings(env).items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = ["dashboard.logins.DirectoryBackend", *settings.AUTHENTICATION_BACKENDS]
    settings.DIRECTORY_CHECK_CACHE_SECONDS = 0  # every request asks the directory (the cache has its own test)
    return topics


def _login(client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_directory_people_log_in_through_the_form_with_their_groups_roles(client, directory_settings):
    topics = directory_settings
    response = _login(client, "otto", PASSWORDS["otto"])
    assert response.status_code == 302, response.content[:500]
    assert client.get("/").status_code == 200
    otto = User.objects.get(username="otto")
    assert {g.name for g in otto.groups.all()} == {"operator"}
    assert (otto.email, otto.has_usable_password(), otto.is_staff) == ("otto@bank.test", False, False)
    assert DirectoryAccount.objects.get(user=otto).source == "ldap"
    assert can_operate(otto, topics["bulk"]) and can_view(otto, topics["change"])
    assert not can_operate(otto, topics["change"])

    carla = _login(client, "carla", PASSWORDS["carla"])
    assert carla.status_code == 302
    carla_user = User.objects.get(username="carla")
    assert {g.name for g in carla_user.groups.all()} == {"viewer"}
    assert can_operate(carla_user, topics["change"]) and not can_operate(carla_user, topics["bulk"])

    assert _login(client, "ada", PASSWORDS["ada"]).status_code == 302
    ada = User.objects.get(username="ada")
    assert ada.is_staff and {g.name for g in ada.groups.all()} == {"admin"}


def test_wrong_password_and_people_in_no_mapped_group_are_refused(client, directory_settings):
    assert _login(client, "vera", "not-her-password").status_code == 200  # the form again, with an error
    assert _login(client, "nobody", PASSWORDS["nobody"]).status_code == 200  # authenticated, but no role group
    assert _login(client, "mallory", "whatever").status_code == 200
    assert not User.objects.filter(username__in=["vera", "nobody", "mallory"]).exists()


def test_a_grant_removed_in_the_directory_is_gone_at_the_next_login(client, directory_settings, settings):
    topics = directory_settings
    assert _login(client, "otto", PASSWORDS["otto"]).status_code == 302
    assert can_operate(User.objects.get(username="otto"), topics["bulk"])
    settings.KAFKACACHE_LDAP_TOPIC_GROUPS = {group_dn("kc-viewers"): {topics["bulk"].name: "viewer"}}
    client.logout()
    assert _login(client, "otto", PASSWORDS["otto"]).status_code == 302
    otto = User.objects.get(username="otto")
    assert can_view(otto, topics["bulk"]) and not can_operate(otto, topics["bulk"])
    assert not can_view(otto, topics["change"])


def test_local_break_glass_admin_still_logs_in_with_the_directory_on(client, directory_settings):
    user_ensure(username="break-glass", password="local-only-pw-123", role="admin")
    assert _login(client, "break-glass", "local-only-pw-123").status_code == 302
    assert User.objects.get(username="break-glass").has_usable_password()
    assert client.get("/").status_code == 200  # a local account: the directory is never asked about it


def test_a_directory_entry_named_like_a_local_account_takes_nothing_over(client, directory_settings):
    """The directory has "breakglass" (in the admins' group, its own password); so has this
    application, as its local superuser. The directory's login is refused and recorded; the
    local account keeps its rights, its password and its API token."""
    local = user_ensure(username="breakglass", password=BREAK_GLASS_LOCAL_PASSWORD, role="admin")
    _, token = AuthToken.objects.create(user=local)
    for spelling in ("breakglass", "BreakGlass", " BREAKGLASS"):
        assert _login(client, spelling, PASSWORDS["breakglass"]).status_code == 200, spelling  # the form again
        assert "_auth_user_id" not in client.session
    local.refresh_from_db()
    assert (local.is_superuser, local.is_staff, local.has_usable_password()) == (True, True, True)
    assert not DirectoryAccount.objects.filter(user=local).exists()
    assert User.objects.filter(username__iexact="breakglass").count() == 1
    refused = OperatorAction.objects.filter(action="directory-login-refused", target="user:breakglass")
    assert refused.count() == 3 and refused.first().detail["reason"] == "a local account has this name"
    assert Client(HTTP_AUTHORIZATION=f"Token {token}").get("/api/topics/").status_code == 200
    assert _login(client, "BreakGlass", BREAK_GLASS_LOCAL_PASSWORD).status_code == 302  # its own password
    # and a directory account never logs in locally, whatever password it was given
    assert _login(Client(), "otto", PASSWORDS["otto"]).status_code == 302
    otto = User.objects.get(username="otto")
    otto.set_password("a-local-password-1")
    otto.save()
    assert _login(Client(), "otto", "a-local-password-1").status_code == 200


def test_one_name_in_every_spelling(client, directory_settings):
    assert _login(client, " OtTo", PASSWORDS["otto"]).status_code == 302
    assert _login(Client(), "\uff2f\uff34\uff34\uff2f", PASSWORDS["otto"]).status_code == 302  # full-width letters
    assert list(User.objects.filter(username__icontains="otto").values_list("username", flat=True)) == ["otto"]


def test_a_directory_account_locks_out_after_the_failure_limit(client, directory_settings, settings):
    """django-axes stands before the directory as in production (config.settings): wrong
    passwords for a directory account lock it out, in whatever spelling they came, and then
    its right password is refused too, in any spelling and from any address."""
    from axes.utils import reset

    settings.AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", *settings.AUTHENTICATION_BACKENDS]
    settings.AXES_FAILURE_LIMIT = 3
    reset()
    try:
        assert _login(client, "otto", "not-his-password").status_code == 200
        assert _login(client, "OTTO", "not-his-password").status_code == 200
        assert _login(client, "OtTo ", "not-his-password").status_code == 429  # the third: locked out
        assert _login(client, "otto", PASSWORDS["otto"]).status_code == 429
        assert _login(Client(REMOTE_ADDR="10.7.7.7"), "OtTo", PASSWORDS["otto"]).status_code == 429
        assert "_auth_user_id" not in client.session
    finally:
        reset()


def _person(slapd, groups=("kc-viewers",)) -> tuple[str, str]:
    """A person of their own (the directory outlives each test), with a password."""
    uid, password = f"p{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex[:12]}"
    slapd.person_add(uid, password, list(groups))
    return uid, password


def _logged_in(uid: str, password: str) -> tuple[Client, Client, User]:
    """Their browser session and their API token, both working, and their user."""
    browser = Client()
    assert _login(browser, uid, password).status_code == 302
    user = User.objects.get(username=uid)
    _, token = AuthToken.objects.create(user=user)
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert browser.get("/").status_code == 200 and api.get("/api/topics/").status_code == 200
    return browser, api, user


def _shut_out(browser: Client, api: Client, user: User, reason: str) -> None:
    answer = browser.get("/")
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]
    assert api.get("/api/topics/").status_code == 401
    user.refresh_from_db()
    assert not user.is_active and not user.groups.exists()
    assert not AuthToken.objects.filter(user=user).exists()
    assert not UserObjectPermission.objects.filter(user=user).exists()
    revoke = OperatorAction.objects.get(action="directory-revoke", target=f"user:{user.username}")
    assert revoke.detail["reason"] == reason and revoke.detail["tokens"] == 1 and revoke.detail["grants"] >= 2


def test_a_person_removed_from_the_directory_is_shut_out_at_their_next_request(directory_settings, slapd):
    topics = directory_settings
    uid, password = _person(slapd, groups=("kc-viewers", "kc-operators"))
    browser, api, user = _logged_in(uid, password)
    assert can_operate(user, topics["bulk"])
    slapd.delete(f"uid={uid},{PEOPLE}")
    answer = api.get("/api/topics/")  # their next request, by token: refused, everything revoked
    assert answer.status_code == 401
    _shut_out(browser, api, user, "gone")
    assert not can_view(User.objects.get(pk=user.pk), topics["bulk"])


def test_a_cached_verdict_is_kept_for_its_time_only(directory_settings, slapd, settings):
    uid, password = _person(slapd)
    settings.DIRECTORY_CHECK_CACHE_SECONDS = 600
    browser, api, user = _logged_in(uid, password)
    slapd.delete(f"uid={uid},{PEOPLE}")
    assert browser.get("/").status_code == 200  # the verdict of the login holds for its time
    cache.delete(_admission_key(user))  # as if its time had passed
    _shut_out(browser, api, user, "gone")


def test_a_disabled_person_is_shut_out_by_the_periodic_check_and_cannot_log_in(directory_settings, slapd, settings):
    uid, password = _person(slapd)
    settings.DIRECTORY_CHECK_CACHE_SECONDS = 600  # their requests would not ask: the beat's check does
    browser, api, user = _logged_in(uid, password)
    slapd.modify(f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n")
    result = directory_accounts_check_task()
    assert result["revoked"] == 1 and result["checked"] >= 1 and "stopped" not in result
    _shut_out(browser, api, user, "disabled")
    assert _login(Client(), uid, password).status_code == 200  # the login's search skips a disabled entry
    # enabled again: the next login takes the account back, with its grants
    slapd.modify(f"dn: uid={uid},{PEOPLE}\nchangetype: modify\ndelete: employeeType\n")
    assert _login(Client(), uid, password).status_code == 302
    user.refresh_from_db()
    assert user.is_active and can_view(user, directory_settings["bulk"])
    assert DirectoryAccount.objects.get(user=user).revoked_at is None


def test_a_person_taken_out_of_every_role_group_is_shut_out(directory_settings, slapd):
    uid, password = _person(slapd)
    browser, api, user = _logged_in(uid, password)
    slapd.modify(f"dn: {group_dn('kc-viewers')}\nchangetype: modify\ndelete: member\nmember: uid={uid},{PEOPLE}\n")
    directory_accounts_check_task()
    _shut_out(browser, api, user, "no role group")


def test_a_directory_that_does_not_answer_revokes_nothing_and_lets_nobody_unchecked_in(
    directory_settings, slapd, settings
):
    uid, password = _person(slapd)
    browser, api, user = _logged_in(uid, password)
    settings.AUTH_LDAP_SERVER_URI = "ldap://127.0.0.1:1"  # nothing listens there
    assert browser.get("/").status_code == 503
    answer = api.get("/api/topics/")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "directory_unavailable"
    result = directory_accounts_check_task()
    assert result["revoked"] == 0 and "stopped" in result
    user.refresh_from_db()
    assert user.is_active and AuthToken.objects.filter(user=user).exists()
    assert not OperatorAction.objects.filter(action="directory-revoke", target=f"user:{uid}").exists()
    settings.AUTH_LDAP_SERVER_URI = slapd.uri
    assert browser.get("/").status_code == 200 and api.get("/api/topics/").status_code == 200


def test_production_settings_put_the_lockout_before_the_directory_and_oidc():
    """config.settings with a directory and OIDC configured: axes first, so a locked-out login
    reaches neither the directory nor the provider."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AUTH_LDAP_", "OIDC_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="1",  # the development secrets of this process are fine: only the order is read
        AUTH_LDAP_SERVER_URI="ldap://127.0.0.1:1",
        AUTH_LDAP_USER_SEARCH_BASE=PEOPLE,
        AUTH_LDAP_GROUP_SEARCH_BASE=group_dn("x").split(",", 1)[1],
        AUTH_LDAP_ROLE_GROUPS=json.dumps({"viewer": group_dn("kc-viewers")}),
        OIDC_RP_CLIENT_ID="kafkacache",
        OIDC_RP_CLIENT_SECRET=uuid.uuid4().hex,
        OIDC_OP_AUTHORIZATION_ENDPOINT="https://sso.bank.test/authorization",
        OIDC_OP_TOKEN_ENDPOINT="https://sso.bank.test/token",
        OIDC_OP_USER_ENDPOINT="https://sso.bank.test/user",
        OIDC_OP_JWKS_ENDPOINT="https://sso.bank.test/jwks",
        OIDC_ROLE_GROUPS=json.dumps({"viewer": "kc-viewers"}),
    )
    code = "import json, django; django.setup(); from django.conf import settings; "
    code += "print(json.dumps(settings.AUTHENTICATION_BACKENDS))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    backends = json.loads(result.stdout.strip().splitlines()[-1])
    assert backends[0] == "axes.backends.AxesStandaloneBackend"
    assert set(backends[1:3]) == {"dashboard.logins.DirectoryBackend", "dashboard.oidc.OidcBackend"}
    assert "dashboard.logins.LocalBackend" in backends[3:]
    assert not [b for b in backends if b.startswith(("django.contrib.auth.", "django_auth_ldap."))]


def test_oidc_is_an_option_with_the_same_mapping(settings, feed):
    """No OIDC provider runs here: the backend's claim handling is checked on its own, the
    settings as the environment would give them."""
    from config.directory import oidc_settings
    from dashboard.oidc import OidcBackend

    topics = feed_topics_ensure()
    env = {
        "OIDC_RP_CLIENT_ID": "kafkacache",
        "OIDC_RP_CLIENT_SECRET": uuid.uuid4().hex,
        **{f"OIDC_OP_{n}_ENDPOINT": f"https://sso.bank.test/{n.lower()}" for n in ("AUTHORIZATION", "TOKEN", "USER")},
        "OIDC_OP_JWKS_ENDPOINT": "https://sso.bank.test/jwks",
        "OIDC_ROLE_GROUPS": json.dumps({"viewer": "kc-viewers", "operator": "kc-operators"}),
        "OIDC_TOPIC_GROUPS": json.dumps({"kc-operators": {topics["bulk"].name: "operator"}}),
    }
    for name, value in oidc_settings(env).items():
        setattr(settings, name, value)
    backend = OidcBackend()
    assert not backend.verify_claims({"email": "x@bank.test", "groups": ["unrelated"]})
    claims = {"email": "olga@bank.test", "preferred_username": "olga", "groups": ["kc-viewers", "kc-operators"]}
    assert backend.verify_claims(claims)
    local = user_ensure(username="olga-local", password="local-only-pw-123", role="admin")
    User.objects.filter(pk=local.pk).update(email="olga@bank.test")  # the local admin shares her email
    assert not backend.filter_users_by_claims(claims).exists()  # the provider finds no local account
    olga = backend.create_user(claims)
    assert olga.pk != local.pk and DirectoryAccount.objects.get(user=olga).source == "oidc"
    assert {g.name for g in olga.groups.all()} == {"operator"}
    assert can_operate(olga, topics["bulk"]) and not can_view(olga, topics["change"])
    assert list(backend.filter_users_by_claims(claims)) == [olga]
    local.refresh_from_db()
    assert local.is_superuser and local.has_usable_password()
    # a provider whose usernames are the claim's name: a local account's name is refused, recorded
    settings.OIDC_USERNAME_ALGO = lambda email, claims: claims["preferred_username"]
    assert backend.create_user({**claims, "email": "x@bank.test", "preferred_username": "Olga-Local"}) is None
    assert OperatorAction.objects.filter(action="directory-login-refused", target="user:olga-local").exists()
    with pytest.raises(Exception, match="OIDC_OP_TOKEN_ENDPOINT"):
        oidc_settings({k: v for k, v in env.items() if k != "OIDC_OP_TOKEN_ENDPOINT"})


def test_the_periodic_check_applies_group_changes_that_keep_a_role(directory_settings, slapd):
    topics = directory_settings
    uid, password = _person(slapd, groups=("kc-viewers", "kc-operators"))
    browser, api, user = _logged_in(uid, password)
    assert can_operate(user, topics["bulk"])
    slapd.modify(f"dn: {group_dn('kc-operators')}\nchangetype: modify\ndelete: member\nmember: uid={uid},{PEOPLE}\n")
    assert directory_accounts_check_task()["revoked"] == 0
    user = User.objects.get(pk=user.pk)
    assert {g.name for g in user.groups.all()} == {"viewer"}
    assert can_view(user, topics["bulk"]) and not can_operate(user, topics["bulk"])
    assert browser.get("/").status_code == 200 and api.get("/api/topics/").status_code == 200  # still in
