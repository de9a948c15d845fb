"""The project's own system checks, next to Django's: production rules (`check --deploy`)
and the migration history of the database (`migrate` runs the database checks first)."""

from django.conf import settings
from django.core import checks
from django.db import connections
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


# The migrations that recon 0001_squashed_0015 and kafkacache 0001_squashed_0006 replace. They
# are no longer shipped: a database has applied all of them (it takes the squashed ones as
# applied) or none (it gets the squashed ones), never some.
SQUASHED = {
    "recon": (
        "0001_initial",
        "0002_partition_ledgers",
        "0003_operator_action",
        "0004_rules_audit_window_state",
        "0005_audit_schema_version",
        "0006_run_kind",
        "0007_replay",
        "0008_source_version",
        "0009_gov_breaks_four_eyes",
        "0010_leg_window_redelivered",
        "0011_perf_consumed_hash_indexes",
        "0012_prod_rebalance_leader",
        "0013_loop_run_queue",
        "0014_run_heartbeat",
        "0015_audit_reencrypted",
    ),
    "kafkacache": (
        "0001_initial",
        "0002_initial",
        "0003_feed_cursor",
        "0004_feed_cursor_no_txid",
        "0005_load_heartbeat",
        "0006_load_unordered",
    ),
}


@checks.register(checks.Tags.database)
def squashed_history_check(app_configs, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """A database part-way through the squashed migrations cannot be migrated by this release."""
    errors: list[checks.CheckMessage] = []
    for alias in databases or ():
        recorder = MigrationRecorder(connections[alias])
        if not recorder.has_table():
            continue
        applied = recorder.applied_migrations()
        for app, names in SQUASHED.items():
            missing = [name for name in names if (app, name) not in applied]
            if 0 < len(missing) < len(names):
                errors.append(
                    checks.Error(
                        f"Database {alias!r} applied the {app} migrations only up to"
                        f" {names[len(names) - len(missing) - 1]}; this release no longer ships {', '.join(missing)}.",
                        hint=f"Migrate it first with a release that ships {app} {missing[-1]}, then with this one.",
                        id="kafkacache.E003",
                    )
                )
    return errors
