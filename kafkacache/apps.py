from django.apps import AppConfig


class KafkacacheConfig(AppConfig):
    name = "kafkacache"
    verbose_name = "Cache feed"

    def ready(self) -> None:
        from kafkacache.seal import seal_keys_check  # AppConfig.ready: settings are final only now

        seal_keys_check()  # malformed SEAL_SIGNING_KEYS / SEAL_VERIFY_KEYS stop start-up, naming the setting
