"""The system of record as tests set it: how far its version sequence has gone."""

from django.db import connection


def versions_given(upto: int) -> int:
    """The source has given versions up to at least `upto` (its sequence moved on, as by
    that many changes): the bound the feed holds unverified versions to (kafkacache.versions)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval('ods.record_version', GREATEST(%s, (SELECT last_value FROM ods.record_version)))", [upto]
        )
        return int(cursor.fetchone()[0])
