"""No retrieval key in the logs: the real gunicorn (config/gunicorn.conf.py) serves the cache API
and a wrong key, and its whole output (access log, error log, Django's console log) is searched."""

import os
import subprocess
import sys

import pytest
import requests
from knox.models import AuthToken

from recon import access
from recon.models import Load
from tests.deploy.helpers import ROOT, free_port, port_open, stop_group, wait_for
from tests.factories import PASSWORD, TopicFactory, UserFactory
from tests.kafkacache.conftest import subprocess_database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_gunicorn_and_django_log_no_retrieval_key(tmp_path):
    topic = TopicFactory()
    operator = UserFactory(username="log-operator", password=PASSWORD)
    access.topic_grant(operator, topic, "operator")
    load = Load.objects.create(topic=topic, source="ods", status=Load.Status.DONE)
    _, token = AuthToken.objects.create(user=operator)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": subprocess_database_url(),
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
    }
    log = tmp_path / "web.log"
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            gunicorn, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, timeout=90, what="gunicorn")
        assert proc.poll() is None, log.read_text()[-3000:]
        url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Token {token}"}
        wrong = "rk-guessed-" + "7" * 20
        answers = [
            requests.get(f"{url}/api/cache/{load.retrieval_key}?limit=5", headers=auth, timeout=30),
            requests.get(f"{url}/api/cache/{wrong}", headers=auth, timeout=30),  # Django logs "Not Found: ..."
            requests.get(f"{url}/api/%63ache/{load.retrieval_key}", headers=auth, timeout=30),  # encoded path
            requests.get(
                f"{url}/api/loads", headers={**auth, "Referer": f"{url}/api/cache/{load.retrieval_key}"}, timeout=30
            ),
        ]
        assert [a.status_code for a in answers] == [200, 404, 200, 200]
    finally:
        stop_group(proc, grace=20)
    text = log.read_text()
    assert text.count("/api/cache/<redacted>") >= 4, text[-3000:]  # the lines are there ...
    assert "Not Found: /api/cache/<redacted>" in text
    leaked = [line for line in text.splitlines() if any(s in line for s in (load.retrieval_key, wrong, token))]
    assert leaked == []  # ... without the keys
