from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("recon", "0008_source_version")]

    operations = [
        migrations.AddField(
            model_name="window",
            name="redelivered",
            field=models.BigIntegerField(default=0, db_default=0),
        ),
    ]
