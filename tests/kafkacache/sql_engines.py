"""The SQL source's engines for tests: the product's PostgreSQL, a MariaDB the tests start
(`bin/services up --mariadb` on a free port, data in a temporary VAR_DIR), and a DB2 where
one is reachable (SOURCE_TEST_DB2_URL)."""

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from django.db import connection, transaction

from core.ods import demo_rows, ods_seed, ods_write_engine
from core.sources import SqlSource
from core.sources import sql as sql_module
from core.sources.mapping import mapping_load
from tests.deploy.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
DB2_SKIP = (
    "DB2: no server reachable here. Set SOURCE_TEST_DB2_URL=db2+ibm_db://user:password@host:50000/database"
    " (a user whose default schema the test may fill and empty) after `pip install ibm-db ibm-db-sa`:"
    " ibm-db downloads IBM's clidriver at install time, so it is not in the project's locks"
)


@dataclass
class MariaDB:
    """A MariaDB server of the test run's own."""

    var_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kc-mariadb-")))
    port: int = field(default_factory=free_port)

    def services(self, action: str) -> None:
        done = subprocess.run(
            [str(ROOT / "bin" / "services"), action, "--mariadb"],
            env={**os.environ, "VAR_DIR": str(self.var_dir), "MARIADB_PORT": str(self.port)},
            timeout=300,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"bin/services {action} --mariadb failed: {done.stderr[-2000:]}")

    def url(self, database: str = "") -> str:
        return f"mysql+mysqldb://kafkacache:kafkacache@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        location = self.var_dir / "mariadb.location"  # data moved where the mysql user can reach it
        if location.exists():
            shutil.rmtree(location.read_text().strip(), ignore_errors=True)
        shutil.rmtree(self.var_dir, ignore_errors=True)


class Engine:
    """One engine's system of record for a test: seed it, change it behind the source's back,
    and the SqlSource that reads it."""

    name = ""

    def seed(self, clients: int) -> tuple[list, list, list]:
        raise NotImplementedError

    def write(self, *statements: str) -> None:
        """Run statements in one committed transaction of another connection (a writer)."""
        raise NotImplementedError

    def source(self) -> SqlSource:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PostgresEngine(Engine):
    """The product's own PostgreSQL, schema `ods`, through Django's connection (the default path)."""

    name = "postgresql"

    def seed(self, clients: int):
        ods_seed(clients=clients, using="default")
        return demo_rows(clients)

    def write(self, *statements: str) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement.replace("{s}", "ods."))

    def source(self) -> SqlSource:
        return SqlSource()


class EngineBacked(Engine):
    """A database of its own on a SQLAlchemy engine (MariaDB, DB2), its tables unqualified."""

    def __init__(self, url: str):
        self.url = url
        self.engine = sa.create_engine(url)

    def seed(self, clients: int):
        rows = demo_rows(clients)
        ods_write_engine(self.engine, *rows)
        return rows

    def write(self, *statements: str) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement.replace("{s}", ""))

    def source(self) -> SqlSource:
        return SqlSource(url=self.url, mapping={**mapping_load(""), "schema": None})

    def close(self) -> None:
        self.engine.dispose()
        sql_module._engine(self.url).dispose()


class MariaDBEngine(EngineBacked):
    name = "mariadb"

    def __init__(self, server: MariaDB):
        self.server = server
        self.database = f"kc_src_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(server.url())
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        admin.dispose()
        super().__init__(server.url(self.database))

    def close(self) -> None:
        super().close()
        admin = sa.create_engine(self.server.url())
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.database}")
        admin.dispose()


class DB2Engine(EngineBacked):
    name = "db2"

    def close(self) -> None:
        with self.engine.begin() as conn:
            for table in ("cards", "account_settings", "client_changes", "clients"):
                conn.exec_driver_sql(f"DROP TABLE {table}")
            conn.exec_driver_sql("DROP SEQUENCE record_version")
        super().close()
