"""No retrieval key in a log line: gunicorn's access log and Django's request logging.

A retrieval key reads a load's records (GET /api/cache/<key>): it is a credential in
a URL, so every line that would carry it (the request line, the path, the referer, a
"Not Found: /api/cache/..." warning) carries "/api/cache/<redacted>" instead. The
match is made on the decoded text, as Django routes it (a percent-encoded key or
path is caught too). Authorization and cookie headers never reach an access line,
whatever access_log_format asks for.

- gunicorn: `logger_class = "config.access_log.RedactingLogger"` (config/gunicorn.conf.py);
- Django: the `RedactKeys` filter on the console handler (config.settings.LOGGING).
Imports nothing of the project, so gunicorn's master can load it before Django.
"""

import logging
import re
from urllib.parse import unquote

from gunicorn.glogging import Logger

_KEYED = re.compile(r"(/api/+cache/+)[^/?#\s\"']+", re.IGNORECASE)
REDACTED = "<redacted>"
_SECRET_HEADERS = ("{authorization}i", "{cookie}i", "{set-cookie}o", "{http_authorization}e", "{http_cookie}e")


def keys_redact(text: str) -> str:
    """`text` with every retrieval key in a cache URL replaced (unchanged when there is none)."""
    decoded = unquote(text)
    if not _KEYED.search(decoded):
        return text
    return _KEYED.sub(lambda m: m.group(1) + REDACTED, decoded)


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        # The request line from the decoded path (what Django routes), the key taken out.
        query = environ.get("QUERY_STRING") or ""
        path = keys_redact(environ.get("PATH_INFO") or "")
        atoms["r"] = f"{environ['REQUEST_METHOD']} {path}{'?' + query if query else ''} {environ['SERVER_PROTOCOL']}"
        for name, value in atoms.items():
            if name in _SECRET_HEADERS:
                atoms[name] = "-"
            elif isinstance(value, str) and name != "r":
                atoms[name] = keys_redact(value)
        return atoms


class RedactKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = keys_redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
