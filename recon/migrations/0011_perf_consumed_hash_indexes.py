"""Consume ledger: the UUID and key lookups on hash indexes instead of B-trees (issue 17).

Both are equality lookups (drill-down and replay checks by UUID, the cache leg's
latest delivery per key), and both columns arrive in random order, which is what
a B-tree insert pays most for; the consume path inserts one row per message. On a
partitioned table the indexes are made on every partition.
"""

import django.contrib.postgres.indexes
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("recon", "0010_leg_window_redelivered"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='consumedmessage',
            name='con_uuid',
        ),
        migrations.RemoveIndex(
            model_name='consumedmessage',
            name='con_key_time',
        ),
        migrations.AddIndex(
            model_name='consumedmessage',
            index=django.contrib.postgres.indexes.HashIndex(fields=['uuid'], name='con_uuid_hash'),
        ),
        migrations.AddIndex(
            model_name='consumedmessage',
            index=django.contrib.postgres.indexes.HashIndex(fields=['key'], name='con_key_hash'),
        ),
    ]
