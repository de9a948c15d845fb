import pytest

from config.env import EnvError, database_from_url, env_bool, env_int, env_int_map, env_json_object


def test_env_int_reads_and_names_a_bad_value(monkeypatch):
    monkeypatch.setenv("X_BATCH", "250")
    assert env_int("X_BATCH", 100) == 250
    monkeypatch.setenv("X_BATCH", "lots")
    with pytest.raises(EnvError, match="X_BATCH"):
        env_int("X_BATCH", 100)
    monkeypatch.setenv("X_BATCH", "0")
    with pytest.raises(EnvError, match="X_BATCH must be >= 1"):
        env_int("X_BATCH", 100, minimum=1)


def test_env_bool(monkeypatch):
    monkeypatch.setenv("X_FLAG", "off")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(EnvError, match="X_FLAG"):
        env_bool("X_FLAG", True)


def test_env_json_object(monkeypatch):
    monkeypatch.setenv("X_KAFKA", '{"security.protocol": "SASL_SSL"}')
    assert env_json_object("X_KAFKA") == {"security.protocol": "SASL_SSL"}
    monkeypatch.setenv("X_KAFKA", "[1]")
    with pytest.raises(EnvError, match="X_KAFKA must be a JSON object"):
        env_json_object("X_KAFKA")


def test_database_from_url(monkeypatch):
    monkeypatch.setenv("X_DB", "postgres://u%40x:p%3Aw@db.example:6543/ledger")
    db = database_from_url("X_DB", "")
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "u@x",
        "p:w",
        "db.example",
        "6543",
        "ledger",
    )
    monkeypatch.setenv("X_DB", "mysql://a@b/c")
    with pytest.raises(EnvError, match="X_DB"):
        database_from_url("X_DB", "")


def test_env_int_map_needs_every_key_and_names_a_bad_value(monkeypatch):
    keys = ("critical", "warning", "info")
    default = "critical=4,warning=24,info=168"
    assert env_int_map("X_SLA", default, keys=keys) == {"critical": 4, "warning": 24, "info": 168}
    monkeypatch.setenv("X_SLA", "critical=1, warning=2, info=3")
    assert env_int_map("X_SLA", default, keys=keys) == {"critical": 1, "warning": 2, "info": 3}
    for bad in (
        "critical=1,warning=2",
        "critical=x,warning=2,info=3",
        "urgent=1,warning=2,info=3",
        "critical=0,warning=1,info=1",
    ):
        monkeypatch.setenv("X_SLA", bad)
        with pytest.raises(EnvError, match="X_SLA"):
            env_int_map("X_SLA", default, keys=keys, minimum=1)


def test_database_url_carries_tls_parameters_and_refuses_unknown_ones(monkeypatch):
    monkeypatch.setenv("X_DB", "postgres://u:p@db.example/ledger?sslmode=verify-full&sslrootcert=/etc/kc/ca.pem")
    options = database_from_url("X_DB", "")["OPTIONS"]
    assert options == {"connect_timeout": 5, "sslmode": "verify-full", "sslrootcert": "/etc/kc/ca.pem"}
    monkeypatch.setenv("X_DB", "postgres://u:p@db.example/ledger?sslmod=require")
    with pytest.raises(EnvError, match="unknown parameter 'sslmod'"):
        database_from_url("X_DB", "")
