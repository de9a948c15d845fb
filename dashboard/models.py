"""Where an account comes from: the bank's directory or this application (local).

A user with a DirectoryAccount row logs in through the directory only (LDAP or OIDC)
and nothing else; a user without one is a local account (the break-glass admins,
`manage.py` and `user_ensure` accounts) and logs in with its local password only
(dashboard.logins). Only the directory backends make a row, at the first directory
login of a name no local account holds; nothing turns one kind into the other.
"""

from django.conf import settings
from django.db import models


class DirectoryAccount(models.Model):
    class Source(models.TextChoices):
        LDAP = "ldap", "LDAP directory"
        OIDC = "oidc", "OIDC provider"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="directory_account"
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    # The entry's DN (LDAP) or the provider's subject (OIDC), as last seen.
    dn = models.CharField(max_length=1024, blank=True)
    # The directory groups the role and topic grants were last applied from (dashboard.directory).
    groups = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    checked_at = models.DateTimeField(null=True, blank=True)  # the directory last confirmed the account
    # Set when the directory lost the account and its access was revoked; a later directory
    # login (the directory vouching again) clears it and reactivates the user.
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=64, blank=True)

    class Meta:
        # the periodic check: WHERE source = 'ldap' AND revoked_at IS NULL
        indexes = [models.Index(fields=["source", "revoked_at"], name="directory_account_check")]

    def __str__(self) -> str:
        return f"{self.user} ({self.source})"
