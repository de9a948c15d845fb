"""gunicorn settings for the web role (bin/prod, deploy/systemd/kafkacache-web.service).

    gunicorn -c config/gunicorn.conf.py config.wsgi

WEB_BIND, WEB_CONCURRENCY, WEB_TIMEOUT come from the environment (docs/deploy.md).
TLS ends at the platform's load balancer or reverse proxy in front of it.
"""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
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
forwarded_allow_ips = os.environ.get("WEB_FORWARDED_ALLOW_IPS", "127.0.0.1")


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
