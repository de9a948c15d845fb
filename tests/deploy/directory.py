"""A throwaway OpenLDAP directory (Debian's slapd) on a free loopback port, with StartTLS,
a service account, people and groups, made for a test."""

import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .helpers import free_port, port_open, stop_group, wait_for

SUFFIX = "dc=bank,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


def _hash(password: str) -> str:
    return subprocess.run(
        ["slappasswd", "-s", password], check=True, capture_output=True, text=True, timeout=10
    ).stdout.strip()


@dataclass
class Directory:
    directory: Path
    port: int = field(default_factory=free_port)
    admin_password: str = field(default_factory=lambda: uuid.uuid4().hex)
    service_password: str = field(default_factory=lambda: uuid.uuid4().hex)
    proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        # Not "localhost": libldap checks a "localhost" URI against the machine's FQDN instead.
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def service_dn(self) -> str:
        return f"cn=kafkacache,ou=services,{SUFFIX}"

    def start(self, *, tls: Path) -> None:
        data = self.directory / "data"
        data.mkdir(parents=True)
        conf = self.directory / "slapd.conf"
        conf.write_text(
            "\n".join(
                [
                    *(f"include /etc/ldap/schema/{s}.schema" for s in ("core", "cosine", "inetorgperson", "nis")),
                    "modulepath /usr/lib/ldap",
                    "moduleload back_mdb",
                    f"pidfile {self.directory / 'slapd.pid'}",
                    f"argsfile {self.directory / 'slapd.args'}",
                    f"TLSCACertificateFile {tls / 'ca.pem'}",
                    f"TLSCertificateFile {tls / 'server.pem'}",
                    f"TLSCertificateKeyFile {tls / 'server.key'}",
                    "security simple_bind=128",  # no password over a connection without TLS
                    "database mdb",
                    f'suffix "{SUFFIX}"',
                    f'rootdn "cn=admin,{SUFFIX}"',
                    f"rootpw {_hash(self.admin_password)}",
                    f"directory {data}",
                    "access to attrs=userPassword by self write by anonymous auth by * none",
                    f'access to * by dn.exact="{self.service_dn}" read by self read by * none',
                    "",
                ]
            )
        )
        slapd = shutil.which("slapd") or "/usr/sbin/slapd"
        # -d 0: stay in the foreground (so the test owns the process) and log nothing.
        self.proc = subprocess.Popen(
            [slapd, "-d", "0", "-h", f"ldap://127.0.0.1:{self.port}/", "-f", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, timeout=15, what="slapd")
        assert self.proc.poll() is None, "slapd exited at start"
        self.tls_ca = tls / "ca.pem"

    def _admin_tool(self, tool: str, ldif: str) -> None:
        subprocess.run(
            [tool, "-ZZ", "-x", "-H", self.uri, "-D", f"cn=admin,{SUFFIX}", "-w", self.admin_password],
            input=ldif,
            text=True,
            check=True,
            capture_output=True,
            timeout=20,
            env={"LDAPTLS_CACERT": str(self.tls_ca), "PATH": "/usr/bin:/bin"},
        )

    def add(self, ldif: str) -> None:
        self._admin_tool("ldapadd", ldif)

    def modify(self, ldif: str) -> None:
        """An LDIF change record ("dn: ...\nchangetype: modify\n...")."""
        self._admin_tool("ldapmodify", ldif)

    def delete(self, dn: str) -> None:
        self._admin_tool("ldapdelete", dn + "\n")

    def person_add(self, uid: str, password: str, groups: list[str]) -> None:
        """A person and their memberships, added to a seeded directory."""
        self.add(
            f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid.title()}\n"
            f"mail: {uid}@bank.test\nuserPassword: {_hash(password)}\n"
        )
        for group in groups:
            self.modify(f"dn: {group_dn(group)}\nchangetype: modify\nadd: member\nmember: uid={uid},{PEOPLE}\n")

    def seed(self, people: dict[str, str], groups: dict[str, list[str]]) -> None:
        entries = [
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Bank\ndc: bank",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
            f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services",
            f"dn: {self.service_dn}\nobjectClass: person\ncn: kafkacache\nsn: service\n"
            f"userPassword: {_hash(self.service_password)}",
        ]
        for uid, password in people.items():
            entries.append(
                f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid.title()}\n"
                f"givenName: {uid}\nmail: {uid}@bank.test\nuserPassword: {_hash(password)}"
            )
        for name, members in groups.items():
            lines = [f"dn: {group_dn(name)}", "objectClass: groupOfNames", f"cn: {name}"]
            lines += [f"member: uid={m},{PEOPLE}" for m in members] or [f"member: {self.service_dn}"]
            entries.append("\n".join(lines))
        self.add("\n\n".join(entries) + "\n")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, grace=10)


def make_tls(directory: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 (and localhost), made with openssl for this directory."""
    directory.mkdir(parents=True, exist_ok=True)

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=30)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=directory CA",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
        "-out", "server.csr")  # fmt: skip
    (directory / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext", "-out", "server.pem")  # fmt: skip
    return directory


def tmp_directory() -> Path:
    path = Path(tempfile.mkdtemp(prefix="kc-ldap-"))
    path.chmod(0o755)
    return path
