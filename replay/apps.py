from django.apps import AppConfig


class ReplayConfig(AppConfig):
    """Replays and reprocessing: code only. The Replay and ReplayItem models stay in recon
    (app label, tables and permissions unchanged); this app holds the request, the run,
    the four ways, the four-eyes approval, the dry run, the tasks and the API."""

    name = "replay"
    verbose_name = "Replays"
