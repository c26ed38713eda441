"""Unit tests of the users function and its PostgreSQL client: Secrets Manager
by moto (in process), the database a real PostgreSQL server (the `postgres`
fixture of functions/conftest.py; those tests are skipped, saying why, when
there is none). Never imported by the function itself."""
import json
import logging
import os
import socket
import uuid

import boto3
import pytest
from moto import mock_aws

from conftest import load_app

app = load_app("users")
pg = app.pg


class Ctx:
    aws_request_id = "req-1"


def call(method, path, body=None, raw=None, query=None, headers=None):
    if raw is None and body is not None:
        raw = json.dumps(body, ensure_ascii=False)
    event = {"httpMethod": method, "path": path, "resource": "/api/users/{proxy+}", "body": raw,
             "isBase64Encoded": False, "queryStringParameters": query,
             "headers": headers if headers is not None else {"Content-Type": "application/json"},
             "pathParameters": {"proxy": path.split("/users/", 1)[-1]} if "/users/" in path else None}
    r = app.handler(event, Ctx())
    json.dumps(r)
    return r["statusCode"], (json.loads(r["body"]) if r["body"] else None), r["headers"]


def reset():
    if app._conn is not None:
        app._conn.close()
    app._conn, app._credentials, app._schema_ready = None, None, False


@pytest.fixture
def secret(aws_env, monkeypatch):
    """A managed-style master secret in moto; yields a function to set its value."""
    reset()
    with mock_aws():
        sm = boto3.client("secretsmanager")
        arn = sm.create_secret(Name="rds!db-test", SecretString="{}")["ARN"]
        monkeypatch.setenv("DB_SECRET_ARN", arn)

        def put(username, password):
            sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": username, "password": password}))
        yield put
    reset()


@pytest.fixture
def secret_reads(monkeypatch):
    """How many times the function called GetSecretValue."""
    calls = []
    real = app.boto3.client

    def client(name, *a, **kw):
        c = real(name, *a, **kw)
        if name == "secretsmanager":
            orig = c.get_secret_value

            def get_secret_value(**kwargs):
                calls.append(kwargs)
                return orig(**kwargs)
            c.get_secret_value = get_secret_value
        return c
    monkeypatch.setattr(app.boto3, "client", client)
    return calls


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- without a database -----------------------------------------------------
def test_unreachable_database_is_503_and_secret_read_once(secret, secret_reads, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    password = "S3cr3t-Pa55word-do-not-leak"
    secret("app_admin", password)
    monkeypatch.setenv("DB_ENDPOINT", f"127.0.0.1:{_closed_port()}")
    caplog.clear()
    capsys.readouterr()
    answers = [call("GET", "/api/users/health"), call("GET", "/api/users/health"),
               call("GET", "/api/users/" + str(uuid.uuid4())), call("POST", "/api/users", {"email": "a@b.co", "name": "A"})]
    for status, body, headers in answers:
        assert status == 503 and headers["Retry-After"]
    assert answers[0][1] == {"status": "unavailable", "database": "unreachable", "reason": "connect_failed"}
    assert len(secret_reads) == 1, "the secret is read once per container"
    out = capsys.readouterr()
    everything = json.dumps(answers) + out.out + out.err + caplog.text
    assert password not in everything and "app_admin" not in json.dumps(answers)


def test_missing_configuration_is_503(aws_env, monkeypatch):
    reset()
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    monkeypatch.setenv("DB_ENDPOINT", "127.0.0.1:1")
    status, body, _ = call("GET", "/api/users/health")
    assert status == 503 and body["reason"] == "not_configured"


def test_unreadable_secret_is_503(secret, monkeypatch):
    monkeypatch.setenv("DB_ENDPOINT", "127.0.0.1:1")
    monkeypatch.setenv("DB_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope")
    status, body, _ = call("GET", "/api/users/health")
    assert status == 503 and body["reason"] == "secret_unavailable"


def test_routes_without_database(secret, monkeypatch):
    monkeypatch.setenv("DB_ENDPOINT", "127.0.0.1:1")
    secret("u", "p")
    assert call("GET", "/api/users/a/b")[0] == 404
    assert call("DELETE", "/api/users/health")[0] == 405
    status, _, headers = call("DELETE", "/api/users")
    assert status == 405 and headers["Allow"] == "GET, POST"
    assert call("POST", "/api/users", raw="{bad")[0] == 400
    assert call("POST", "/api/users", {"email": "x"})[0] == 400
    assert call("POST", "/api/users", {"email": "a@b.co", "name": "A", "admin": True})[0] == 400
    assert call("POST", "/api/users", raw="x" * 20000)[0] == 413
    assert call("GET", "/api/users/not-a-uuid")[0] == 404
    assert call("GET", "/api/users", query={"limit": "0"})[0] == 400


def test_endpoint_forms(monkeypatch):
    monkeypatch.setenv("DB_ENDPOINT", "db.example.internal:6543")
    assert app.endpoint() == ("db.example.internal", 6543)
    monkeypatch.setenv("DB_ENDPOINT", "db.example.internal")
    assert app.endpoint() == ("db.example.internal", 5432)


# -- with a PostgreSQL server --------------------------------------------------
@pytest.fixture
def admin(postgres):
    host, port, user, password, tls = postgres
    conn = pg.connect(host, port, user, password, "postgres", sslmode="require" if tls else "disable")
    yield conn
    conn.close()


@pytest.fixture
def database(postgres, admin, secret, monkeypatch):
    """A fresh master user and database, as RDS creates them, behind the secret."""
    host, port, _, _, tls = postgres
    name = "t_" + uuid.uuid4().hex[:10]
    password = "pw-" + uuid.uuid4().hex
    admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    admin.execute(f"CREATE DATABASE {name} OWNER {name}")
    secret(name, password)
    monkeypatch.setenv("DB_ENDPOINT", f"{host}:{port}")
    monkeypatch.setenv("DB_NAME", name)
    monkeypatch.setenv("DB_SSLMODE", "require" if tls else "disable")
    yield name, password
    reset()
    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.execute(f"DROP ROLE IF EXISTS {name}")


def test_health_reports_the_database(database, secret_reads):
    status, body, _ = call("GET", "/api/users/health")
    assert status == 200 and body["status"] == "ok" and body["database"] == "reachable"
    assert body["server_version"]
    assert call("GET", "/api/users/health")[0] == 200
    assert len(secret_reads) == 1


def test_crud(database, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    status, ada, headers = call("POST", "/api/users", {"email": "Ada@Example.com", "name": "Ada Lovelace"})
    assert status == 201 and headers["Location"] == f"/api/users/{ada['id']}"
    assert call("POST", "/api/users", {"email": "ada@example.com", "name": "Other"})[0] == 409
    status, zoe, _ = call("POST", "/api/users", {"email": "zoe@example.com", "name": "Zoë 山田 '; DROP TABLE users; --"})
    assert status == 201
    assert call("GET", f"/api/users/{zoe['id']}")[1]["name"] == "Zoë 山田 '; DROP TABLE users; --"
    status, got, _ = call("PATCH", f"/api/users/{ada['id']}", {"name": "Countess"})
    assert status == 200 and got["name"] == "Countess" and got["email"] == "Ada@Example.com"
    assert got["updated_at"] >= got["created_at"]
    assert call("PUT", f"/api/users/{ada['id']}", {"name": "x"})[0] == 400
    assert call("PUT", f"/api/users/{ada['id']}", {"email": "zoe@example.com", "name": "x"})[0] == 409
    assert call("PUT", f"/api/users/{uuid.uuid4()}", {"email": "n@e.co", "name": "n"})[0] == 404
    assert call("DELETE", f"/api/users/{zoe['id']}")[0] == 204
    assert call("DELETE", f"/api/users/{zoe['id']}")[0] == 404
    assert call("GET", f"/api/users/{zoe['id']}")[0] == 404
    out = capsys.readouterr()
    assert database[1] not in out.out + out.err + caplog.text


def test_list_pagination(database):
    made = {call("POST", "/api/users", {"email": f"u{i}@example.com", "name": f"U{i}"})[1]["id"] for i in range(5)}
    seen, token = [], None
    while True:
        status, page, _ = call("GET", "/api/users", query={"limit": "2", **({"next_token": token} if token else {})})
        assert status == 200 and len(page["users"]) <= 2
        seen += [u["id"] for u in page["users"]]
        token = page["next_token"]
        if not token:
            break
    assert sorted(seen) == sorted(made)
    assert call("GET", "/api/users", query={"next_token": "garbage"})[0] == 400


def test_wrong_password_is_503_and_rotation_rereads(database, secret, secret_reads):
    name, password = database
    secret(name, "wrong")
    status, body, _ = call("GET", "/api/users/health")
    assert status == 503 and body["reason"] == "login_refused"
    assert len(secret_reads) == 2  # the cached value was refused: read once more, then give up
    secret(name, password)          # the "rotation" finished
    assert call("GET", "/api/users/health")[0] == 200
    assert len(secret_reads) == 3


def test_reconnects_after_the_connection_breaks(database):
    assert call("GET", "/api/users/health")[0] == 200
    app._conn._sock.close()  # the server or the network dropped it
    status, _, _ = call("GET", "/api/users")
    assert status in (200, 503)
    assert call("GET", "/api/users")[0] == 200


# -- the client itself ----------------------------------------------------------
def test_pg_types_and_parameters(postgres, admin):
    r = admin.query("SELECT $1::int a, $2::text b, $3::numeric c, $4::jsonb d, $5::bool e, $6::text f, $7::bytea g",
                    [7, "it's \"quoted\" ; --", "1.50", {"k": ["ü"]}, False, None, b"\x00\xff"])
    assert r.rows == [(7, "it's \"quoted\" ; --", pg.decimal.Decimal("1.50"), {"k": ["ü"]}, False, None, b"\x00\xff")]
    with pytest.raises(pg.ProgrammingError) as e:
        admin.query("SELECT * FROM no_such_table")
    assert e.value.sqlstate == "42P01"
    assert admin.query("SELECT 1 AS one").first() == {"one": 1}  # usable after an error


def test_pg_md5_and_tls(postgres, admin):
    host, port, user, password, tls = postgres
    admin.execute("SET password_encryption = 'md5'")
    admin.execute("DROP ROLE IF EXISTS md5_user")
    admin.execute("CREATE ROLE md5_user LOGIN PASSWORD 'md5-password'")
    admin.execute("RESET password_encryption")
    try:
        try:
            c = pg.connect(host, port, "md5_user", "md5-password", "postgres", sslmode="require" if tls else "disable")
        except pg.OperationalError:
            if os.environ.get("USERS_TEST_PG"):
                pytest.skip("USERS_TEST_PG's pg_hba.conf does not use md5 for md5_user")
            raise
        with c:
            assert c.query("SELECT current_user u").first() == {"u": "md5_user"}
            if tls:
                assert c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").rows == [(True,)]
    finally:
        admin.execute("DROP ROLE IF EXISTS md5_user")
    with pytest.raises(pg.OperationalError) as e:
        pg.connect(host, port, user, "not-the-password", "postgres", sslmode="require" if tls else "disable")
    assert e.value.sqlstate == "28P01"
    if tls:
        with pytest.raises(pg.Error):  # like RDS with rds.force_ssl = 1
            pg.connect(host, port, user, password, "postgres", sslmode="disable")
        with pytest.raises(pg.InterfaceError):  # a self-signed certificate fails verification
            pg.connect(host, port, user, password, "postgres", sslmode="verify-full")
