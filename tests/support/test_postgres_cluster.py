"""Tests of tests/support/postgres_cluster.py: the server it starts is reached
over TLS with scram-sha-256 (by functions/users/pg.py, the client the users
function and ministack_patched.py use), refuses plain TCP, and the cluster is
gone after SIGTERM, after its parent dies, and (next run) after a SIGKILL.

    python3 -m pytest tests/support/test_postgres_cluster.py -q
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "postgres_cluster.py")
sys.path.insert(0, os.path.join(HERE, "..", "..", "functions", "users"))
import pg  # noqa: E402

if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb") and os.geteuid() != 0:
    pytest.skip("no PostgreSQL server binaries (and not root to install them)", allow_module_level=True)


@pytest.fixture
def parent_dir():
    """A temp dir the `postgres` account can enter (pytest's tmp_path is root-only)."""
    d = tempfile.mkdtemp(prefix="pg-cluster-test-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start(parent_dir, *extra):
    proc = subprocess.Popen([sys.executable, SCRIPT, "--tmpdir", parent_dir, "--password", "pw-test", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line:
        proc.wait(10)
        raise AssertionError(f"postgres_cluster did not start: {proc.stderr.read()}")
    host, _, port = line.rpartition(":")
    return proc, host, int(port)


def clusters(parent_dir):
    return glob.glob(os.path.join(parent_dir, "pg-cluster-*"))


def wait_for(condition, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def refused(host, port):
    try:
        pg.connect(host, port, "postgres", "pw-test", "postgres", sslmode="require", timeout=2).close()
        return False
    except (pg.Error, OSError):
        return True


def test_tls_scram_server_and_cleanup_on_sigterm(parent_dir):
    cert = os.path.join(parent_dir, "server.pem")
    proc, host, port = start(parent_dir, "--cert-out", cert)
    try:
        assert host == "127.0.0.1" and 0 < port < 65536
        assert len(clusters(parent_dir)) == 1
        with pg.connect(host, port, "postgres", "pw-test", "postgres", sslmode="require") as c:
            assert c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").rows == [(True,)]
            assert c.query("SHOW password_encryption").rows == [("scram-sha-256",)]
            # what ministack_patched.py does for an instance: a master role and its database
            c.execute("CREATE ROLE app_admin LOGIN CREATEDB PASSWORD 'app-pw'")
            c.execute("CREATE DATABASE app OWNER app_admin")
        with pg.connect(host, port, "app_admin", "app-pw", "app", sslmode="verify-full", sslrootcert=cert) as c:
            assert c.query("SELECT current_database() d").first() == {"d": "app"}
        with pytest.raises(pg.OperationalError) as e:
            pg.connect(host, port, "postgres", "not-it", "postgres", sslmode="require")
        assert e.value.sqlstate == "28P01"
        with pytest.raises(pg.OperationalError) as e:  # like RDS with rds.force_ssl = 1
            pg.connect(host, port, "postgres", "pw-test", "postgres", sslmode="disable")
        assert e.value.sqlstate == "28000"
        with pytest.raises(pg.InterfaceError):  # self-signed: not trusted without the certificate
            pg.connect(host, port, "postgres", "pw-test", "postgres", sslmode="verify-full")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        out = proc.stdout.read()
        proc.stdout.close()
        proc.stderr.close()
    assert out == "", "HOST:PORT is the only line on stdout"
    assert clusters(parent_dir) == []
    assert refused(host, port)


def test_cleanup_when_the_parent_dies(parent_dir):
    wrapper = (f"import subprocess, sys\n"
               f"p = subprocess.Popen([sys.executable, {SCRIPT!r}, '--tmpdir', {parent_dir!r}, '--password', 'pw-test',"
               f" '--allow-plain', '--hba', 'host all plain_md5 127.0.0.1/32 md5'], stdout=subprocess.PIPE, text=True)\n"
               f"print(p.stdout.readline().strip(), flush=True)\n"
               f"import time; time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", wrapper], stdout=subprocess.PIPE, text=True)
    try:
        host, _, port = parent.stdout.readline().strip().rpartition(":")
        port = int(port)
        with pg.connect(host, port, "postgres", "pw-test", "postgres", sslmode="disable") as c:  # --allow-plain
            c.execute("SET password_encryption = 'md5'")
            c.execute("CREATE ROLE plain_md5 LOGIN PASSWORD 'md5-pw'")
        pg.connect(host, port, "plain_md5", "md5-pw", "postgres", sslmode="disable").close()  # the --hba line
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    wait_for(lambda: clusters(parent_dir) == [], "the cluster to be deleted")
    assert refused(host, port)


def test_a_killed_run_is_swept_by_the_next(parent_dir):
    proc, host, port = start(parent_dir)
    (left,) = clusters(parent_dir)
    with open(os.path.join(left, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    proc.kill()  # no cleanup possible: the server stops (its parent-death signal), the files stay
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    wait_for(lambda: not alive(postmaster), "the server to stop")
    assert os.path.isdir(left) and refused(host, port)
    proc, host, port = start(parent_dir)
    try:
        assert left not in clusters(parent_dir) and len(clusters(parent_dir)) == 1
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        proc.stdout.close()
        proc.stderr.close()
    assert clusters(parent_dir) == []
