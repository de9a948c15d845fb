"""One copy of each TLS and directory library in a process of the app.

A CI run crashed (SIGSEGV) in the directory login test while psycopg's binary wheel,
with its own libpq, libssl, libldap and libsasl2, sat in the same process as
python-ldap's system libldap. psycopg is built against the system's libpq now
(requirements/runtime.in); this keeps a second copy from coming back.
"""

import re
import ssl  # noqa: F401 - Python's own TLS, as redis and kombu use it
from pathlib import Path

import confluent_kafka  # noqa: F401 - loaded as the workers load it
import ldap
import psycopg


def _mapped(pattern: str) -> set[str]:
    """The file names of the shared libraries matching `pattern` mapped into this process."""
    maps = Path("/proc/self/maps").read_text()
    return {Path(path).name for path in re.findall(r"(/\S+\.so[.\d]*)$", maps, re.M) if re.search(pattern, path)}


def test_psycopg_is_its_c_build_on_the_system_libpq():
    assert psycopg.pq.__impl__ == "c"
    assert psycopg.pq.__build_version__ // 10000 == psycopg.pq.version() // 10000
    assert _mapped(r"/libpq\.so"), "psycopg does not use the system's libpq"


def test_the_app_loads_one_libldap_one_libssl_one_libsasl2_one_libpq():
    ldap.initialize("ldap://127.0.0.1:1")  # libldap's own start-up (SASL, TLS); no server needed
    for library in (r"/libldap[-.]", r"/libssl[-.]", r"/libsasl2[-.]", r"/libpq[-.]"):
        copies = _mapped(library)
        assert len(copies) == 1, f"not one copy of {library} in the process: {sorted(copies)}"
