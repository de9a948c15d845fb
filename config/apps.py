from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project wiring as an app, so its system checks run with every `manage.py check`."""

    name = "config"
    label = "kafkacache_config"
    verbose_name = "kafkacache settings"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the checks)
