"""The Load model left the feed for the record (recon 0016): out of the feed's state,
its table kept (now recon's, under its old name)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("kafkacache", "0006_load_unordered"),
        ("recon", "0016_load_from_feed"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Load")],
            database_operations=[],
        ),
    ]
