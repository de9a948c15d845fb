"""Login with the bank's directory: Debian's slapd started for the test (StartTLS on a loopback
port), django-auth-ldap through the ordinary login form, directory groups -> roles and topic grants.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from django.contrib.auth.models import User

from config.directory import ldap_settings
from dashboard.services import user_ensure
from recon.access import can_operate, can_view
from recon.services import feed_topics_ensure

from .directory import PEOPLE, Directory, group_dn, make_tls, tmp_directory
from .helpers import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

PASSWORDS = {name: f"pw-{name}-{uuid.uuid4().hex[:8]}" for name in ("vera", "otto", "ada", "nobody", "carla")}


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
                "kc-admins": ["ada"],
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
    settings.AUTHENTICATION_BACKENDS = ["django_auth_ldap.backend.LDAPBackend", *settings.AUTHENTICATION_BACKENDS]
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


def test_a_directory_account_locks_out_after_the_failure_limit(client, directory_settings, settings):
    """django-axes stands before the directory as in production (config.settings): wrong
    passwords for a directory account lock it out, and then its right password is refused too."""
    from axes.utils import reset

    settings.AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", *settings.AUTHENTICATION_BACKENDS]
    settings.AXES_FAILURE_LIMIT = 3
    reset()
    try:
        for _ in range(2):
            assert _login(client, "otto", "not-his-password").status_code == 200
        assert _login(client, "otto", "not-his-password").status_code == 429  # the third: locked out
        assert _login(client, "otto", PASSWORDS["otto"]).status_code == 429
        assert "_auth_user_id" not in client.session
    finally:
        reset()


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
    assert set(backends[1:3]) == {"django_auth_ldap.backend.LDAPBackend", "dashboard.oidc.OidcBackend"}
    assert "django.contrib.auth.backends.ModelBackend" in backends[3:]


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
    olga = backend.create_user(claims)
    assert {g.name for g in olga.groups.all()} == {"operator"}
    assert can_operate(olga, topics["bulk"]) and not can_view(olga, topics["change"])
    with pytest.raises(Exception, match="OIDC_OP_TOKEN_ENDPOINT"):
        oidc_settings({k: v for k, v in env.items() if k != "OIDC_OP_TOKEN_ENDPOINT"})
