"""API token authentication: django-rest-knox (hashed tokens with expiry, revocable),
with failed checks throttled per address (config.throttles.BadCredentialsThrottle)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

from config.throttles import BadCredentialsThrottle


class ThrottledTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        throttle = BadCredentialsThrottle()
        if throttle.exhausted(request):
            raise Throttled(throttle.wait())
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            throttle.failure(request)
            raise

    def authenticate_credentials(self, token: bytes):
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:  # knox would let this out as a 500
            raise AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)


class ThrottledTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ThrottledTokenAuthentication (as DRF's token scheme was)."""

    target_class = "config.auth.ThrottledTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Token-based authentication with required prefix "Token"',
        }
