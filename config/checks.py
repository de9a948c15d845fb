"""The project's own system checks, next to Django's: production rules (`check --deploy`)
and the migration history of the database (`migrate` runs the database checks first)."""

from django.conf import settings
from django.core import checks
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

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


@checks.register()
def reproved_period_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A digest leg proves the cache with the last finished scrub pass, which started up to two
    scrub periods ago: past CACHE_REPROVED_HOURS, "every key re-proved" could never be met."""
    if settings.CACHE_LEG_METHOD != "digest" or 2 * settings.CACHE_SCRUB_PERIOD_HOURS <= settings.CACHE_REPROVED_HOURS:
        return []
    return [
        checks.Warning(
            f"CACHE_SCRUB_PERIOD_HOURS={settings.CACHE_SCRUB_PERIOD_HOURS} is more than half of"
            f" CACHE_REPROVED_HOURS={settings.CACHE_REPROVED_HOURS}: the last finished scrub pass may have"
            " started before the period, so the topic pages would say the keys were not re-proved.",
            hint="Set CACHE_SCRUB_PERIOD_HOURS to at most half of CACHE_REPROVED_HOURS.",
            id="kafkacache.W001",
        )
    ]


@checks.register(checks.Tags.database)
def squashed_history_check(app_configs, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """A database part-way through the migrations a squashed one replaces, when those are no
    longer shipped, cannot be brought forward by this release: say so before `migrate` runs."""
    errors: list[checks.CheckMessage] = []
    for alias in databases or ():
        connection = connections[alias]
        if not MigrationRecorder(connection).has_table():
            continue
        loader = MigrationLoader(connection, ignore_no_migrations=True)
        for (app, squashed), migration in sorted(loader.replacements.items()):
            applied = [key in loader.applied_migrations for key in migration.replaces]
            gone = [name for a, name in migration.replaces if (a, name) not in loader.disk_migrations]
            if any(applied) and not all(applied) and gone:
                last = migration.replaces[applied.index(False) - 1][1] if applied.index(False) else "none"
                missing = [name for (_, name), done in zip(migration.replaces, applied, strict=True) if not done]
                errors.append(
                    checks.Error(
                        f"Database {alias!r} applied the {app} migrations only up to {last}; {squashed}"
                        f" replaces them and this release no longer ships {', '.join(missing)}.",
                        hint=f"Migrate it first with a release that ships {app} {missing[-1]}, then with this one.",
                        id="kafkacache.E003",
                    )
                )
    return errors
