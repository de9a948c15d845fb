"""A database part-way through the migrations the squashed ones replace is refused before
`migrate` runs anything, naming what it lacks (config.checks.squashed_history_check)."""

import pytest
from django.core import checks
from django.db.migrations.recorder import MigrationRecorder

pytestmark = pytest.mark.django_db


def _errors() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks(databases=["default"]) if m.id == "kafkacache.E003"]


def test_a_database_with_all_or_none_of_the_squashed_migrations_passes_and_one_part_way_is_refused():
    assert _errors() == []  # the test database got the squashed migrations: all replaced ones recorded
    MigrationRecorder.Migration.objects.filter(
        app="recon", name__in=["0014_run_heartbeat", "0015_audit_reencrypted"]
    ).delete()
    (error,) = _errors()
    assert "recon migrations only up to 0013_loop_run_queue" in error.msg
    assert "ships recon 0015_audit_reencrypted" in error.hint
    MigrationRecorder.Migration.objects.filter(app="recon").delete()  # none of them: a database before recon
    assert _errors() == []
