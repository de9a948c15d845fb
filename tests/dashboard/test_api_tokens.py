"""Personal API tokens in the UI (real Chromium): created with the secret shown once, listed, used
against the API, revoked; every step audited, and nobody revokes another person's token."""

import pytest
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken

from recon.models import OperatorAction


@pytest.mark.browser
@pytest.mark.integration
def test_a_token_is_created_shown_once_used_and_revoked_in_the_ui(transactional_db, live_server, login, people):
    page = login("viewer1")
    page.goto(live_server.url + reverse("dashboard:api-tokens"))
    page.click("#token-create")
    secret = page.inner_text("#token-secret").strip()
    api = Client()
    assert api.get(reverse("api-topic-list"), HTTP_AUTHORIZATION=f"Token {secret}").status_code == 200
    page.goto(live_server.url + reverse("dashboard:api-tokens"))
    assert page.locator("#token-secret").count() == 0  # shown once
    [row] = page.locator("#tokens tr[data-token]").all()
    assert secret.startswith(row.get_attribute("data-token"))
    row.locator("button").click()
    page.wait_for_selector(".msg")
    assert page.locator("#tokens").count() == 0
    refused = api.get(reverse("api-topic-list"), HTTP_AUTHORIZATION=f"Token {secret}")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "authentication_failed"
    assert refused["WWW-Authenticate"] == "Token"
    actions = OperatorAction.objects.filter(user=people["viewer"]).values_list("action", flat=True)
    assert sorted(actions) == ["token-issue", "token-revoke"]


def test_nobody_revokes_another_persons_token(client_for, people):
    row, _ = AuthToken.objects.create(user=people["operator"])
    response = client_for("viewer").post(reverse("dashboard:api-token-revoke", args=[row.token_key]))
    assert response.status_code == 404 and AuthToken.objects.filter(pk=row.pk).exists()
    assert client_for("viewer").get(reverse("dashboard:api-tokens")).content.decode().count("data-token=") == 0
