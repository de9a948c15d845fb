from django.apps import AppConfig


class ReconConfig(AppConfig):
    name = "recon"
    verbose_name = "Reconciliation"

    def ready(self) -> None:
        from recon.audit import keyring_check  # AppConfig.ready: models are loaded only now

        keyring_check()  # malformed AUDIT_ENCRYPTION_KEYS stops start-up, naming the setting
        from recon.services.grants import grants_audit_connect  # AppConfig.ready: models are loaded only now

        grants_audit_connect()  # every object-permission grant and revoke into the audit trail
