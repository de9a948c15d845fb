from django.apps import AppConfig


class ReconConfig(AppConfig):
    name = "recon"
    verbose_name = "Reconciliation"
