"""API token authentication: django-rest-knox (hashed tokens with expiry, revocable),
with failed checks throttled per address (config.throttles.BadCredentialsThrottle).

A token that checks out still names a person someone else may have to vouch for:
`token_user_checked` is sent before the user is let in, and a receiver that raises
(dashboard.directory: a directory account the directory no longer knows) refuses them.
"""

from django.dispatch import Signal
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

from config.throttles import BadCredentialsThrottle

# sender: the authentication class; user, request. Receivers raise an APIException to refuse.
token_user_checked = Signal()


class ThrottledTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        throttle = BadCredentialsThrottle()
        if throttle.exhausted(request):
            raise Throttled(throttle.wait())
        try:
            found = super().authenticate(request)
        except AuthenticationFailed:
            throttle.failure(request)
            raise
        if found is not None:
            token_user_checked.send(sender=type(self), user=found[0], request=request)
        return found

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
