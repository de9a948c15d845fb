from django.apps import AppConfig


class ReconConfig(AppConfig):
    name = "recon"
    verbose_name = "Reconciliation"

    def ready(self) -> None:
        from recon.audit import keyring_check

        keyring_check()  # malformed AUDIT_ENCRYPTION_KEYS stops start-up, naming the setting
