"""Django settings. Every value comes from the environment (see .env.example and
the README's table); defaults point at the services `bin/services up` starts."""

import datetime as dt
import os
from pathlib import Path
from typing import Any

from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from csp.constants import UNSAFE_INLINE as CSP_UNSAFE_INLINE

from config import secrets
from config.directory import ldap_settings, oidc_settings
from config.env import (
    EnvError,
    database_from_url,
    env_area,
    env_bool,
    env_choice_map,
    env_declare,
    env_int,
    env_int_map,
    env_json_object,
    env_list,
    env_networks,
    env_pair,
    env_retired,
    env_str,
    source_url_check,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# Each env_* read below also registers the setting (config.env.SETTINGS) under the area
# last named by env_area: docs/configuration.md is written from that (`make docs`).
env_area("Django")
DEBUG = env_bool("DJANGO_DEBUG", False, doc="Django debug mode (`make run` sets `1`); never on in production")
# The default only suits a laptop: with DJANGO_DEBUG=0 it stops the process (config.secrets).
SECRET_KEY = env_str(
    "DJANGO_SECRET_KEY",
    secrets.DEV_SECRET_KEY,
    doc="Django's signing key: 50+ random characters of this deployment's own",
    doc_default="a dev-only key (stops the process when `DJANGO_DEBUG=0`)",
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver", doc="host names the app answers to")
CSRF_TRUSTED_ORIGINS = env_list(
    "DJANGO_CSRF_TRUSTED_ORIGINS", "", doc="origins (`https://ops.bank`) whose form posts are trusted behind a proxy"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # kept for its table only: tokens moved to knox (config migration 0001)
    "knox",  # API tokens: hashed at rest, with expiry, revocable
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (no CDN on closed networks)
    "guardian",
    "axes",  # login lockout (django-axes)
    "kafkacache",
    "recon",
    "replay",
    "dashboard",
    "monitoring",
    "config",  # system checks of the project's own settings (config.checks)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files from the app itself (gunicorn has no static server)
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.ErrorPagesInDebug",  # the product's 404/400 pages with DEBUG on too
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.middleware.DirectoryAccountCheck",  # a directory account the directory lost is logged out
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.RejectNulBytes",
    "config.middleware.CurrentRequest",  # recon.services.grants: who granted an object permission
    "axes.middleware.AxesMiddleware",  # last: answers a locked-out login
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
DATABASES = {
    "default": database_from_url(
        "DATABASE_URL",
        DATABASE_URL_DEFAULT,
        doc="the application database (ledgers, findings, users); TLS: `?sslmode=verify-full&sslrootcert=...`",
    )
}

env_area("Logins and the directory")
# Local and directory accounts are kept apart (dashboard.logins): the local backend logs in
# accounts of this application only, the directory backends directory accounts only.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: a locked-out login goes no further
    "dashboard.logins.LocalBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# The bank's directory (config/directory.py): with AUTH_LDAP_SERVER_URI set, directory
# accounts log in through the same form; local accounts stay for break-glass admins.
AUTH_LDAP_SERVER_URI = ""
# What ldap_settings sets when a directory is configured (read by dashboard.directory).
AUTH_LDAP_BIND_DN = AUTH_LDAP_BIND_PASSWORD = ""
AUTH_LDAP_START_TLS = True
AUTH_LDAP_CONNECTION_OPTIONS: dict = {}
AUTH_LDAP_USER_SEARCH: Any = None
AUTH_LDAP_GROUP_SEARCH: Any = None
KAFKACACHE_LDAP_USER_FILTER = KAFKACACHE_LDAP_DISABLED_FILTER = ""
KAFKACACHE_LDAP_ROLE_GROUPS: dict[str, str] = {}
KAFKACACHE_LDAP_TOPIC_GROUPS: dict[str, dict[str, str]] = {}
globals().update(ldap_settings(os.environ))
# After axes (index 0): a locked-out login reaches neither the directory nor the provider.
if AUTH_LDAP_SERVER_URI:
    AUTHENTICATION_BACKENDS.insert(1, "dashboard.logins.DirectoryBackend")
# The directory is asked again after the login (dashboard.directory): every
# DIRECTORY_CHECK_SECONDS for every directory account (beat), and on a person's requests
# at most once per DIRECTORY_CHECK_CACHE_SECONDS (0: on every request). An account the
# directory lost (gone, disabled, in no role group) loses its sessions, tokens and grants.
DIRECTORY_CHECK_SECONDS = env_int(
    "DIRECTORY_CHECK_SECONDS",
    300,
    minimum=10,
    doc="how often beat asks the directory again about every directory account",
)
DIRECTORY_CHECK_CACHE_SECONDS = env_int(
    "DIRECTORY_CHECK_CACHE_SECONDS",
    60,
    minimum=0,
    doc="on a person's requests, the directory is asked at most this often (0: on every request)",
)
# OIDC as the other option (mozilla-django-oidc): /oidc/authenticate/ starts the login.
OIDC_RP_CLIENT_ID = ""
OIDC_GROUPS_CLAIM = "groups"
KAFKACACHE_OIDC_ROLE_GROUPS: dict[str, str] = {}
KAFKACACHE_OIDC_TOPIC_GROUPS: dict[str, dict[str, str]] = {}
globals().update(oidc_settings(os.environ))
if OIDC_RP_CLIENT_ID:
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS.insert(1, "dashboard.oidc.OidcBackend")
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {
            "min_length": env_int(
                "PASSWORD_MIN_LENGTH",
                12,
                minimum=12,
                doc="shortest password; common, numeric and too-similar-to-the-user passwords are refused too",
            )
        },
    },
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login lockout (django-axes): LOGIN_FAILURE_LIMIT wrong passwords for one username, or
# from one address, lock it out for LOGIN_LOCKOUT_MINUTES; a success resets the count.
# The username is counted in its one spelling; break-glass accounts (local superusers)
# are locked per (username, address) and per address only (dashboard.logins).
AXES_FAILURE_LIMIT = env_int(
    "LOGIN_FAILURE_LIMIT",
    5,
    minimum=1,
    doc="wrong passwords (per username, and per address) before the login locks out (django-axes)",
)
AXES_COOLOFF_TIME = env_int("LOGIN_LOCKOUT_MINUTES", 30, minimum=1, doc="how long a lockout lasts") / 60  # hours
AXES_LOCKOUT_PARAMETERS = "dashboard.logins.lockout_parameters"
AXES_USERNAME_CALLABLE = "dashboard.logins.axes_username"
AXES_RESET_ON_SUCCESS = True
# Proxies whose X-Forwarded-For is believed ("10.0.0.5,10.1.0.0/24"; default: none, so the
# connection's own address counts): the API throttles and the lockout (config.throttles).
TRUSTED_PROXIES = env_networks(
    "TRUSTED_PROXIES",
    "",
    doc="proxies whose `X-Forwarded-For` the throttles and the lockout believe; empty: none",
)
AXES_CLIENT_IP_CALLABLE = "config.throttles.client_address"
env_retired("LOGIN_PROXY_COUNT", instead="list the proxies' addresses in TRUSTED_PROXIES")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
env_area("Web security")
# Secure cookies, HSTS and the https redirect default on whenever DEBUG is off.
SESSION_COOKIE_SECURE = env_bool(
    "DJANGO_SECURE_COOKIES",
    not DEBUG,
    doc="secure session and CSRF cookies (HTTPS only)",
    doc_default="on unless `DJANGO_DEBUG`",
)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
# A session ends after this much idle time: every request pushes its expiry forward.
SESSION_COOKIE_AGE = env_int(
    "DJANGO_SESSION_IDLE_SECONDS",
    1800,
    minimum=60,
    doc="a session ends after this much idle time (each request extends it; it also ends with the browser)",
)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SECURE_SSL_REDIRECT = env_bool(
    "DJANGO_SECURE_SSL_REDIRECT",
    not DEBUG,
    doc="plain http is redirected to https",
    doc_default="on unless `DJANGO_DEBUG`",
)
# Paths (regexes, no leading slash) served over plain http too: the load balancer's and
# the roles' probes (/healthz, /healthz/web, /healthz/beat, /healthz/queue/<queue>).
SECURE_REDIRECT_EXEMPT = env_list(
    "DJANGO_SECURE_REDIRECT_EXEMPT",
    "^healthz(/|$)",
    doc="paths (regexes, no leading `/`) also served over http: the load balancer's and the roles' probes",
)
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_SECURE_HSTS_SECONDS",
    0 if DEBUG else 31536000,
    minimum=0,
    doc="`Strict-Transport-Security` max-age",
    doc_default="`31536000`, `0` with `DJANGO_DEBUG`",
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True, doc="HSTS for subdomains too")
SECURE_HSTS_PRELOAD = env_bool(
    "DJANGO_SECURE_HSTS_PRELOAD",
    False,
    doc="HSTS `preload` (once the domain is on the preload list; `check --deploy` warns without it)",
)
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO=https" (the header the proxy
# sets and the value that means https). Empty: the connection itself says.
SECURE_PROXY_SSL_HEADER = env_pair(
    "DJANGO_SECURE_PROXY_SSL_HEADER",
    "",
    doc="behind a TLS-terminating proxy: its header and https value (`HTTP_X_FORWARDED_PROTO=https`)",
)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts and styles from our own static files
# only, no inline script or style, nothing framed, forms post to us only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF],
        "style-src": [CSP_SELF],
        # plotly.js sets style attributes on the SVG it draws: attributes only (no <style>
        # element, no selector, so no CSS-based read of the page), never script.
        "style-src-attr": [CSP_UNSAFE_INLINE],
        "img-src": [CSP_SELF, "data:"],
        "font-src": [CSP_SELF],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "frame-ancestors": [CSP_NONE],
        "form-action": [CSP_SELF],
    },
}
if CSP_REPORT_URI := env_str(
    "DJANGO_CSP_REPORT_URI", "", doc="where browsers report Content-Security-Policy violations"
):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [CSP_REPORT_URI]
GUARDIAN_RAISE_403 = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

env_area("Django")
STATIC_URL = "static/"
STATIC_ROOT = Path(
    env_str(
        "DJANGO_STATIC_ROOT",
        str(BASE_DIR / "staticfiles"),
        doc="where `collectstatic` writes and whitenoise serves from",
        doc_default="`staticfiles` in the project directory",
    )
)
STATICFILES_DIRS = [BASE_DIR / "static"]  # the pages' own CSS and JS (no inline script or style)
# collectstatic writes gzip/brotli copies; whitenoise serves them. No manifest: templates
# render the same with or without a collectstatic run (tests, make run).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

env_area("API")
REST_FRAMEWORK = {
    # The token first: DRF answers a missing or bad credential with the first class's
    # challenge, and only a token has one (401 with "WWW-Authenticate: Token"; a session
    # has none, so it would be 403). A request without a token header still falls through
    # to the session.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.auth.ThrottledTokenAuthentication",  # knox: "Authorization: Token <token>"
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Per user and per address (anonymous and bad credentials: config.throttles).
    "DEFAULT_THROTTLE_CLASSES": ["config.throttles.UserThrottle", "config.throttles.AnonThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
}
# API tokens (django-rest-knox): only a hash is stored, each expires after
# API_TOKEN_TTL_DAYS, and can be revoked (admin, `manage.py api_token --revoke`).
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(
        days=env_int(
            "API_TOKEN_TTL_DAYS",
            30,
            minimum=1,
            doc="lifetime of an API token (`manage.py api_token <user>`; only a hash is stored)",
        )
    ),
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
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
        "FindingCategoryEnum": "recon.models.Finding.Category",
        "FindingSeverityEnum": "recon.models.Finding.Severity",
        "AlertStatusEnum": "monitoring.models.Alert.Status",
        # loads and runs share one job lifecycle (core.jobs): one enum
        "JobStatusEnum": "recon.models.Load.Status",
        "WindowStatusEnum": "recon.models.Window.Status",
    },
    # Every operation answers errors in the one shape: documented once (config/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.error_responses",
        "config.openapi.token_auth_first",
    ],
}

# --- Redis (cache store) and Celery (broker on Redis) ---------------------------
env_area("Redis and Celery")
REDIS_URL = env_str(
    "REDIS_URL",
    "redis://127.0.0.1:6379/0",
    doc="the cache store; TLS and an ACL user: `rediss://user:password@host:port/0?ssl_cert_reqs=required`",
)
# The cache store on Redis Cluster: seed nodes "host:port,host:port" (core.clients).
# TLS and the ACL user still come from REDIS_URL (its scheme, user, password and
# ssl_* query options); Celery's broker and Django's cache stay on a standalone Redis.
REDIS_CLUSTER_NODES = env_list(
    "REDIS_CLUSTER_NODES",
    "",
    doc="the cache store on Redis Cluster: seed nodes `host:port,...`; empty: not a cluster",
)
# On a cluster, each node's share of a batch is followed by WAIT this many replicas
# (0: no WAIT), at most REDIS_CLUSTER_WAIT_TIMEOUT_MS; the consumer stores offsets
# after it, and counts the batches where fewer replicas answered (kafkacache.cache).
REDIS_CLUSTER_WAIT_REPLICAS = env_int(
    "REDIS_CLUSTER_WAIT_REPLICAS",
    1,
    minimum=0,
    doc="on a cluster: replicas each node's share of a batch waits for (`WAIT`); 0: no `WAIT`",
)
REDIS_CLUSTER_WAIT_TIMEOUT_MS = env_int(
    "REDIS_CLUSTER_WAIT_TIMEOUT_MS",
    200,
    minimum=1,
    doc="longest `WAIT` per node and batch; batches where fewer replicas answered are counted",
)
# The cache store behind Redis Sentinel: sentinels "host:port,..." and the master's name
# (core.clients asks them for the master, and again after a fail-over). TLS and the ACL
# user of the data nodes come from REDIS_URL; REDIS_SENTINEL_PASSWORD is the sentinels' own.
REDIS_SENTINELS = env_list(
    "REDIS_SENTINELS", "", doc="the cache store behind Redis Sentinel: sentinels `host:port,...`; empty: no Sentinel"
)
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "kc-cache", doc="the master's name the sentinels know")
REDIS_SENTINEL_PASSWORD = env_str(
    "REDIS_SENTINEL_PASSWORD", "", doc="the sentinels' own password (the data nodes' comes from `REDIS_URL`)"
)
# Django's cache (API throttle counters, shared by every web process): Redis, keys
# under "kc-django:" (never the cache store's kc:rec:/kc:load:/kc:dv:).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str(
            "DJANGO_CACHE_URL",
            "",
            doc="Django's cache (API throttle counters, keys `kc-django:*`)",
            doc_default="`REDIS_URL`",
        )
        or REDIS_URL,
        "KEY_PREFIX": "kc-django",
    }
}
env_area("API")
# Requests per minute: per user, and per address for anonymous calls and bad tokens.
API_THROTTLE_USER_PER_MINUTE = env_int(
    "API_THROTTLE_USER_PER_MINUTE", 1200, minimum=1, doc="API requests per user per minute"
)
API_THROTTLE_ANON_PER_MINUTE = env_int(
    "API_THROTTLE_ANON_PER_MINUTE",
    60,
    minimum=1,
    doc="anonymous API requests, and failed token checks, per address per minute",
)
env_area("Redis and Celery")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1", doc="Celery's broker (a standalone Redis)")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Periodic tasks; each app adds its own entries here.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
# Exactly one beat sends tasks: it holds a Redis lock of this lifetime (config/beat.py).
CELERY_BEAT_SCHEDULER = "config.beat:SingleBeatScheduler"
BEAT_LOCK_SECONDS = env_int(
    "BEAT_LOCK_SECONDS",
    30,
    minimum=3,
    doc="lifetime of the beat lock: a standby beat takes over this long after the active one is gone",
)

# --- Kafka ------------------------------------------------------------------------
env_area("Kafka")
KAFKA_BOOTSTRAP_SERVERS = env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", doc="Kafka brokers")
# Extra librdkafka settings for real clusters (security.protocol, sasl.*, ssl.*).
KAFKA_CLIENT_CONFIG = env_json_object(
    "KAFKA_CLIENT_CONFIG", doc="extra librdkafka settings (`security.protocol`, `sasl.*`, `ssl.*`)"
)
KAFKA_TOPIC_BULK = env_str("KAFKA_TOPIC_BULK", "cache.bulk", doc="the bulk-load topic")
KAFKA_TOPIC_CHANGE = env_str("KAFKA_TOPIC_CHANGE", "cache.change", doc="the change-data topic")
KAFKA_TOPIC_DEAD_LETTER = env_str(
    "KAFKA_TOPIC_DEAD_LETTER", "cache.dead-letter", doc="where messages the feed cannot store go"
)
KAFKA_TOPIC_PARTITIONS = env_int("KAFKA_TOPIC_PARTITIONS", 2, minimum=1, doc="partitions of topics the project creates")
KAFKA_TOPIC_REPLICATION = env_int(
    "KAFKA_TOPIC_REPLICATION", 1, minimum=1, doc="replication factor of topics the project creates"
)
# Replicas that must hold a message before the broker acknowledges it (producer acks=all):
# replication 3 with 2 loses nothing when one broker goes. Default: 2 when replicated, else 1.
KAFKA_TOPIC_MIN_INSYNC_REPLICAS = env_int(
    "KAFKA_TOPIC_MIN_INSYNC_REPLICAS",
    min(2, KAFKA_TOPIC_REPLICATION),
    minimum=1,
    doc="`min.insync.replicas` of topics the project creates (producers use `acks=all`)",
    doc_default="`2` when replicated, else `1`",
)
# How often beat compares partition leaders and in-sync replicas with the last look and
# records each change as a RebalanceEvent of kind "leader" (kafkacache/leaders.py).
LEADERS_WATCH_SECONDS = env_int(
    "LEADERS_WATCH_SECONDS", 30, minimum=1, doc="how often beat records partition leader and in-sync replica changes"
)
KAFKA_CONSUMER_GROUP = env_str("KAFKA_CONSUMER_GROUP", "cache-feeder", doc="the cache consumer's group")
KAFKA_COMPRESSION = env_str("KAFKA_COMPRESSION", "zstd", doc="producer compression")
KAFKA_LINGER_MS = env_int("KAFKA_LINGER_MS", 5, minimum=0, doc="producer linger")
KAFKA_BATCH_BYTES = env_int("KAFKA_BATCH_BYTES", 262144, minimum=1024, doc="producer batch size")

# --- Feed -------------------------------------------------------------------------
env_area("Feed")
CONSUMER_BATCH_SIZE = env_int("CONSUMER_BATCH_SIZE", 100, minimum=1, doc="messages per Redis write and ledger write")
MESSAGE_MAX_BYTES = env_int(
    "MESSAGE_MAX_BYTES", 10240, minimum=256, doc="larger messages are never published (recorded as oversize findings)"
)
# How long the consumer keeps the source's version bound (kafkacache.versions) before reading
# it again; it is read only for messages of a topic that accepts unsealed producers.
SOURCE_BOUND_SECONDS = env_int(
    "SOURCE_BOUND_SECONDS",
    5,
    minimum=0,
    doc="how long the consumer keeps the source's version bound for unsealed messages before reading it again",
)
SOURCE_DATABASE_URL = env_str(
    "SOURCE_DATABASE_URL",
    "",
    doc="the system of record the SQL source reads: `postgres://...` or a SQLAlchemy URL (docs/sources.md)",
    doc_default="empty (the application database)",
)  # empty: the default database
# Field encryption keys as "id:base64key,id2:base64key"; the first is used to
# encrypt, all of them decrypt (rotation). The default is a dev-only key.
FIELD_ENCRYPTION_KEYS = env_str(
    "FIELD_ENCRYPTION_KEYS",
    secrets.DEV_FIELD_ENCRYPTION_KEYS,
    doc="field keys `id:base64(32 bytes),...`: the first encrypts, all decrypt (`manage.py keys_reencrypt`)",
    doc_default="a dev-only key `dev1:...`",
)
# The mode of each encrypted field: aes-gcm (the default) or NIST FF1 format-preserving,
# digits in and out (core.fpe): ff1, ff1-last4 (last four kept), ff1-luhn (Luhn-valid
# output), ff1-luhn-last4. "cards.card_number=ff1-luhn-last4,accounts.account_number=ff1".
FIELD_ENCRYPTION_MODES = env_choice_map(
    "FIELD_ENCRYPTION_MODES",
    "",
    keys=("accounts.account_number", "cards.card_number"),
    choices=("aes-gcm", "ff1", "ff1-last4", "ff1-luhn", "ff1-luhn-last4"),
    doc="per encrypted field: `aes-gcm` (default) or format-preserving FF1 (docs/security.md)",
)
# The seal (kafkacache.seal): Ed25519. Producers hold SEAL_SIGNING_KEYS ("id:base64
# 32-byte private seed,...", the first signs); every other process sets it empty and
# holds only SEAL_VERIFY_KEYS ("id:base64 32-byte public key,..."), which cannot seal.
SEAL_SIGNING_KEYS = env_str(
    "SEAL_SIGNING_KEYS",
    secrets.DEV_SEAL_SIGNING_KEYS,
    doc="producers only: Ed25519 seeds `id:base64(32 bytes),...`, the first signs; empty elsewhere",
    doc_default="a dev-only key `seal-dev1:...`",
)
SEAL_VERIFY_KEYS = env_str(
    "SEAL_VERIFY_KEYS",
    secrets.DEV_SEAL_VERIFY_KEYS,
    doc="Ed25519 public keys `id:base64(32 bytes),...` the consumer trusts seals from",
    doc_default="the dev key's public key",
)
# The SQL source (core.sources.sql, docs/sources.md): a postgres:// URL becomes the Django
# alias "source"; any other is a SQLAlchemy URL of its own engine (mysql+mysqldb://,
# db2+ibm_db://, oracle+oracledb://), checked here so a typo fails at start-up.
if SOURCE_DATABASE_URL.split("://", 1)[0] in ("postgres", "postgresql"):
    DATABASES["source"] = database_from_url("SOURCE_DATABASE_URL", SOURCE_DATABASE_URL)
elif SOURCE_DATABASE_URL:
    source_url_check("SOURCE_DATABASE_URL", SOURCE_DATABASE_URL)
# Which tables or queries and columns hold clients, account settings and cards, their key,
# version and change table (core.sources.mapping); empty: the demo schema `ods`.
SOURCE_SQL_MAPPING = env_str(
    "SOURCE_SQL_MAPPING",
    "",
    doc="a file mapping the SQL source's tables and columns (docs/sources.md); empty: the demo schema `ods`",
)
if SOURCE_SQL_MAPPING and not Path(SOURCE_SQL_MAPPING).is_file():
    raise EnvError(f"SOURCE_SQL_MAPPING: no such file {SOURCE_SQL_MAPPING!r}")
# File sources ("file:<name>") are looked up in this directory only.
SOURCE_FILE_DIR = env_str(
    "SOURCE_FILE_DIR",
    str(BASE_DIR / "var" / "sources"),
    doc="where file sources (`file:<name>`, CSV or JSON lines) are read",
    doc_default="`var/sources` in the project directory",
)
LOAD_BATCH_SIZE = env_int(
    "LOAD_BATCH_SIZE", 500, minimum=1, doc="records per publish and publish-ledger write in a bulk load"
)
# load batches handed to Kafka and not yet acknowledged and ledgered, while the next is read and built
LOAD_BATCHES_IN_FLIGHT = env_int(
    "LOAD_BATCHES_IN_FLIGHT",
    4,
    minimum=1,
    doc="load batches handed to Kafka and not yet acknowledged and ledgered while the next one is read and built",
)
# A load is split into parts of this many clients (client-id ranges of the SQL source;
# a file is one part), which any number of workers run at once, each resumable alone.
LOAD_PART_CLIENTS = env_int(
    "LOAD_PART_CLIENTS",
    100_000,
    minimum=1,
    doc="clients per part of a load (client-id ranges that any number of workers run at once)",
)
# A load part silent this long lost its worker: kafkacache-loads-resume queues it again.
LOAD_STALE_SECONDS = env_int(
    "LOAD_STALE_SECONDS",
    600,
    minimum=30,
    doc="a load part silent this long lost its worker: it is queued again and resumes from its checkpoint",
)
CHANGE_FEED_BATCH_SIZE = env_int("CHANGE_FEED_BATCH_SIZE", 500, minimum=1, doc="changes per batch of the change feed")
CHANGE_FEED_INTERVAL_SECONDS = env_int(
    "CHANGE_FEED_INTERVAL_SECONDS", 10, minimum=1, doc="how often beat runs the change feed"
)
# The scheduled consumer: beat starts a run every CONSUMER_SCHEDULE_SECONDS; a run
# holds a Redis lock per instance and consumes for up to CONSUMER_RUN_SECONDS, so
# most starts find the lock taken and return. Static membership (group.instance.id)
# keeps the partitions assigned across the gap between runs: no rebalance per run.
CONSUMER_INSTANCES = env_int(
    "CONSUMER_INSTANCES",
    1,
    minimum=1,
    doc="scheduled consumers (static members `<group>-0..n-1`); at most the partition count is useful",
)
CONSUMER_RUN_SECONDS = env_int(
    "CONSUMER_RUN_SECONDS", 300, minimum=1, doc="how long one scheduled consumer run consumes"
)
CONSUMER_SCHEDULE_SECONDS = env_int(
    "CONSUMER_SCHEDULE_SECONDS", 15, minimum=1, doc="how often beat starts a consumer run (a no-op while one runs)"
)
CONSUMER_LOCK_SECONDS = env_int(
    "CONSUMER_LOCK_SECONDS", 30, minimum=2, doc="lifetime of a run's lock, extended while it runs"
)
CONSUMER_SESSION_TIMEOUT_MS = env_int(
    "CONSUMER_SESSION_TIMEOUT_MS",
    45000,
    minimum=6000,
    doc="Kafka session timeout: how long a static member may be away without a rebalance",
)
# librdkafka commits the stored offsets this often: a consumer killed without a
# goodbye redelivers at most this much work (at-least-once; redelivery is harmless).
CONSUMER_COMMIT_INTERVAL_MS = env_int(
    "CONSUMER_COMMIT_INTERVAL_MS",
    1000,
    minimum=100,
    doc="how often stored offsets are committed: the most work a killed consumer redelivers",
)
# How far a producer's `created` may stray from the broker's LogAppendTime before
# the message is counted at the broker's time and a clock-skew finding is written
# (covers clock skew plus the time a message waits in the producer).
CLOCK_SKEW_MAX_MS = env_int(
    "CLOCK_SKEW_MAX_MS",
    30000,
    minimum=1000,
    doc="how far a producer's `created` may stray from the broker's time before a `clock-skew` finding",
)
CELERY_BEAT_SCHEDULE["kafkacache-loads-resume"] = {"task": "kafkacache.tasks.loads_resume_task", "schedule": 300.0}
CELERY_BEAT_SCHEDULE["kafkacache-change-feed"] = {
    "task": "kafkacache.tasks.change_feed_task",
    "schedule": float(CHANGE_FEED_INTERVAL_SECONDS),
    "options": {"expires": float(CHANGE_FEED_INTERVAL_SECONDS)},
}
CELERY_BEAT_SCHEDULE["kafkacache-leaders-watch"] = {
    "task": "kafkacache.tasks.leaders_watch_task",
    "schedule": float(LEADERS_WATCH_SECONDS),
    "options": {"expires": float(LEADERS_WATCH_SECONDS)},
}
for _instance in range(CONSUMER_INSTANCES):
    CELERY_BEAT_SCHEDULE[f"kafkacache-consume-{_instance}"] = {
        "task": "kafkacache.tasks.consume_task",
        "schedule": float(CONSUMER_SCHEDULE_SECONDS),
        "kwargs": {"instance": _instance},
        "options": {"expires": float(CONSUMER_SCHEDULE_SECONDS)},
    }

# --- Reconciliation -----------------------------------------------------------------
env_area("Reconciliation")
# How often the scheduler looks for windows whose end + grace has passed.
RECON_SCHEDULE_SECONDS = env_int(
    "RECON_SCHEDULE_SECONDS",
    60,
    minimum=1,
    doc="how often the scheduler reconciles windows whose end + grace has passed",
)
# Findings named per window pass and UUIDs listed per category in a run's report;
# beyond them the window/report says "truncated" (the counts stay exact).
RECON_WINDOW_MAX_FINDINGS = env_int(
    "RECON_WINDOW_MAX_FINDINGS",
    100000,
    minimum=1,
    doc="findings named per window pass; beyond it the window says `truncated`",
)
RECON_REPORT_MAX_UUIDS = env_int(
    "RECON_REPORT_MAX_UUIDS", 1000, minimum=1, doc="UUIDs listed per category in a run's report (counts stay exact)"
)
RECON_RANGE_MAX_DAYS = env_int("RECON_RANGE_MAX_DAYS", 31, minimum=1, doc="longest range one on-demand run may cover")
# PostgreSQL work_mem for a window's compare (its hash join and aggregates stay in memory).
RECON_WORK_MEM = env_str("RECON_WORK_MEM", "256MB", doc="PostgreSQL `work_mem` for a window's compare")
# Ledger partitions: daily, created this many days ahead; dropped whole after retention.
LEDGER_PARTITIONS_AHEAD_DAYS = env_int(
    "LEDGER_PARTITIONS_AHEAD_DAYS", 7, minimum=1, doc="daily ledger partitions created ahead"
)
LEDGER_RETENTION_DAYS = env_int(
    "LEDGER_RETENTION_DAYS",
    35,
    minimum=1,
    doc="ledger partitions older than this are dropped (windows keep their totals)",
)
# A delete leaves kc:dv:{key} (its source version) this long, so an older write
# arriving late (another partition, a stale bulk batch, a replay) cannot bring the
# record back. A replay reaches back as far as the ledger keeps: at least that long.
CACHE_TOMBSTONE_SECONDS = env_int(
    "CACHE_TOMBSTONE_SECONDS",
    (LEDGER_RETENTION_DAYS + 1) * 86400,
    minimum=LEDGER_RETENTION_DAYS * 86400,
    doc="how long a delete keeps older writes of its key out; at least `LEDGER_RETENTION_DAYS`",
    doc_default="`LEDGER_RETENTION_DAYS` + 1 day",
)
# Audit payloads, AES-GCM at rest: "id:base64key,..." first encrypts, all
# decrypt. The default is a dev-only key.
AUDIT_ENCRYPTION_KEYS = env_str(
    "AUDIT_ENCRYPTION_KEYS",
    secrets.DEV_AUDIT_ENCRYPTION_KEYS,
    doc="audit-payload keys `id:base64(16/24/32 bytes),...`: the first encrypts, all decrypt",
    doc_default="a dev-only key `audit1:...`",
)
CELERY_BEAT_SCHEDULE["recon-windows-reconcile"] = {
    "task": "recon.tasks.windows_reconcile_due",
    "schedule": float(RECON_SCHEDULE_SECONDS),
}
CELERY_BEAT_SCHEDULE["recon-partitions-maintain"] = {"task": "recon.tasks.partitions_maintain", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["recon-audit-purge"] = {"task": "recon.tasks.audit_purge", "schedule": 3600.0}
# The cache leg (recon.services.cache_check): every bulk and change topic against its system of
# record this often; keys per Redis round trip and per source/ledger batch.
CACHE_LEG_SCHEDULE_SECONDS = env_int(
    "CACHE_LEG_SCHEDULE_SECONDS",
    3600,
    minimum=60,
    doc="how often the cache leg checks every bulk and change topic against its system of record",
)
CACHE_LEG_BATCH_SIZE = env_int(
    "CACHE_LEG_BATCH_SIZE",
    10000,
    minimum=100,
    doc="keys per pipelined Redis read and per source or ledger batch of the cache leg",
)
CACHE_LEG_METHOD = env_str(
    "CACHE_LEG_METHOD",
    "digest",
    doc="how a whole-topic cache leg compares the cache with the SQL source: digest (bucket digests"
    " first, then only the keys of buckets that differ) or keys (every key and value)",
)
if CACHE_LEG_METHOD not in ("digest", "keys"):
    raise EnvError(f"CACHE_LEG_METHOD: digest or keys, not {CACHE_LEG_METHOD!r}")
CACHE_DIGEST_RECHECK_MS = env_int(
    "CACHE_DIGEST_RECHECK_MS",
    2000,
    minimum=0,
    doc="the pause before a digest leg reads its problem keys again: a key that moved meanwhile is in"
    " flight, judged by the next run",
)
CACHE_SCRUB_PERIOD_HOURS = env_int(
    "CACHE_SCRUB_PERIOD_HOURS",
    8,
    minimum=1,
    doc="the rolling scrub reads every record of the cache once in this period: it rebuilds the bucket"
    " digests from what Redis holds and checks each value against its published bytes; at most half of"
    " CACHE_REPROVED_HOURS (the last finished pass started up to two periods ago)",
)
CACHE_SCRUB_SLICES = env_int(
    "CACHE_SCRUB_SLICES",
    96,
    minimum=1,
    doc="slices of the hash slots a scrub pass takes, one every CACHE_SCRUB_PERIOD_HOURS / CACHE_SCRUB_SLICES"
    " (more slices: less Redis work at a time)",
)
CELERY_BEAT_SCHEDULE["kafkacache-cache-scrub"] = {
    "task": "kafkacache.tasks.cache_scrub_task",
    "schedule": CACHE_SCRUB_PERIOD_HOURS * 3600.0 / CACHE_SCRUB_SLICES,
    "options": {"expires": CACHE_SCRUB_PERIOD_HOURS * 3600.0 / CACHE_SCRUB_SLICES},
}
CACHE_REPROVED_HOURS = env_int(
    "CACHE_REPROVED_HOURS",
    24,
    minimum=1,
    doc="the period within which a whole-topic cache leg must have compared every key with its reference;"
    " past it the topic page and the evidence pack say the keys were not re-proved",
)
CELERY_BEAT_SCHEDULE["recon-cache-legs"] = {
    "task": "recon.tasks.cache_legs_due",
    "schedule": float(CACHE_LEG_SCHEDULE_SECONDS),
    "options": {"expires": float(CACHE_LEG_SCHEDULE_SECONDS)},
}
env_area("Replays and reprocessing")
# Replays and reprocessing (replay.services.requests): messages per request, per publish/process batch,
# how long one request may read Kafka, and when a silent running replay is taken over.
REPLAY_MAX_MESSAGES = env_int(
    "REPLAY_MAX_MESSAGES", 10000, minimum=1, doc="most messages (or offsets, findings) one replay request may cover"
)
REPLAY_BATCH_SIZE = env_int(
    "REPLAY_BATCH_SIZE",
    500,
    minimum=1,
    doc="messages per publish or process batch of a replay (progress moves per batch)",
)
REPLAY_READ_SECONDS = env_int(
    "REPLAY_READ_SECONDS",
    120,
    minimum=1,
    doc="how long one replay may spend reading Kafka (offsets, the dead-letter topic)",
)
REPLAY_STALE_SECONDS = env_int(
    "REPLAY_STALE_SECONDS",
    600,
    minimum=30,
    doc="a running replay silent this long (or a queued one never started) is queued again and starts over",
)
CELERY_BEAT_SCHEDULE["recon-replays-resume"] = {"task": "recon.tasks.replays_resume", "schedule": 300.0}
env_area("Reconciliation")
# On-demand runs (recon.services.runs): a queued run not picked up, or a transport run silent (it
# beats every window), this long is queued again.
RECON_RUN_STALE_SECONDS = env_int(
    "RECON_RUN_STALE_SECONDS",
    600,
    minimum=30,
    doc="an on-demand run queued this long without a worker, or a transport run silent this long, is queued again",
)
CELERY_BEAT_SCHEDULE["recon-runs-resume"] = {"task": "recon.tasks.runs_resume", "schedule": 300.0}
# After a replay or a load (recon.services.runs): how long to wait between looks for the feed to have
# consumed what it published, and how many looks before its windows are judged as they stand.
RECON_VERIFY_WAIT_SECONDS = env_int(
    "RECON_VERIFY_WAIT_SECONDS",
    10,
    minimum=1,
    doc="after a replay or load: seconds between looks for the feed to have consumed it",
)
RECON_VERIFY_MAX_WAITS = env_int(
    "RECON_VERIFY_MAX_WAITS", 30, minimum=0, doc="looks before a replay's or load's windows are judged as they stand"
)

# --- Governed operations (finding lifecycle, four eyes, dry run, evidence, lag status) -----------
env_area("Governed operations")
# Hours a finding of each severity may stay unresolved before its SLA alert (AlertRule kind break-sla).
BREAK_SLA_HOURS = env_int_map(
    "BREAK_SLA_HOURS",
    "critical=4,warning=24,info=168",
    keys=("critical", "warning", "info"),
    minimum=1,
    doc="hours a break of each severity may stay unresolved before a *break-sla* alert rule fires",
)
# A replay request awaiting a second operator's approval expires after this many hours.
REPLAY_APPROVAL_HOURS = env_int(
    "REPLAY_APPROVAL_HOURS", 24, minimum=1, doc="a replay awaiting a second operator's approval expires after this long"
)
# A topic's approval_threshold counts what one person replayed on it without a second
# operator over this many hours, the new request included (replay.services.approval).
REPLAY_APPROVAL_WINDOW_HOURS = env_int(
    "REPLAY_APPROVAL_WINDOW_HOURS",
    24,
    minimum=1,
    doc="hours over which a topic's approval threshold counts what one person replayed",
)
# The replay guard: one message is replayed at most this many times.
REPLAY_MAX_PER_MESSAGE = env_int(
    "REPLAY_MAX_PER_MESSAGE", 3, minimum=1, doc="the replay guard: most times one message is replayed"
)
# Messages the dry run shows one by one (all are counted).
REPLAY_PREVIEW_MAX = env_int(
    "REPLAY_PREVIEW_MAX", 200, minimum=1, doc="messages a dry run shows one by one (all are counted)"
)
# The evidence pack: payload fields (masked) in it, and most rows per section.
EVIDENCE_EXPORT_PAYLOADS = env_bool(
    "EVIDENCE_EXPORT_PAYLOADS",
    False,
    doc="payload fields (masked) in evidence packs, for people with payload permission",
)
EVIDENCE_MAX_ROWS = env_int(
    "EVIDENCE_MAX_ROWS",
    50000,
    minimum=1,
    doc="most rows per section of an evidence pack (the pack says when it was cut)",
)
# Lag status: one sample of committed and end offsets per partition every LAG_SAMPLE_SECONDS;
# the last LAG_WINDOW_SAMPLES are judged (monitoring.lag_status).
LAG_SAMPLE_SECONDS = env_int(
    "LAG_SAMPLE_SECONDS", 30, minimum=5, doc="how often the lag status samples committed and end offsets"
)
LAG_WINDOW_SAMPLES = env_int("LAG_WINDOW_SAMPLES", 10, minimum=3, doc="samples per partition the lag status judges")
CELERY_BEAT_SCHEDULE["recon-replay-approvals-expire"] = {
    "task": "recon.tasks.replay_approvals_expire",
    "schedule": 300.0,
}
if AUTH_LDAP_SERVER_URI:  # directory accounts against the directory (dashboard.directory)
    CELERY_BEAT_SCHEDULE["dashboard-directory-check"] = {
        "task": "dashboard.tasks.directory_accounts_check",
        "schedule": float(DIRECTORY_CHECK_SECONDS),
        "options": {"expires": float(DIRECTORY_CHECK_SECONDS)},
    }
CELERY_BEAT_SCHEDULE["monitoring-lag-sample"] = {
    "task": "monitoring.tasks.lag_sample",
    "schedule": float(LAG_SAMPLE_SECONDS),
}

# --- Alerts and metrics -------------------------------------------------------------
env_area("Alerts and metrics")
# Prometheus scrapes /metrics with "Authorization: Bearer <METRICS_TOKEN>" (or a user's API token).
METRICS_TOKEN = env_str(
    "METRICS_TOKEN", "", doc="bearer token Prometheus sends to `/metrics`; empty: a user's API token only"
)
# /healthz runs its live checks for "Authorization: Bearer <HEALTH_TOKEN>" (the probes) or a
# logged-in person; anyone else gets liveness only. Calls per minute per address, for all.
HEALTH_TOKEN = env_str(
    "HEALTH_TOKEN",
    "",
    doc="the probes' bearer token: `/healthz` runs its live checks for it (or a person logged in)",
)
HEALTH_THROTTLE_PER_MINUTE = env_int(
    "HEALTH_THROTTLE_PER_MINUTE", 120, minimum=1, doc="`/healthz` calls per minute per address"
)
ALERTS_EVALUATE_SECONDS = env_int("ALERTS_EVALUATE_SECONDS", 30, minimum=1, doc="how often alert rules are evaluated")
# Where alert notifications link back to (the dashboard as people reach it).
ALERTS_BASE_URL = env_str(
    "ALERTS_BASE_URL",
    "http://127.0.0.1:8000",
    doc="the dashboard's address as people reach it: alert notifications link back to it",
)
CELERY_BEAT_SCHEDULE["alerts-evaluate"] = {
    "task": "monitoring.tasks.alerts_evaluate",
    "schedule": float(ALERTS_EVALUATE_SECONDS),
}
# Webhooks (monitoring.webhooks): destinations allowed ("host" or ".domain"; empty: none),
# plain http, and private/loopback/link-local addresses (tests, closed networks).
WEBHOOK_ALLOWED_HOSTS = env_list(
    "WEBHOOK_ALLOWED_HOSTS",
    "",
    doc="alert webhook destinations: `host` or `.domain` (the domain and its subdomains); empty: no webhook",
)
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", False, doc="allow plain-http webhooks")
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env_bool(
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS",
    False,
    doc="allow webhooks to private, loopback and link-local addresses (tests, closed networks)",
)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend",
    doc="how alert emails are sent (SMTP: `django.core.mail.backends.smtp.EmailBackend`)",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost", doc="SMTP server")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, doc="SMTP port")
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "", doc="SMTP user")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "", doc="SMTP password")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False, doc="SMTP with STARTTLS")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "kafkacache@localhost", doc="sender of alert emails")

env_area("Django")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # No retrieval key in a line ("Not Found: /api/cache/<key>"): config/access_log.py.
    "filters": {"keys": {"()": "config.access_log.RedactKeys"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["keys"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO", doc="root log level")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own handlers for these (its console in DEBUG, runserver's lines) are replaced:
        # every line of theirs goes through the console handler and its filter.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- Fail closed on secrets (config.secrets) -----------------------------------------
env_area("Django")
ALLOW_DEV_SECRETS = env_bool(
    "KAFKACACHE_ALLOW_DEV_SECRETS",
    False,
    doc="benches on a laptop only: accept the dev keys with `DJANGO_DEBUG=0` (`check --deploy` fails on it)",
)
SECRETS_IN_USE = {
    "DJANGO_SECRET_KEY": SECRET_KEY,
    "FIELD_ENCRYPTION_KEYS": FIELD_ENCRYPTION_KEYS,
    "AUDIT_ENCRYPTION_KEYS": AUDIT_ENCRYPTION_KEYS,
    "SEAL_SIGNING_KEYS": SEAL_SIGNING_KEYS,
    "SEAL_VERIFY_KEYS": SEAL_VERIFY_KEYS,
    "DATABASE_URL": env_str("DATABASE_URL", DATABASE_URL_DEFAULT),
    "SOURCE_DATABASE_URL": SOURCE_DATABASE_URL,
}
secrets.dev_defaults_refuse(SECRETS_IN_USE, debug=DEBUG, allowed=ALLOW_DEV_SECRETS)

# --- Read outside Django: the demo, gunicorn, the production layout ------------------
env_area("Demo")
DEMO_PASSWORD = env_str(
    "DEMO_PASSWORD", "kafkacache-demo", doc="password of the demo users `manage.py seed_demo` makes"
)
# The web role's gunicorn reads WEB_* itself (config/gunicorn.conf.py, through config.env);
# the worker slots are read by the process wrappers, declared here so they are documented.
env_area("Production layout")
env_declare(
    "WORKER_CONCURRENCY_CONSUME",
    "integer, at least 1",
    "",
    doc="`bin/prod`: worker slots of the consume queue",
    doc_default="`CONSUMER_INSTANCES`",
    read_by="bin/prod",
)
env_declare(
    "WORKER_CONCURRENCY_LOADS",
    "integer, at least 1",
    2,
    doc="`bin/prod`: worker slots of the loads queue",
    read_by="bin/prod",
)
env_declare(
    "WORKER_CONCURRENCY_RECONCILE",
    "integer, at least 1",
    2,
    doc="`bin/prod`: worker slots of the reconcile queue",
    read_by="bin/prod",
)
env_declare(
    "WORKER_CONCURRENCY_ALERTS",
    "integer, at least 1",
    1,
    doc="`bin/prod`: worker slots of the alerts queue",
    read_by="bin/prod",
)
env_declare(
    "WORKER_CONCURRENCY",
    "integer, at least 1",
    2,
    doc="systemd: a worker unit's slots, set per queue in `/etc/kafkacache/worker-<queue>.env` (docs/deploy.md)",
    read_by="deploy/systemd/kafkacache-worker@.service",
)
