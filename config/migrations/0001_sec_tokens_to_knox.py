"""API tokens move from rest_framework.authtoken (the key stored in clear) to knox
(only a hash stored, with an expiry): each existing token keeps working under the
same string, now hashed and expiring API_TOKEN_TTL_DAYS from this migration, and
the clear copies are deleted."""

from django.db import migrations
from django.utils import timezone


def tokens_to_knox(apps, schema_editor):
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS, knox_settings

    Token = apps.get_model("authtoken", "Token")
    AuthToken = apps.get_model("knox", "AuthToken")
    expiry = timezone.now() + knox_settings.TOKEN_TTL
    for token in Token.objects.all():
        row = AuthToken(
            digest=hash_token(token.key), token_key=token.key[: CONSTANTS.TOKEN_KEY_LENGTH], user_id=token.user_id
        )
        row.expiry = expiry
        row.save()
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("authtoken", "0004_alter_tokenproxy_options"), ("knox", "0009_extend_authtoken_field")]
    operations = [migrations.RunPython(tokens_to_knox, migrations.RunPython.noop)]
