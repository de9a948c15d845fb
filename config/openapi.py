"""OpenAPI schema helpers: the one error shape on every operation, and page envelopes.

Every API error has one shape (config.errors.api_exception_handler), so rather than
annotate each view with the refusals it may answer, a postprocessing hook documents
them once for every operation: 400 (bad input), 401 (no credentials), 403 (not
allowed), 404 (not there or not yours) and, for writes, 409 (conflict with the
current state) and 503 (a store it needs is unavailable). Schemathesis holds the API
to the schema, status codes included (tests/security/test_schemathesis.py).
"""

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}
_READ_ERRORS = {
    "400": "Invalid input (a filter, a parameter).",
    "401": "No or bad credentials.",
    "403": "Not allowed for your role on this topic.",
    "404": "No such object, or not on a topic you may see.",
}
_WRITE_ERRORS = {
    **_READ_ERRORS,
    "409": "Conflicts with the object's current state.",
    "503": "A store the request needs (Kafka, Redis) is unavailable.",
}


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the shared Error component on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            errors = _READ_ERRORS if method in ("get", "head") else _WRITE_ERRORS
            for code, description in errors.items():
                operation["responses"].setdefault(
                    code, {"description": description, "content": {"application/json": {"schema": ref}}}
                )
    return result


def paginated(serializer: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The LimitOffsetPagination envelope around a list of `serializer` (for APIViews that page by hand)."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer(many=True),
        },
    )


def token_auth_first(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the API token first in the docs' Authorize dialog and in
    each operation's security (scripts use a token; the cookie is only the logged-in browser's)."""

    def rank(name: str) -> int:
        return 0 if "token" in name.lower() else 1

    components = result.get("components", {})
    if "securitySchemes" in components:
        schemes = components["securitySchemes"]
        components["securitySchemes"] = {name: schemes[name] for name in sorted(schemes, key=rank)}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "security" in operation:
                operation["security"].sort(key=lambda requirement: min((rank(n) for n in requirement), default=1))
    return result


def api_docs(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The API docs page: logged out, the login page (back here after it), not a bare 403."""

    def docs(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return docs
