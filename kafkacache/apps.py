from django.apps import AppConfig


class KafkacacheConfig(AppConfig):
    name = "kafkacache"
    verbose_name = "Cache feed"
