from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("recon", "0009_gov_breaks_four_eyes")]

    operations = [
        migrations.AddField(
            model_name="window",
            name="redelivered",
            field=models.BigIntegerField(default=0, db_default=0),
        ),
    ]
