from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project wiring as an app, so its system checks run with every `manage.py check`."""

    name = "config"
    label = "kafkacache_config"
    verbose_name = "kafkacache settings"

    def ready(self) -> None:
        from django.contrib import admin
        from rest_framework.authtoken.models import TokenProxy

        from config import auth, checks  # noqa: F401  (registers the checks and the API's token scheme)

        # The old clear-text tokens are gone (migration 0001): no admin page shows token keys.
        if admin.site.is_registered(TokenProxy):
            admin.site.unregister(TokenProxy)
