"""Django settings. Every value comes from the environment (see .env.example and
the README's table); defaults point at the services `bin/services up` starts."""

from pathlib import Path

from config.env import (
    database_from_url,
    env_bool,
    env_int,
    env_json_object,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
# The default only suits a laptop; `manage.py check --deploy` flags it.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-secret-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (no CDN on closed networks)
    "guardian",
    "kafkacache",
    "recon",
    "dashboard",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.RejectNulBytes",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL_DEFAULT = "postgres://kafkacache:kafkacache@127.0.0.1:5432/kafkacache"
DATABASES = {"default": database_from_url("DATABASE_URL", DATABASE_URL_DEFAULT)}

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
GUARDIAN_RAISE_403 = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "kafkacache API",
    "DESCRIPTION": "Bulk loads, change data, cache retrieval and Kafka pub/sub reconciliation.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The docs page loads Swagger UI from our own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models share field names ("status", "kind"): name their enums instead of hash suffixes.
    "ENUM_NAME_OVERRIDES": {
        "FindingStatusEnum": "recon.models.Finding.Status",
        "TopicKindEnum": "recon.models.Topic.Kind",
        "RebalanceKindEnum": "recon.models.RebalanceEvent.Kind",
        "ReconRunKindEnum": "recon.models.ReconRun.Kind",
        "ReplayStatusEnum": "recon.models.Replay.Status",
    },
    # Every operation answers errors in the one shape: documented once (config/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.error_responses",
    ],
}

# --- Redis (cache store) and Celery (broker on Redis) ---------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Periodic tasks; each app adds its own entries here.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# --- Kafka ------------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
# Extra librdkafka settings for real clusters (security.protocol, sasl.*, ssl.*).
KAFKA_CLIENT_CONFIG = env_json_object("KAFKA_CLIENT_CONFIG")
KAFKA_TOPIC_BULK = env_str("KAFKA_TOPIC_BULK", "cache.bulk")
KAFKA_TOPIC_CHANGE = env_str("KAFKA_TOPIC_CHANGE", "cache.change")
KAFKA_TOPIC_DEAD_LETTER = env_str("KAFKA_TOPIC_DEAD_LETTER", "cache.dead-letter")
KAFKA_TOPIC_PARTITIONS = env_int("KAFKA_TOPIC_PARTITIONS", 2, minimum=1)
KAFKA_TOPIC_REPLICATION = env_int("KAFKA_TOPIC_REPLICATION", 1, minimum=1)
KAFKA_CONSUMER_GROUP = env_str("KAFKA_CONSUMER_GROUP", "cache-feeder")
KAFKA_COMPRESSION = env_str("KAFKA_COMPRESSION", "zstd")
KAFKA_LINGER_MS = env_int("KAFKA_LINGER_MS", 5, minimum=0)
KAFKA_BATCH_BYTES = env_int("KAFKA_BATCH_BYTES", 262144, minimum=1024)

# --- Feed -------------------------------------------------------------------------
CONSUMER_BATCH_SIZE = env_int("CONSUMER_BATCH_SIZE", 100, minimum=1)
MESSAGE_MAX_BYTES = env_int("MESSAGE_MAX_BYTES", 10240, minimum=256)
SOURCE_DATABASE_URL = env_str("SOURCE_DATABASE_URL", "")  # empty: the default database
# Field encryption keys as "id:base64key,id2:base64key"; the first is used to
# encrypt, all of them decrypt (rotation). The default is a dev-only key.
FIELD_ENCRYPTION_KEYS = env_str("FIELD_ENCRYPTION_KEYS", "dev1:ZGV2LW9ubHkta2V5LTMyLWJ5dGVzLWxvbmctLS0tLS0=")
if SOURCE_DATABASE_URL:  # the SQL source reads the Django alias "source" when it is set
    DATABASES["source"] = database_from_url("SOURCE_DATABASE_URL", SOURCE_DATABASE_URL)
# File sources ("file:<name>") are looked up in this directory only.
SOURCE_FILE_DIR = env_str("SOURCE_FILE_DIR", str(BASE_DIR / "var" / "sources"))
LOAD_BATCH_SIZE = env_int("LOAD_BATCH_SIZE", 500, minimum=1)  # records per publish + ledger write
# A load silent this long lost its worker: kafkacache-loads-resume queues it again.
LOAD_STALE_SECONDS = env_int("LOAD_STALE_SECONDS", 600, minimum=30)
CHANGE_FEED_BATCH_SIZE = env_int("CHANGE_FEED_BATCH_SIZE", 500, minimum=1)
CHANGE_FEED_INTERVAL_SECONDS = env_int("CHANGE_FEED_INTERVAL_SECONDS", 10, minimum=1)
# The scheduled consumer: beat starts a run every CONSUMER_SCHEDULE_SECONDS; a run
# holds a Redis lock per instance and consumes for up to CONSUMER_RUN_SECONDS, so
# most starts find the lock taken and return. Static membership (group.instance.id)
# keeps the partitions assigned across the gap between runs: no rebalance per run.
CONSUMER_INSTANCES = env_int("CONSUMER_INSTANCES", 1, minimum=1)
CONSUMER_RUN_SECONDS = env_int("CONSUMER_RUN_SECONDS", 300, minimum=1)
CONSUMER_SCHEDULE_SECONDS = env_int("CONSUMER_SCHEDULE_SECONDS", 15, minimum=1)
CONSUMER_LOCK_SECONDS = env_int("CONSUMER_LOCK_SECONDS", 30, minimum=2)
CONSUMER_SESSION_TIMEOUT_MS = env_int("CONSUMER_SESSION_TIMEOUT_MS", 45000, minimum=6000)
# A delete leaves kc:del:{key} (its publish time) this long, so an older add
# arriving late from another partition cannot bring the record back.
CACHE_TOMBSTONE_SECONDS = env_int("CACHE_TOMBSTONE_SECONDS", 86400, minimum=1)
CELERY_BEAT_SCHEDULE["kafkacache-loads-resume"] = {"task": "kafkacache.tasks.loads_resume_task", "schedule": 300.0}
CELERY_BEAT_SCHEDULE["kafkacache-change-feed"] = {
    "task": "kafkacache.tasks.change_feed_task",
    "schedule": float(CHANGE_FEED_INTERVAL_SECONDS),
    "options": {"expires": float(CHANGE_FEED_INTERVAL_SECONDS)},
}
for _instance in range(CONSUMER_INSTANCES):
    CELERY_BEAT_SCHEDULE[f"kafkacache-consume-{_instance}"] = {
        "task": "kafkacache.tasks.consume_task",
        "schedule": float(CONSUMER_SCHEDULE_SECONDS),
        "kwargs": {"instance": _instance},
        "options": {"expires": float(CONSUMER_SCHEDULE_SECONDS)},
    }

# --- Reconciliation -----------------------------------------------------------------
# How often the scheduler looks for windows whose end + grace has passed.
RECON_SCHEDULE_SECONDS = env_int("RECON_SCHEDULE_SECONDS", 60, minimum=1)
# Findings named per window pass and UUIDs listed per category in a run's report;
# beyond them the window/report says "truncated" (the counts stay exact).
RECON_WINDOW_MAX_FINDINGS = env_int("RECON_WINDOW_MAX_FINDINGS", 100000, minimum=1)
RECON_REPORT_MAX_UUIDS = env_int("RECON_REPORT_MAX_UUIDS", 1000, minimum=1)
RECON_RANGE_MAX_DAYS = env_int("RECON_RANGE_MAX_DAYS", 31, minimum=1)
# PostgreSQL work_mem for a window's compare (its hash join and aggregates stay in memory).
RECON_WORK_MEM = env_str("RECON_WORK_MEM", "256MB")
# Ledger partitions: daily, created this many days ahead; dropped whole after retention.
LEDGER_PARTITIONS_AHEAD_DAYS = env_int("LEDGER_PARTITIONS_AHEAD_DAYS", 7, minimum=1)
LEDGER_RETENTION_DAYS = env_int("LEDGER_RETENTION_DAYS", 35, minimum=1)
# Audit payloads (phase 2), AES-GCM at rest: "id:base64key,..." first encrypts, all
# decrypt. The default is a dev-only key.
AUDIT_ENCRYPTION_KEYS = env_str("AUDIT_ENCRYPTION_KEYS", "audit1:ZGV2LW9ubHktYXVkaXQta2V5LTMyLWJ5dGVzLWxvbmc=")
CELERY_BEAT_SCHEDULE["recon-windows-reconcile"] = {
    "task": "recon.tasks.windows_reconcile_due",
    "schedule": float(RECON_SCHEDULE_SECONDS),
}
CELERY_BEAT_SCHEDULE["recon-partitions-maintain"] = {"task": "recon.tasks.partitions_maintain", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["recon-audit-purge"] = {"task": "recon.tasks.audit_purge", "schedule": 3600.0}
# Replays and reprocessing (recon.replay): messages per request, per publish/process batch,
# how long one request may read Kafka, and when a silent running replay is taken over.
REPLAY_MAX_MESSAGES = env_int("REPLAY_MAX_MESSAGES", 10000, minimum=1)
REPLAY_BATCH_SIZE = env_int("REPLAY_BATCH_SIZE", 500, minimum=1)
REPLAY_READ_SECONDS = env_int("REPLAY_READ_SECONDS", 120, minimum=1)
REPLAY_STALE_SECONDS = env_int("REPLAY_STALE_SECONDS", 600, minimum=30)
CELERY_BEAT_SCHEDULE["recon-replays-resume"] = {"task": "recon.tasks.replays_resume", "schedule": 300.0}
# After a replay or a load (recon.runs): how long to wait between looks for the feed to have
# consumed what it published, and how many looks before its windows are judged as they stand.
RECON_VERIFY_WAIT_SECONDS = env_int("RECON_VERIFY_WAIT_SECONDS", 10, minimum=1)
RECON_VERIFY_MAX_WAITS = env_int("RECON_VERIFY_MAX_WAITS", 30, minimum=0)

# --- Alerts and metrics -------------------------------------------------------------
# Prometheus scrapes /metrics with "Authorization: Bearer <METRICS_TOKEN>" (or a user's API token).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
ALERTS_EVALUATE_SECONDS = env_int("ALERTS_EVALUATE_SECONDS", 30, minimum=1)
# Where alert notifications link back to (the dashboard as people reach it).
ALERTS_BASE_URL = env_str("ALERTS_BASE_URL", "http://127.0.0.1:8000")
CELERY_BEAT_SCHEDULE["alerts-evaluate"] = {
    "task": "monitoring.tasks.alerts_evaluate",
    "schedule": float(ALERTS_EVALUATE_SECONDS),
}
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "kafkacache@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
