"""gunicorn settings for the web role (bin/prod, deploy/systemd/kafkacache-web.service).

    gunicorn -c config/gunicorn.conf.py config.wsgi

WEB_BIND, WEB_CONCURRENCY, WEB_THREADS, WEB_TIMEOUT and WEB_FORWARDED_ALLOW_IPS come from
the environment (docs/configuration.md, docs/deploy.md).
TLS ends at the platform's load balancer or reverse proxy in front of it.
"""

import os

from config.env import env_area, env_int, env_str

# Through config.env: a malformed value stops gunicorn naming it, and docs/configuration.md lists them.
env_area("Production layout")
bind = env_str("WEB_BIND", "127.0.0.1:8000", doc="gunicorn: the web role's address")
workers = env_int("WEB_CONCURRENCY", 2, minimum=1, doc="gunicorn: worker processes")
threads = env_int("WEB_THREADS", 4, minimum=1, doc="gunicorn: threads per worker")
worker_class = "gthread"
timeout = env_int(
    "WEB_TIMEOUT", 60, minimum=1, doc="gunicorn: seconds a request may take before its worker is restarted"
)
graceful_timeout = 30
keepalive = 5
# Restart a worker now and then so slow leaks cannot grow without bound.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
errorlog = "-"
# Retrieval keys (credentials in /api/cache/<key>) never reach the access log (config/access_log.py).
logger_class = "config.access_log.RedactingLogger"
# The app is loaded once in the master, before the workers fork: a broken setting
# or an unreachable service stops the master here instead of crash-looping workers.
preload_app = True
forwarded_allow_ips = env_str(
    "WEB_FORWARDED_ALLOW_IPS", "127.0.0.1", doc="gunicorn: proxies whose `X-Forwarded-*` headers it believes"
)


def on_starting(server) -> None:
    """Start-up connectivity check (config/preflight.py): name the service and why, then exit.

    Imports Django and the project here, in the master's start-up hook: gunicorn reads
    this file before Django is set up."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from config.preflight import PreflightError, preflight_run

    try:
        preflight_run()
    except PreflightError as exc:
        for failure in exc.failures:
            server.log.error("preflight: %s", failure)
        raise SystemExit(1) from None
    # Connections opened by the check must not be shared with forked workers.
    from django.db import connections

    connections.close_all()
