"""The API docs page: logged out, a redirect to the login page that comes back; its Authorize
dialog offers the API token first (the schema's order)."""

from django.test import Client
from django.urls import reverse


def test_logged_out_the_docs_page_sends_to_login_and_back():
    response = Client().get(reverse("api-docs"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse('api-docs')}"


def test_token_auth_comes_first_in_the_schema(client_for):
    client = client_for("viewer")
    assert client.get(reverse("api-docs")).status_code == 200
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    schemes = list(schema["components"]["securitySchemes"])
    assert len(schemes) >= 2 and "token" in schemes[0].lower(), schemes
    operations = [op for ops in schema["paths"].values() for op in ops.values() if "security" in op]
    assert operations and all("token" in next(iter(op["security"][0])).lower() for op in operations)
