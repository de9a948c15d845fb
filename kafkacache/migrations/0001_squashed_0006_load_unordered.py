"""The feed's migrations up to 0006 in one, as a new database gets them: the change
feed's cursor. (The bulk load is a record: recon makes its table.)

A database that applied all of the old 0001-0006 takes this as applied; one that
applied only some is refused (config.checks.squashed_history_check).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [
        ("kafkacache", "0001_initial"),
        ("kafkacache", "0002_initial"),
        ("kafkacache", "0003_feed_cursor"),
        ("kafkacache", "0004_feed_cursor_no_txid"),
        ("kafkacache", "0005_load_heartbeat"),
        ("kafkacache", "0006_load_unordered"),
    ]

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="FeedCursor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(max_length=128, unique=True)),
                ("change_id", models.BigIntegerField(default=0)),
                ("published", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
    ]
