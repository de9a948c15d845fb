"""API tokens move from rest_framework.authtoken (the key stored in clear) to knox (only
a hash stored, with an expiry). The clear-text tokens are deleted, not carried over: a
key that sat readable in the database (and its backups) is not trusted for another
API_TOKEN_TTL_DAYS; each holder asks for a new one (`manage.py api_token <user>`)."""

from django.db import migrations


def tokens_delete(apps, schema_editor):
    apps.get_model("authtoken", "Token").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("authtoken", "0004_alter_tokenproxy_options"), ("knox", "0009_extend_authtoken_field")]
    operations = [migrations.RunPython(tokens_delete, migrations.RunPython.noop)]
