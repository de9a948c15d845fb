"""`manage.py check --deploy`: the project's own production rules, next to Django's."""

from django.conf import settings
from django.core import checks

from config.secrets import dev_defaults_in_use


@checks.register(checks.Tags.security, deploy=True)
def dev_secrets_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    found = dev_defaults_in_use(settings.SECRETS_IN_USE)
    if found:
        errors.append(
            checks.Error(
                "Development secrets in use: " + ", ".join(found),
                hint="Set each to this deployment's own value (README, Security: production checklist).",
                id="kafkacache.E001",
            )
        )
    if settings.ALLOW_DEV_SECRETS:
        errors.append(
            checks.Error(
                "KAFKACACHE_ALLOW_DEV_SECRETS is on: development keys would be accepted with DEBUG off.",
                hint="Unset it; it is for benchmarks on a laptop only.",
                id="kafkacache.E002",
            )
        )
    return errors
