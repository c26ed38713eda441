"""Tests of tests/support/aws_front.py: a fake ministack (http.server, records
what it receives) behind the front, and clients that go through the front
exactly as `infra check` will: CONNECT tunnelling, TLS verified against the
throwaway CA only (http.client + ssl, and curl with HTTPS_PROXY when present).

    python3 -m pytest tests/support/test_aws_front.py -q
"""
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

HERE = os.path.dirname(os.path.abspath(__file__))
API = "abc123defg.execute-api.us-east-1.amazonaws.com"
CF = "d1234abcd5678e.cloudfront.net"


# -- a fake ministack ------------------------------------------------------------------
class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen = {}  # token -> request record
        self.lock = threading.Lock()

    @property
    def port(self):
        return self.server_address[1]

    def record(self, token):
        deadline = time.time() + 5
        while time.time() < deadline:
            with self.lock:
                if token in self.seen:
                    return self.seen[token]
            time.sleep(0.01)
        raise AssertionError(f"the upstream never saw {token}")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        parts = self.path.split("/")
        found = re.search(r"t-[0-9a-f]{12}", self.path)
        token = found.group(0) if found else None
        rec = {"method": self.command, "path": self.path, "headers": self.headers.items(), "body": body,
               "peer": self.client_address[1]}
        if token:
            with self.server.lock:
                self.server.seen[token] = rec
        kind = parts[1] if len(parts) > 1 else ""
        if kind == "slow":
            time.sleep(1.0)
        if kind == "status":
            code = int(parts[2])
            self.send_response(code)
            self.send_header("X-Upstream", "yes")
            if code not in (204, 304):
                self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if kind == "redirect":  # as ministack builds one: from the Host it was sent
            self.send_response(301)
            self.send_header("Location", f"https://{self.headers['Host']}/elsewhere?a=1")
            self.send_header("Content-Location", "https://example.com/x")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if kind == "chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"first,", b"x" * 100000, b",last"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if kind == "nolength":  # framed by the end of the connection
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the end")
            return
        out = json.dumps({**rec, "body": body.decode("latin-1")}).encode()
        self.send_response(201 if self.command == "POST" else 200, "Custom Reason")
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "yes")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any


@pytest.fixture(scope="module")
def upstream():
    server = Upstream()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def start_front(tmp, upstream_port, name="front"):
    ca, log = os.path.join(tmp, f"{name}-ca.pem"), os.path.join(tmp, f"{name}.log")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "aws_front.py"), "--upstream",
                             f"127.0.0.1:{upstream_port}", "--ca-out", ca, "--log", log, "--timeout", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # blocks until it listens (or dies)
    if not line.strip().isdigit():
        proc.kill()
        raise AssertionError(f"aws_front did not start: {line!r} {proc.stderr.read()}")
    assert os.path.exists(ca), "the CA is written before the port is printed"
    return proc, int(line), ca, log


class Front:
    def __init__(self, proc, port, ca, log):
        self.proc, self.port, self.ca, self.log = proc, port, ca, log

    def context(self, strict=True):
        ctx = ssl.create_default_context(cafile=self.ca)  # trusts the throwaway CA only
        if strict:
            ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        return ctx

    def https(self, host):
        """An HTTPS connection to `host` through the front (CONNECT host:443)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=20)
        conn.set_tunnel(host, 443)
        return conn

    def tunnel(self, host, port=443):
        """A raw TLS socket to `host` through the front."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 200 "), head
        return self.context().wrap_socket(sock, server_hostname=host)

    def log_lines(self, needle):
        deadline = time.time() + 5
        while time.time() < deadline:
            with open(self.log) as f:
                found = [line.split() for line in f if needle in line]
            if found:
                return found
            time.sleep(0.02)
        return []


@pytest.fixture(scope="module")
def front(upstream, tmp_path_factory):
    proc, port, ca, log = start_front(str(tmp_path_factory.mktemp("front")), upstream.port)
    yield Front(proc, port, ca, log)
    proc.terminate()
    assert proc.wait(10) == 0
    proc.stdout.close()
    proc.stderr.close()


def token():
    return "t-" + uuid.uuid4().hex[:12]


def read_response(rfile):
    """(status, {lower name: value}, body) of one HTTP/1.1 response (Content-Length or chunked)."""
    status = int(rfile.readline().split()[1])
    headers = {}
    while True:
        line = rfile.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            n = int(rfile.readline().split(b";")[0], 16)
            if n == 0:
                rfile.readline()
                break
            body += rfile.read(n)
            rfile.readline()
    else:
        body = rfile.read(int(headers.get("content-length", 0)))
    return status, headers, body


# -- the tests -------------------------------------------------------------------------
def test_execute_api_host_is_rewritten(front, upstream):
    t = token()
    conn = front.https(API)
    conn.request("GET", f"/prod/api/orders/{t}?limit=2&x=%20y", headers={"X-Forwarded-Proto": "http"})
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and r.reason == "Custom Reason"
    rec = upstream.record(t)
    headers = dict(rec["headers"])
    assert headers["Host"] == f"abc123defg.execute-api.localhost:{upstream.port}"
    assert rec["path"] == f"/prod/api/orders/{t}?limit=2&x=%20y"
    assert "X-Forwarded-Proto" not in headers, "only CloudFront gets X-Forwarded-Proto; a client's is dropped"
    # the answer comes back unchanged: headers (repeated ones too) and body
    assert r.getheader("X-Upstream") == "yes" and r.getheader("Server", "").startswith("BaseHTTP")
    assert r.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert json.loads(body)["path"] == rec["path"]
    assert [line[1:] for line in front.log_lines(t)] == [["GET", API, f"/prod/api/orders/{t}?limit=2&x=%20y", "200"]]
    conn.close()


def test_cloudfront_host_is_rewritten_as_an_https_viewer(front, upstream):
    t = token()
    conn = front.https(CF)
    conn.request("GET", f"/assets/{t}.js", headers={"X-Forwarded-Proto": "http", "Accept": "text/html"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    rec = upstream.record(t)
    assert [v for k, v in rec["headers"] if k == "Host"] == [f"d1234abcd5678e.cloudfront.localhost:{upstream.port}"]
    assert [v for k, v in rec["headers"] if k.lower() == "x-forwarded-proto"] == ["https"]
    assert dict(rec["headers"])["Accept"] == "text/html"
    conn.close()


def test_request_bodies_are_forwarded(front, upstream):
    conn = front.https(API)
    payload = bytes(range(256)) * 40 + b"\r\n\r\n0\r\n"  # binary, with CRLFs and a fake last chunk
    t1, t2, t3 = token(), token(), token()
    conn.request("POST", f"/prod/api/orders/{t1}", body=payload, headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    r.read()
    assert r.status == 201
    rec = upstream.record(t1)
    assert rec["body"] == payload and dict(rec["headers"])["Content-Length"] == str(len(payload))

    conn.request("PUT", f"/prod/api/orders/{t2}", body=iter([b'{"a":', b' "\xc3\xbc"', b"}"]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    rec = upstream.record(t2)
    headers = {k.lower(): v for k, v in rec["headers"]}
    assert rec["body"] == '{"a": "ü"}'.encode() and headers["content-length"] == str(len(rec["body"]))
    assert "transfer-encoding" not in headers, "a chunked body is sent on with a Content-Length"

    conn.request("POST", f"/prod/api/orders/{t3}", body=b"")
    r = conn.getresponse()
    r.read()
    assert r.status == 201 and upstream.record(t3)["body"] == b""
    conn.close()


def test_expect_100_continue(front, upstream):
    t = token()
    s = front.tunnel(CF)
    s.sendall(f"POST /api/{t} HTTP/1.1\r\nHost: {CF}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode())
    assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"hello")
    status, _, _ = read_response(s.makefile("rb"))
    assert status == 201
    rec = upstream.record(t)
    assert rec["body"] == b"hello" and "Expect" not in dict(rec["headers"])
    s.close()


def test_keep_alive_and_pipelining(front, upstream):
    conn = front.https(CF)
    tokens = [token() for _ in range(6)]
    socks = set()
    for i, t in enumerate(tokens):
        if i % 2:
            conn.request("POST", f"/api/{t}", body=f"body {i}".encode())
        else:
            conn.request("GET", f"/api/{t}")
        r = conn.getresponse()
        r.read()
        assert r.status in (200, 201) and not r.will_close
        socks.add(id(conn.sock))
    assert len(socks) == 1, "one client connection for every request"
    assert len({upstream.record(t)["peer"] for t in tokens}) == 1, "and one upstream connection"
    conn.close()

    # two requests in one write, answered in order
    s = front.tunnel(API)
    a, b = token(), token()
    s.sendall(f"GET /prod/{a} HTTP/1.1\r\nHost: {API}\r\n\r\n"
              f"POST /prod/{b} HTTP/1.1\r\nHost: {API}\r\nTransfer-Encoding: chunked\r\n\r\n"
              f"3\r\nabc\r\n0\r\n\r\n".encode())
    rfile = s.makefile("rb")
    first, second = read_response(rfile), read_response(rfile)
    assert first[0] == 200 and json.loads(first[2])["path"] == f"/prod/{a}"
    assert second[0] == 201 and json.loads(second[2])["body"] == "abc"
    s.close()


def test_unknown_host_is_502(front):
    conn = front.https("example.com")
    for _ in range(2):  # the tunnel stays usable
        conn.request("GET", "/anything")
        r = conn.getresponse()
        body = r.read().decode()
        assert r.status == 502 and r.getheader("Content-Type").startswith("text/plain")
        assert "example.com" in body and "execute-api" in body and "cloudfront.net" in body
    conn.close()
    # a lookalike is no AWS name either
    conn = front.https("abc123defg.execute-api.us-east-1.amazonaws.com.evil.test")
    conn.request("GET", "/prod/")
    r = conn.getresponse()
    assert r.status == 502
    r.read()
    conn.close()
    # only port 443 is tunnelled
    conn = front.https(CF)
    conn.set_tunnel(CF, 8443)
    with pytest.raises(OSError, match="502"):
        conn.request("GET", "/")
    conn.close()
    assert [line[1:] for line in front.log_lines("example.com /anything")] == [["GET", "example.com", "/anything", "502"]] * 2


def test_certificates_are_what_webpki_accepts(front):
    ctx = front.context(strict=True)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    raw = socket.create_connection(("127.0.0.1", front.port), timeout=20)
    raw.sendall(f"CONNECT {API}:443 HTTP/1.1\r\n\r\n".encode())
    assert raw.recv(100).startswith(b"HTTP/1.1 200 Connection Established")
    s = ctx.wrap_socket(raw, server_hostname=API)
    assert s.selected_alpn_protocol() == "http/1.1", "HTTP/1.1 only, said in ALPN"
    leaf = x509.load_der_x509_certificate(s.getpeercert(binary_form=True))
    s.close()
    with open(front.ca, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    assert leaf.issuer == ca.subject and leaf.version == x509.Version.v3
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [API]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    # a client that does not trust the throwaway CA refuses the certificate
    raw = socket.create_connection(("127.0.0.1", front.port), timeout=20)
    raw.sendall(f"CONNECT {CF}:443 HTTP/1.1\r\n\r\n".encode())
    raw.recv(100)
    with pytest.raises(ssl.SSLCertVerificationError):
        ssl.create_default_context().wrap_socket(raw, server_hostname=CF)
    raw.close()


def test_answers_are_streamed_unchanged(front, upstream):
    conn = front.https(CF)
    conn.request("GET", "/chunked/x")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
    assert r.read() == b"first," + b"x" * 100000 + b",last"
    conn.request("HEAD", "/api/head")
    r = conn.getresponse()
    assert r.status == 200 and int(r.getheader("Content-Length")) > 0 and r.read() == b""
    for code in (204, 304, 404, 500):
        conn.request("GET", f"/status/{code}")
        r = conn.getresponse()
        assert r.status == code and r.getheader("X-Upstream") == "yes" and r.read() == b""
    conn.request("GET", "/redirect")  # a redirect names the AWS host, as on AWS; other URLs untouched
    r = conn.getresponse()
    r.read()
    assert r.status == 301 and r.getheader("Location") == f"https://{CF}/elsewhere?a=1"
    assert r.getheader("Content-Location") == "https://example.com/x"
    conn.request("GET", "/nolength/x")  # read to the end of the connection: the client's ends too
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"until the end" and r.will_close
    conn.close()


def test_client_disconnects_do_not_hurt(front, upstream):
    socket.create_connection(("127.0.0.1", front.port)).close()                 # nothing sent
    s = socket.create_connection(("127.0.0.1", front.port))
    s.sendall(b"CONNECT " + API.encode())                                       # half a CONNECT
    s.close()
    s = socket.create_connection(("127.0.0.1", front.port))
    s.sendall(f"CONNECT {API}:443 HTTP/1.1\r\n\r\n".encode())                   # no TLS after it
    s.recv(100)
    s.sendall(b"\x16\x03\x01garbage")
    s.close()
    s = front.tunnel(API)
    s.sendall(f"POST /prod/x HTTP/1.1\r\nHost: {API}\r\nContent-Length: 100\r\n\r\nshort".encode())
    s.close()                                                                   # body cut short
    s = front.tunnel(API)
    s.sendall(f"GET /slow/{token()} HTTP/1.1\r\nHost: {API}\r\n\r\n".encode())  # gone before the answer
    s.close()
    s = front.tunnel(API)
    s.sendall(b"NONSENSE\r\n\r\n")
    assert read_response(s.makefile("rb"))[0] == 400
    s.close()
    time.sleep(1.5)
    assert front.proc.poll() is None
    t = token()
    conn = front.https(API)
    conn.request("GET", f"/prod/{t}")
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["path"] == f"/prod/{t}"
    conn.close()


def test_plain_http_proxy_requests(front, upstream):
    t = token()
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=20)
    conn.request("GET", f"http://{CF}/index/{t}.html")
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    rec = upstream.record(t)
    assert dict(rec["headers"])["Host"] == f"d1234abcd5678e.cloudfront.localhost:{upstream.port}"
    assert "X-Forwarded-Proto" not in dict(rec["headers"]), "an HTTP viewer"
    conn.request("GET", f"http://{API}/prod/")
    r = conn.getresponse()
    assert r.status == 502 and "HTTPS only" in r.read().decode()
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=20)
    conn.request("GET", "/not-a-proxy-request")
    r = conn.getresponse()
    assert r.status == 400 and "proxy" in r.read().decode()
    conn.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_curl_with_the_standard_environment(front, upstream):
    """What a real client does with HTTPS_PROXY / NO_PROXY and a CA file (curl reads
    CURL_CA_BUNDLE; the Rust client reads SSL_CERT_FILE: both point at the CA)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HTTPS_PROXY=f"http://127.0.0.1:{front.port}", NO_PROXY="127.0.0.1,localhost",
               SSL_CERT_FILE=front.ca, CURL_CA_BUNDLE=front.ca)
    a, b = token(), token()
    out = subprocess.run(["curl", "-sS", "-v", "-w", "\n%{http_code}\n", f"https://{API}/prod/api/{a}",
                          "--next", "-sS", "-w", "\n%{http_code}\n", "-d", "x=1&y=2", f"https://{API}/prod/api/{b}"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[1] == "200" and out.stdout.rstrip().endswith("201")
    assert "Re-using existing connection" in out.stderr or "Reusing existing connection" in out.stderr
    assert upstream.record(b)["body"] == b"x=1&y=2"
    assert dict(upstream.record(a)["headers"])["Host"] == f"abc123defg.execute-api.localhost:{upstream.port}"
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"https://{CF}/{token()}"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout == "200", out.stderr
    env.pop("CURL_CA_BUNDLE")
    env.pop("SSL_CERT_FILE")
    out = subprocess.run(["curl", "-sS", f"https://{CF}/"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 60, "without the CA the certificate is refused"


def test_upstream_down_is_502(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    proc, port, ca, log = start_front(str(tmp_path), closed)
    try:
        f = Front(proc, port, ca, log)
        conn = f.https(API)
        conn.request("GET", "/prod/")
        r = conn.getresponse()
        assert r.status == 502 and "unreachable" in r.read().decode()
        conn.close()
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_stops_when_its_parent_dies(tmp_path, upstream):
    """A front started by a process that is killed goes away with it."""
    script = (f"import subprocess, sys\n"
              f"p = subprocess.Popen([sys.executable, {os.path.join(HERE, 'aws_front.py')!r}, '--upstream', "
              f"'127.0.0.1:{upstream.port}', '--ca-out', {str(tmp_path / 'ca.pem')!r}], stdout=subprocess.PIPE)\n"
              f"print(p.stdout.readline().decode().strip(), p.pid, flush=True)\n"
              f"import time; time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    port, pid = map(int, parent.stdout.readline().split())
    socket.create_connection(("127.0.0.1", port)).close()
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break  # exited, not yet reaped by its new parent
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        raise AssertionError("aws_front outlived its parent")
