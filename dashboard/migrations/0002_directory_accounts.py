"""Account origins (dashboard.models.DirectoryAccount) and one spelling per username.

- Usernames are stored as core.usernames.username_normalise spells them (the login
  path, the lockout and both lookups compare that spelling). Two accounts whose
  names meet once normalised ("Otto" and "otto") stop the migration, naming them:
  one person or two, an administrator decides (rename or delete one) and migrates
  again. Nothing is merged by guesswork.
- With a directory configured, accounts the directory made before origins were
  recorded (the directory login gave each an unusable password; local accounts have
  a password) are marked as the configured directory's.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def usernames_normalise(apps, schema_editor):
    from core.usernames import username_normalise

    User = apps.get_model("auth", "User")
    spellings: dict[str, list[str]] = {}
    for username in User.objects.values_list("username", flat=True):
        spellings.setdefault(username_normalise(username), []).append(username)
    clashes = sorted(names for names in spellings.values() if len(names) > 1)
    if clashes:
        listed = "; ".join(" = ".join(repr(n) for n in names) for names in clashes)
        raise RuntimeError(
            f"Usernames that are one name once normalised: {listed}. Rename or delete one of each "
            "(they would share a lockout and a login), then migrate again."
        )
    for normal, (username,) in spellings.items():
        if normal != username:
            User.objects.filter(username=username).update(username=normal)


def directory_accounts_mark(apps, schema_editor):
    from django.conf import settings

    source = "ldap" if settings.AUTH_LDAP_SERVER_URI else "oidc" if settings.OIDC_RP_CLIENT_ID else ""
    if not source:
        return  # no directory: every account is local
    User = apps.get_model("auth", "User")
    DirectoryAccount = apps.get_model("dashboard", "DirectoryAccount")
    for user in User.objects.filter(password__startswith="!"):  # Django's unusable password
        DirectoryAccount.objects.get_or_create(user=user, defaults={"source": source})


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('dashboard', '0001_roles'),
    ]

    operations = [
        migrations.CreateModel(
            name='DirectoryAccount',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='directory_account', serialize=False, to=settings.AUTH_USER_MODEL)),
                ('source', models.CharField(choices=[('ldap', 'LDAP directory'), ('oidc', 'OIDC provider')], max_length=8)),
                ('dn', models.CharField(blank=True, max_length=1024)),
                ('groups', models.JSONField(blank=True, default=list)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('checked_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_reason', models.CharField(blank=True, max_length=64)),
            ],
            options={
                'indexes': [models.Index(fields=['source', 'revoked_at'], name='directory_account_check')],
            },
        ),
        migrations.RunPython(usernames_normalise, migrations.RunPython.noop),
        migrations.RunPython(directory_accounts_mark, migrations.RunPython.noop),
    ]
