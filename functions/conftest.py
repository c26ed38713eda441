"""Shared fixtures of the functions' unit tests (this file is outside every
function's source directory, so it is not packaged with them).

`postgres` gives a PostgreSQL server: USERS_TEST_PG=host:port (with
USERS_TEST_PG_USER / USERS_TEST_PG_PASSWORD, a role allowed to create roles
and databases), else a throwaway cluster made with the local `initdb` (TLS on
when `openssl` is there, like RDS), else the tests that need it are skipped,
saying why.
"""
import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def load_app(function):
    """functions/<function>/app.py as module `<function>_app` (both functions
    have an app.py; the users one imports its pg.py)."""
    src = os.path.join(HERE, function)
    if src not in sys.path:
        sys.path.insert(0, src)
    spec = importlib.util.spec_from_file_location(f"{function}_app", os.path.join(src, "app.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def aws_env(monkeypatch):
    """Credentials and region for moto; nothing reaches AWS."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir():
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if os.path.exists(os.path.join(out, "initdb")):
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


@pytest.fixture(scope="session")
def postgres():
    """(host, port, superuser, password, tls) of a PostgreSQL server."""
    if os.environ.get("USERS_TEST_PG"):
        host, _, port = os.environ["USERS_TEST_PG"].rpartition(":")
        yield (host or "127.0.0.1", int(port), os.environ.get("USERS_TEST_PG_USER", "postgres"),
               os.environ.get("USERS_TEST_PG_PASSWORD", ""), os.environ.get("USERS_TEST_PG_TLS", "1") == "1")
        return
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server: install PostgreSQL (initdb) or set USERS_TEST_PG=host:port "
                    "with USERS_TEST_PG_USER/USERS_TEST_PG_PASSWORD")
    # initdb refuses to run as root: run the server as the `postgres` account then.
    as_user = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a `postgres` account to run the throwaway PostgreSQL server")
        runner = shutil.which("runuser") or shutil.which("setpriv")
        if runner is None:
            pytest.skip("running as root without runuser to start PostgreSQL as `postgres`")
        as_user = [runner, "-u", "postgres", "--"] if runner.endswith("runuser") else \
            [runner, f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups"]
    base = tempfile.mkdtemp(prefix="users-test-pg-")
    data = os.path.join(base, "data")
    pwfile = os.path.join(base, "pw")
    password = "test-superuser-password"
    with open(pwfile, "w") as f:
        f.write(password + "\n")
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def run(*cmd):
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)

    r = run(os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "-E", "UTF8")
    if r.returncode != 0:
        pytest.skip(f"initdb failed: {r.stderr.strip()[:300]}")
    tls = False
    if shutil.which("openssl"):
        key, crt = os.path.join(data, "server.key"), os.path.join(data, "server.crt")
        ok = subprocess.run(["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=localhost",
                             "-keyout", key, "-out", crt], capture_output=True).returncode == 0
        if ok:
            os.chmod(key, 0o600)
            if owner is not None:
                os.chown(key, owner.pw_uid, owner.pw_gid)
                os.chown(crt, owner.pw_uid, owner.pw_gid)
            tls = True
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                "password_encryption = 'scram-sha-256'\nfsync = off\n")
        if tls:
            f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
    with open(os.path.join(data, "pg_hba.conf"), "w") as f:
        # like RDS with rds.force_ssl: TCP only over TLS (md5_user tests md5 authentication)
        f.write("local all all scram-sha-256\n")
        if tls:
            f.write("hostssl all md5_user 127.0.0.1/32 md5\nhostnossl all all 127.0.0.1/32 reject\n"
                    "hostssl all all 127.0.0.1/32 scram-sha-256\n")
        else:
            f.write("host all md5_user 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 scram-sha-256\n")
    r = run(os.path.join(bindir, "pg_ctl"), "-D", data, "-l", os.path.join(base, "log"), "-w", "-t", "60", "start")
    if r.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {r.stderr.strip()[:300]}")
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield ("127.0.0.1", port, "postgres", password, tls)
    finally:
        run(os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)
