#!/usr/bin/env python3
"""postgres_cluster: a throwaway PostgreSQL server standing in for an RDS for
PostgreSQL instance's endpoint, for the tests only.

RDS gives a DB instance a real PostgreSQL server behind Endpoint.Address:Port,
reached over TLS (rds.force_ssl = 1, the default from PostgreSQL 15) with
scram-sha-256 password authentication. ministack only records the instance;
`ministack_patched.py --postgres HOST:PORT` makes that endpoint this server
(it creates the master role and database there). The product and the
functions then just connect to the endpoint the RDS API returns, as on AWS:
they contain no emulator code.

Usage:
    python3 tests/support/postgres_cluster.py [--host 127.0.0.1] [--port 0]
        [--user postgres] [--password postgres] [--no-tls] [--allow-plain]
        [--hba LINE]... [--cert-out FILE] [--tmpdir DIR] [--bindir DIR]
prints `HOST:PORT` as the only line on stdout once the server accepts
connections, then runs until SIGTERM/SIGINT/SIGHUP or until its parent dies,
and then stops the server and deletes the cluster. Then, for example:
    python3 tests/support/ministack_patched.py --port P --postgres HOST:PORT \\
        --postgres-user postgres --postgres-password postgres

The cluster: initdb into a fresh temp dir (--tmpdir, default $TMPDIR or /tmp),
superuser --user/--password; TCP on --host only (port 0: a free one), TLS
with a self-signed certificate for localhost and the host's IP (its PEM
written to --cert-out for sslmode=verify-full), TCP without TLS refused unless
--allow-plain (--no-tls: no TLS at all), scram-sha-256 everywhere; `--hba`
lines go first in pg_hba.conf (e.g. "hostssl all md5_user 127.0.0.1/32 md5").
Durability is off (fsync, synchronous_commit, full_page_writes). The server
binaries are the newest /usr/lib/postgresql/*/bin (Debian), else initdb on PATH;
if there are none and we are root, `apt-get install -y postgresql` first.
PostgreSQL refuses to run as root: as root, initdb and postgres run as the
`postgres` account (privileges dropped in the child; the temp dir is theirs).
Clusters left behind by a run that was killed outright (SIGKILL) are deleted by
the next run.
"""
import argparse
import ctypes
import datetime
import glob
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PREFIX = "pg-cluster-"
PR_SET_PDEATHSIG = 1
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def say(msg):
    try:
        print(f"postgres_cluster: {msg}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _pdeathsig(sig):
    if _LIBC is not None:
        try:
            _LIBC.prctl(PR_SET_PDEATHSIG, int(sig))
        except (OSError, AttributeError):
            pass


class Stop(Exception):
    pass


def bindir(given):
    if given:
        return given
    found = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(os.path.join(d, "initdb"))]
    if found:
        return max(found, key=lambda d: [int(x) if x.isdigit() else 0 for x in d.split("/")[-2].split(".")])
    on_path = shutil.which("initdb")
    return os.path.dirname(on_path) if on_path else None


def install():
    """apt-get install -y postgresql (once more after apt-get update if it fails)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say("no PostgreSQL server binaries: apt-get install -y postgresql")
    for update in (False, True):
        if update:
            subprocess.run(["apt-get", "update"], env=env, stdout=sys.stderr, stderr=sys.stderr)
        r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "postgresql"], env=env,
                           stdout=sys.stderr, stderr=sys.stderr)
        if r.returncode == 0:
            return True
    return False


def sweep(parent):
    """Deletes the clusters of earlier runs that were killed outright."""
    for base in glob.glob(os.path.join(parent, PREFIX + "*")):
        try:
            with open(os.path.join(base, "owner.pid")) as f:
                owner = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        alive = []
        for pid in (owner, _postmaster_pid(base)):
            if pid:
                try:
                    os.kill(pid, 0)
                    alive.append(pid)
                except ProcessLookupError:
                    pass
                except PermissionError:
                    alive.append(pid)
        if not alive:
            shutil.rmtree(base, ignore_errors=True)


def _postmaster_pid(base):
    try:
        with open(os.path.join(base, "data", "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def self_signed(host, key_path, crt_path):
    """A self-signed server certificate for localhost and `host` (cryptography, else openssl)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        r = subprocess.run(["openssl", "req", "-new", "-x509", "-days", "30", "-nodes", "-subj", "/CN=localhost",
                            "-addext", f"subjectAltName=DNS:localhost,IP:{host}", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", key_path, "-out", crt_path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"postgres_cluster: no cryptography module and openssl failed: {r.stderr.strip()}")
        return
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    alt = [x509.DNSName("localhost")]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(crt_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def free_port(host):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def main():
    parent = os.getppid()
    _pdeathsig(signal.SIGTERM)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    p.add_argument("--user", default="postgres", help="superuser name (default postgres)")
    p.add_argument("--password", default="postgres", help="superuser password (default postgres)")
    p.add_argument("--no-tls", action="store_true", help="no TLS at all")
    p.add_argument("--allow-plain", action="store_true", help="accept TCP without TLS too")
    p.add_argument("--hba", action="append", default=[], help="a pg_hba.conf line put before the defaults")
    p.add_argument("--cert-out", help="write the server certificate (PEM) here")
    p.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the cluster's temp dir goes")
    p.add_argument("--bindir", help="PostgreSQL server binaries (default: newest /usr/lib/postgresql/*/bin)")
    p.add_argument("--start-timeout", type=float, default=120.0)
    args = p.parse_args()
    if not args.password:
        p.error("--password must not be empty (PostgreSQL refuses an empty password)")

    def stop(*_):
        raise Stop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    if os.getppid() != parent:
        return 0

    bins = bindir(args.bindir)
    if bins is None and install():
        bins = bindir(None)
    if bins is None:
        say("no PostgreSQL server (initdb): apt-get install postgresql, or pass --bindir")
        return 2

    # as root, the server runs as `postgres`
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            say("running as root and there is no `postgres` account to run PostgreSQL as")
            return 2

    def as_owner():
        if owner is not None:
            os.setgroups([])
            os.setgid(owner.pw_gid)
            os.setuid(owner.pw_uid)
        _pdeathsig(signal.SIGQUIT)  # after setuid, which clears it: immediate shutdown if we die

    sweep(args.tmpdir)
    base = tempfile.mkdtemp(prefix=PREFIX, dir=args.tmpdir)
    proc = None
    try:
        with open(os.path.join(base, "owner.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")
        os.chmod(base, 0o700)
        if owner is not None:
            os.chown(base, owner.pw_uid, owner.pw_gid)
        data = os.path.join(base, "data")
        pwfile = os.path.join(base, "pw")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(args.password + "\n")
        if owner is not None:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)

        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        r = subprocess.run([os.path.join(bins, "initdb"), "-D", data, "-U", args.user, f"--pwfile={pwfile}",
                            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
                           preexec_fn=as_owner, cwd=base, env=env, capture_output=True, text=True,
                           timeout=args.start_timeout)
        os.unlink(pwfile)
        if r.returncode != 0:
            hint = "" if owner is None else f" (can `postgres` reach {base}? its parents must be searchable)"
            say(f"initdb failed{hint}: {(r.stderr or r.stdout).strip()[-2000:]}")
            return 1

        tls = not args.no_tls
        conf = [f"listen_addresses = '{args.host}'", f"unix_socket_directories = '{base}'",
                "password_encryption = 'scram-sha-256'", "fsync = off", "synchronous_commit = off",
                "full_page_writes = off", "shared_buffers = '32MB'", "max_connections = 100",
                "logging_collector = off", "log_destination = 'stderr'"]
        if tls:
            key, crt = os.path.join(data, "server.key"), os.path.join(data, "server.crt")
            self_signed(args.host, key, crt)
            if owner is not None:
                os.chown(key, owner.pw_uid, owner.pw_gid)
                os.chown(crt, owner.pw_uid, owner.pw_gid)
            conf += ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'",
                     "ssl_min_protocol_version = 'TLSv1.2'"]
            if args.cert_out:
                shutil.copyfile(crt, args.cert_out)
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write("\n# postgres_cluster.py\n" + "\n".join(conf) + "\n")
        hba = ["# postgres_cluster.py", "local all all scram-sha-256", *args.hba]
        if tls and not args.allow_plain:  # like RDS with rds.force_ssl = 1
            hba += ["hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"]
        hba += ["host all all 0.0.0.0/0 scram-sha-256", "host all all ::/0 scram-sha-256"]
        with open(os.path.join(data, "pg_hba.conf"), "w") as f:
            f.write("\n".join(hba) + "\n")

        logpath = os.path.join(base, "server.log")
        for attempt in range(5):
            port = args.port or free_port(args.host)
            with open(logpath, "ab") as log:
                proc = subprocess.Popen([os.path.join(bins, "postgres"), "-D", data, "-p", str(port)],
                                        preexec_fn=as_owner, cwd=base, env=env, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=log, start_new_session=True)
            if wait_ready(bins, args.host, port, proc, env, args.start_timeout):
                break
            taken = proc.poll() is not None and "already in use" in tail(logpath)
            stop_server(proc)
            proc = None
            if not taken or args.port:
                say(f"PostgreSQL did not start: {tail(logpath)}")
                return 1
        else:
            say("no free port after 5 tries")
            return 1

        shown = f"[{args.host}]" if ":" in args.host else args.host
        say(f"PostgreSQL {os.path.basename(os.path.dirname(bins))} on {shown}:{port} (TLS {'on' if tls else 'off'}), "
            f"superuser {args.user}, data in {data}")
        print(f"{shown}:{port}", flush=True)
        while True:
            try:
                code = proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                if os.getppid() != parent:
                    return 0  # the parent is gone (and no death signal came)
                continue
            proc = None
            say(f"PostgreSQL exited by itself ({code}): {tail(logpath)}")
            return 1
    except Stop:
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(base, ignore_errors=True)


def wait_ready(bins, host, port, proc, env, timeout):
    """True once the server accepts connections; False if it died first."""
    isready = os.path.join(bins, "pg_isready")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if os.path.exists(isready):
            r = subprocess.run([isready, "-q", "-h", host, "-p", str(port), "-t", "2"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return True
        else:
            try:
                socket.create_connection((host, port), timeout=1).close()
                return True
            except OSError:
                pass
        time.sleep(0.1)
    return False


def stop_server(proc):
    """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 15), (signal.SIGQUIT, 5), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(sig)
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        except OSError:
            return


def tail(path, n=1500):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
