#!/usr/bin/env python3
"""aws_front: the public HTTPS endpoints of AWS in front of ministack, for the
end-to-end tests only.

On AWS a REST API stage answers at https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/...
and a distribution at https://{label}.cloudfront.net/..., over TLS with
certificates from a public CA. ministack serves both over plain HTTP on one
port, as the virtual hosts {api_id}.execute-api.localhost:P and
{label}.cloudfront.localhost:P (label = first label of the distribution's
DomainName; `X-Forwarded-Proto: https` makes a request an HTTPS viewer). This
front makes the AWS names work as they are: it is an ordinary HTTP proxy
(CONNECT tunnelling) that terminates TLS itself with certificates issued on the
fly by a throwaway CA, then forwards each request to ministack with the Host
rewritten. The product (`infra check`) therefore has no emulator code: it asks
for the real AWS URLs and honours only the standard HTTPS_PROXY / NO_PROXY and
SSL_CERT_FILE, exactly as behind a TLS-inspecting corporate proxy.

Usage:
    python3 tests/support/aws_front.py --upstream 127.0.0.1:P --ca-out CA.pem [--log FILE]
        [--listen 127.0.0.1] [--port 0] [--ministack-host localhost] [--timeout 120]
prints the proxy's port as the first line of stdout once it listens (CA.pem is
written by then); it stops on SIGTERM/SIGINT or when its parent dies. A client then needs
    HTTPS_PROXY=http://127.0.0.1:PORT  NO_PROXY=127.0.0.1,localhost  SSL_CERT_FILE=CA.pem

Routing (anything else: 502 with a plain-text body saying why):
    https://{id}.execute-api.{region}.amazonaws.com  ->  Host: {id}.execute-api.localhost:P
    https://{label}.cloudfront.net                   ->  Host: {label}.cloudfront.localhost:P
                                                         + X-Forwarded-Proto: https
    http://{label}.cloudfront.net (absolute-URI proxy request, no TLS) -> same Host, an
        HTTP viewer (ministack then redirects or refuses as the viewer policy says);
    http://...execute-api... is refused: API Gateway serves HTTPS only.
Requests are read as HTTP/1.1 (keep-alive, pipelining, Content-Length or chunked
bodies, Expect: 100-continue), sent to ministack with a Content-Length, and the
answer is streamed back unchanged (status line, headers, body), except the
hop-by-hop Connection/Keep-Alive headers (this hop's own) and a Location that
names ministack's virtual host (a redirect built from the rewritten Host), which
is given back the AWS name. No HTTP/2 (ALPN offers http/1.1), no WebSocket.
--log FILE: one line per request: time, method, original host, path, status.
"""
import ctypes
import os
import signal

# First of all (the imports below take a while on a busy machine): SIGTERM when
# the process that started us goes away (Linux prctl PR_SET_PDEATHSIG).
_PARENT = os.getppid()
if __name__ == "__main__":
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass

import argparse  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import ipaddress  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

MAX_LINE = 16 * 1024
MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024  # API Gateway's own limit is 10 MB
COPY = 64 * 1024

API_RE = re.compile(r"^([a-z0-9]+)\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
CF_RE = re.compile(r"^([a-z0-9]+)\.cloudfront\.net$")
HEX_RE = re.compile(rb"^[0-9A-Fa-f]+$")
# Headers of one hop only (RFC 9110 7.6.1), and what this hop re-frames itself.
HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"proxy-authenticate",
       b"te", b"trailer", b"transfer-encoding", b"upgrade", b"content-length", b"expect", b"host",
       b"x-forwarded-proto"}


# -- the throwaway certificate authority -----------------------------------------------
class Authority:
    """A CA made at start; a server certificate (and SSLContext) per host name, on demand."""

    def __init__(self, workdir):
        self.dir = workdir
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "infra tests"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "aws_front throwaway CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(name).issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False,
                                                  key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        self._contexts = {}
        self._lock = threading.Lock()

    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def context(self, host):
        host = host.lower().rstrip(".")
        with self._lock:
            ctx = self._contexts.get(host)
            if ctx is None:
                ctx = self._contexts[host] = self._issue(host)
            return ctx

    def _issue(self, host):
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            san = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)] if len(host) <= 64 else [])
        cert = (x509.CertificateBuilder()
                .subject_name(subject).issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=7))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=False, crl_sign=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName([san]), critical=not subject)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        stem = os.path.join(self.dir, hashlib.sha256(host.encode()).hexdigest()[:24])
        with open(stem + ".pem", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(stem + ".key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(stem + ".pem", stem + ".key")
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.sni_callback = self._sni
        return ctx

    def _sni(self, sslsock, server_name, _ctx):
        """The certificate follows the name the client asked for (SNI)."""
        if server_name:
            try:
                sslsock.context = self.context(server_name)
            except Exception:  # noqa: BLE001 - a bad name must not kill the thread
                return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None


# -- HTTP/1.1 plumbing -----------------------------------------------------------------
class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    pass


class UpstreamFailed(Exception):
    pass


def read_head(rfile, err=BadRequest):
    """The lines of a message head (start line first), None on a clean EOF before it."""
    lines, total = [], 0
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            if not lines:
                return None
            raise err(400, "connection closed inside the message head")
        total += len(line)
        if len(line) > MAX_LINE or total > MAX_HEAD:
            raise err(431, "message head too large")
        if line in (b"\r\n", b"\n"):
            if not lines:
                continue  # RFC 9112 2.2: ignore empty lines before the request line
            return lines
        if not line.endswith(b"\n"):
            raise err(400, "connection closed inside the message head")
        lines.append(line.rstrip(b"\r\n"))


def parse_fields(lines, err=BadRequest):
    """[(lower name, value, raw line)]."""
    out = []
    for raw in lines:
        if raw[:1] in (b" ", b"\t") or b":" not in raw:
            raise err(400, "malformed header line")
        name, value = raw.split(b":", 1)
        if not name or name != name.strip():
            raise err(400, "malformed header name")
        out.append((name.lower(), value.strip(), raw))
    return out


def field(fields, name):
    values = [v for n, v, _ in fields if n == name]
    return b", ".join(values) if values else None


def tokens(value):
    return {t.strip().lower() for t in (value or b"").split(b",") if t.strip()}


def read_exact(rfile, n, err):
    data = rfile.read(n)
    if len(data) != n:
        raise err(400, "connection closed inside a body")
    return data


def read_request_body(rfile, fields, send_continue):
    te = field(fields, b"transfer-encoding")
    cl = [v for n, v, _ in fields if n == b"content-length"]
    expect = b"100-continue" in tokens(field(fields, b"expect"))
    if te is not None:
        codings = [t.strip().lower() for t in te.split(b",") if t.strip()]
        if not codings or codings[-1] != b"chunked" or any(c != b"chunked" for c in codings):
            raise BadRequest(501, f"unsupported Transfer-Encoding {te.decode('latin-1')!r}")
        if expect:
            send_continue()
        body = bytearray()
        while True:
            line = rfile.readline(MAX_LINE)
            size = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not HEX_RE.match(size):
                raise BadRequest(400, "malformed chunked body")
            n = int(size, 16)
            if n == 0:
                break
            if len(body) + n > MAX_BODY:
                raise BadRequest(413, "request body too large")
            body += read_exact(rfile, n, BadRequest)
            if rfile.readline(MAX_LINE) not in (b"\r\n", b"\n"):
                raise BadRequest(400, "malformed chunked body")
        while True:  # trailers: read and dropped
            line = rfile.readline(MAX_LINE)
            if not line:
                raise BadRequest(400, "connection closed inside chunked trailers")
            if line in (b"\r\n", b"\n"):
                return bytes(body), True
    if cl:
        values = {v.strip() for c in cl for v in c.split(b",")}
        value = values.pop() if len(values) == 1 else b""
        if not value.isdigit():
            raise BadRequest(400, "invalid Content-Length")
        n = int(value)
        if n > MAX_BODY:
            raise BadRequest(413, "request body too large")
        if n and expect:
            send_continue()
        return read_exact(rfile, n, BadRequest), True
    return b"", False


def split_authority(authority, default_port):
    """'host[:port]' or '[v6]:port' -> (lower host, port)."""
    authority = authority.strip()
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port = authority.rpartition(":")
        if not sep or not port.isdigit():
            host, port = authority, ""
    return host.lower().rstrip("."), int(port) if port.isdigit() else default_port


# -- the proxy -------------------------------------------------------------------------
class Front:
    def __init__(self, args, authority, log):
        host, _, port = args.upstream.rpartition(":")
        self.upstream = (host or "127.0.0.1", int(port))
        self.suffix = f"{args.ministack_host}:{self.upstream[1]}"
        self.authority = authority
        self.timeout = args.timeout
        self._log = log
        self._log_lock = threading.Lock()

    def log(self, method, host, path, status):
        if self._log is None:
            return
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._log_lock:
            self._log.write(f"{stamp} {method} {host} {path} {status}\n")
            self._log.flush()

    def route(self, host, port, scheme):
        """(upstream Host, extra headers) or (None, why)."""
        default = 443 if scheme == "https" else 80
        if port != default:
            return None, f"port {port} is not served ({scheme} on {default} only)"
        m = API_RE.match(host)
        if m:
            if scheme != "https":
                return None, "API Gateway endpoints serve HTTPS only"
            return f"{m.group(1)}.execute-api.{self.suffix}", []
        m = CF_RE.match(host)
        if m:
            return f"{m.group(1)}.cloudfront.{self.suffix}", [b"X-Forwarded-Proto: https"] if scheme == "https" else []
        return None, ("only {id}.execute-api.{region}.amazonaws.com and {label}.cloudfront.net are served")

    # one client connection
    def handle(self, sock, peer):
        sock.settimeout(self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head = self._peek_head(sock)
            if head is None:
                return
            lines = head.split(b"\r\n")
            while lines and not lines[0]:
                lines.pop(0)  # RFC 9112 2.2: empty lines before the request line
            if not lines:
                return
            parts = lines[0].split()
            if len(parts) == 3 and parts[0] == b"CONNECT":
                self._tunnel(sock, parts[1].decode("latin-1"))
            else:
                # a plain-HTTP proxy request (absolute URI), on a buffered reader from here
                rfile = sock.makefile("rb", COPY)
                self.serve(rfile, sock, "http", None, first=lines)
        except (OSError, ClientGone, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _peek_head(self, sock):
        """Reads exactly the first message head, not one byte more (a TLS hello follows)."""
        seen, deadline = -1, time.monotonic() + self.timeout
        while True:
            data = sock.recv(MAX_HEAD, socket.MSG_PEEK)
            if not data:
                return None
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                got = bytearray()
                while len(got) < end + 4:
                    chunk = sock.recv(end + 4 - len(got))
                    if not chunk:
                        return None
                    got += chunk
                return bytes(got[:end])
            if len(data) >= MAX_HEAD:
                self._send_error(sock, 431, "request head too large", close=True)
                return None
            if time.monotonic() > deadline:
                return None
            if len(data) == seen:  # a peek returns at once while bytes wait: poll for the rest
                time.sleep(0.005)
            seen = len(data)

    def _tunnel(self, sock, authority):
        host, port = split_authority(authority, 443)
        if port != 443 or not host:
            msg = f"aws_front: CONNECT {authority} refused: only port 443 is tunnelled\n"
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(msg), msg.encode()))
            self.log("CONNECT", host, "-", 502)
            return
        sock.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        try:
            tls = self.authority.context(host).wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError, ValueError) as e:
            print(f"aws_front: TLS handshake for {host} failed: {e}", file=sys.stderr, flush=True)
            return
        try:
            self.serve(tls.makefile("rb", COPY), tls, "https", host)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def serve(self, rfile, sock, scheme, tunnel_host, first=None):
        upstream = Upstream(self.upstream, self.timeout)
        try:
            while True:
                if first is not None:
                    head, first = first, None
                else:
                    try:
                        head = read_head(rfile)
                    except BadRequest as e:
                        self._send_error(sock, e.status, str(e), close=True)
                        return
                    if head is None:
                        return
                if not self.exchange(head, rfile, sock, scheme, tunnel_host, upstream):
                    return
        finally:
            upstream.close()

    def _send(self, sock, data):
        try:
            sock.sendall(data)
        except (OSError, ValueError) as e:
            raise ClientGone() from e

    def _send_error(self, sock, status, message, close, extra=b""):
        reason = {400: "Bad Request", 413: "Content Too Large", 431: "Request Header Fields Too Large",
                  501: "Not Implemented", 502: "Bad Gateway", 504: "Gateway Timeout"}.get(status, "Error")
        body = f"aws_front: {message}\n".encode()
        try:
            sock.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                         b"%s%s\r\n%s" % (status, reason.encode(), len(body), extra,
                                          b"Connection: close\r\n" if close else b"", body))
        except (OSError, ValueError):
            raise ClientGone() from None

    def exchange(self, head, rfile, sock, scheme, tunnel_host, upstream):
        """One request and its answer; True when the client connection stays open."""
        parts = head[0].split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[2].startswith(b"HTTP/1."):
            self._send_error(sock, 400, "malformed request line", close=True)
            self.log("-", tunnel_host or "-", "-", 400)
            return False
        method_b, target_b, version_b = parts
        method, target = method_b.decode("latin-1"), target_b.decode("latin-1")
        try:
            fields = parse_fields(head[1:])
        except BadRequest as e:
            self._send_error(sock, e.status, str(e), close=True)
            self.log(method, tunnel_host or "-", target, e.status)
            return False
        conn_tokens = tokens(field(fields, b"connection"))
        client_keep = b"close" not in conn_tokens if version_b == b"HTTP/1.1" else b"keep-alive" in conn_tokens

        # where to: absolute-URI target, else the Host header, else the tunnel's host
        host_value = (field(fields, b"host") or b"").decode("latin-1")
        m = re.match(r"^(https?)://([^/?#]*)(.*)$", target, re.IGNORECASE)
        if m:
            if m.group(1).lower() != scheme:
                self._send_error(sock, 400, f"{m.group(1)} URI on a {scheme} connection", close=True)
                self.log(method, tunnel_host or "-", target, 400)
                return False
            host_value, target = m.group(2), m.group(3) or "/"
            if target.startswith("?"):
                target = "/" + target
        elif scheme == "http":
            self._send_error(sock, 400, "this is a proxy: send CONNECT host:443 or an absolute-URI request",
                             close=True)
            self.log(method, host_value or "-", target, 400)
            return False
        if not host_value and tunnel_host:
            host_value = tunnel_host
        host, port = split_authority(host_value, 443 if scheme == "https" else 80)

        def send_continue():
            self._send(sock, b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body, framed = read_request_body(rfile, fields, send_continue)
        except BadRequest as e:
            self._send_error(sock, e.status, str(e), close=True)
            self.log(method, host, target, e.status)
            return False

        upstream_host, extra = self.route(host, port, scheme)
        if upstream_host is None:
            self._send_error(sock, 502, f"no route for {scheme}://{host_value or '?'}: {extra} "
                                        f"(ministack at {self.upstream[0]}:{self.upstream[1]})", close=not client_keep)
            self.log(method, host, target, 502)
            return client_keep

        named = tokens(field(fields, b"connection"))
        out = [b"%s %s HTTP/1.1" % (method_b, target.encode("latin-1")), b"Host: " + upstream_host.encode()]
        out += [raw for name, _, raw in fields if name not in HOP and name not in named]
        out += extra
        if framed or body:
            out.append(b"Content-Length: %d" % len(body))
        request = b"\r\n".join(out) + b"\r\n\r\n" + body

        try:
            status, keep = self._forward(request, method, sock, upstream, client_keep,
                                         (upstream_host.encode(), host.encode()))
        except UpstreamFailed as e:
            upstream.close()
            timeout = isinstance(e.__cause__, (socket.timeout, TimeoutError))
            status = 504 if timeout else 502
            self._send_error(sock, status, f"ministack at {self.upstream[0]}:{self.upstream[1]}: {e}",
                             close=not client_keep)
            self.log(method, host, target, status)
            return client_keep
        except ClientGone as e:
            upstream.close()
            self.log(method, host, target, e.args[0] if e.args else "client-gone")
            raise
        self.log(method, host, target, status)
        return keep

    def _forward(self, request, method, sock, upstream, client_keep, names):
        """Sends the request, streams the answer; (status, keep the client connection).
        `names` = (ministack's virtual host, the AWS host): a redirect ministack builds from the
        Host it saw points back at the AWS name, as on AWS."""
        for attempt in (0, 1):
            reused = upstream.connect()
            try:
                upstream.sock.sendall(request)
                head = read_head(upstream.rfile, err=_upstream_error)
                if head is None:
                    raise _upstream_error(0, "closed the connection without answering")
                while True:
                    parts = head[0].split(b" ", 2)
                    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                        raise _upstream_error(0, "sent a malformed status line")
                    status = int(parts[1])
                    if status == 101:
                        raise _upstream_error(0, "switched protocols (not supported)")
                    if 100 <= status < 200:  # interim answers: we already sent our own 100
                        head = read_head(upstream.rfile, err=_upstream_error)
                        if head is None:
                            raise _upstream_error(0, "closed the connection without answering")
                        continue
                    break
            except UpstreamFailed:
                upstream.close()
                if reused and attempt == 0:
                    continue  # a kept-alive connection the server had closed: once more, fresh
                raise
            except (OSError, ValueError) as e:
                upstream.close()
                if reused and attempt == 0:
                    continue
                raise UpstreamFailed(f"unreachable or failed ({e})") from e
            break

        fields = parse_fields(head[1:], err=_upstream_error)
        version = parts[0]
        up_conn = tokens(field(fields, b"connection"))
        te = field(fields, b"transfer-encoding")
        cl = field(fields, b"content-length")
        if method == "HEAD" or status in (204, 304):
            framing = "none"
        elif te is not None:
            if tokens(te) != {b"chunked"}:
                raise UpstreamFailed(f"answered with Transfer-Encoding {te!r}")
            framing = "chunked"
        elif cl is not None:
            if not cl.strip().isdigit():
                raise UpstreamFailed("answered with an invalid Content-Length")
            framing = "length"
        else:
            framing = "close"
        up_keep = framing != "close" and (b"close" not in up_conn if version == b"HTTP/1.1"
                                          else b"keep-alive" in up_conn)
        keep = client_keep and framing != "close"

        inner = re.compile(rb"(?i)(?<=://)" + re.escape(names[0]) + rb"(?=[/?#]|$)")
        out = [head[0]] + [inner.sub(names[1], raw) if name in (b"location", b"content-location") else raw
                           for name, _, raw in fields
                           if name not in (b"connection", b"keep-alive", b"proxy-connection")]
        if not keep:
            out.append(b"Connection: close")
        self._send(sock, b"\r\n".join(out) + b"\r\n\r\n")

        src = upstream.rfile
        try:
            if framing == "length":
                left = int(cl.strip())
                while left:
                    data = src.read1(min(COPY, left))
                    if not data:
                        raise _upstream_error(0, "closed the connection inside the body")
                    left -= len(data)
                    self._send(sock, data)
            elif framing == "chunked":
                while True:
                    line = src.readline(MAX_LINE)
                    size = line.split(b";", 1)[0].strip()
                    if not line.endswith(b"\n") or not HEX_RE.match(size):
                        raise _upstream_error(0, "sent a malformed chunked body")
                    n = int(size, 16)
                    if n == 0:
                        trailer = [line]
                        while True:
                            t = src.readline(MAX_LINE)
                            if not t:
                                raise _upstream_error(0, "closed the connection inside trailers")
                            trailer.append(t)
                            if t in (b"\r\n", b"\n"):
                                break
                        self._send(sock, b"".join(trailer))
                        break
                    piece = [line]
                    while n:
                        data = src.read1(min(COPY, n))
                        if not data:
                            raise _upstream_error(0, "closed the connection inside the body")
                        n -= len(data)
                        piece.append(data)
                        if sum(map(len, piece)) >= COPY:
                            self._send(sock, b"".join(piece))
                            piece = []
                    piece.append(src.readline(MAX_LINE))
                    self._send(sock, b"".join(piece))
            elif framing == "close":
                while True:
                    data = src.read1(COPY)
                    if not data:
                        break
                    self._send(sock, data)
        except (UpstreamFailed, OSError, ValueError):
            # the answer is cut: the client must see the connection end, not a short body
            upstream.close()
            raise ClientGone(f"{status}-cut-by-upstream") from None
        if not up_keep:
            upstream.close()
        return status, keep


def _upstream_error(_status, message):
    return UpstreamFailed(message)


class Upstream:
    """The plain-HTTP connection to ministack of one client connection, kept alive."""

    def __init__(self, addr, timeout):
        self.addr, self.timeout = addr, timeout
        self.sock = self.rfile = None

    def connect(self):
        """True when an existing connection is reused."""
        if self.sock is not None:
            return True
        try:
            self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        except OSError as e:
            raise UpstreamFailed(f"unreachable ({e})") from e
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb", COPY)
        return False

    def close(self):
        for thing in (self.rfile, self.sock):
            try:
                if thing is not None:
                    thing.close()
            except OSError:
                pass
        self.sock = self.rfile = None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="ministack's HOST:PORT (plain HTTP)")
    p.add_argument("--ca-out", required=True, help="write the throwaway CA certificate (PEM) here")
    p.add_argument("--log", help="append one line per request here")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    p.add_argument("--ministack-host", default="localhost", help="ministack's MINISTACK_HOST (default localhost)")
    p.add_argument("--timeout", type=float, default=120.0, help="idle/read timeout in seconds, both sides")
    args = p.parse_args()

    def stop(*_):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if os.getppid() != _PARENT:
        return  # the parent died before the hook was set

    workdir = tempfile.mkdtemp(prefix="aws-front-")
    log = None
    try:
        authority = Authority(workdir)
        tmp = args.ca_out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(authority.pem())
        os.replace(tmp, args.ca_out)
        if args.log:
            log = open(args.log, "a", encoding="utf-8")
        front = Front(args, authority, log)
        listener = socket.socket(socket.AF_INET6 if ":" in args.listen else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((args.listen, args.port))
        listener.listen(128)
        print(listener.getsockname()[1], flush=True)
        print(f"aws_front: proxy on {args.listen}:{listener.getsockname()[1]} -> ministack {args.upstream}, "
              f"CA in {args.ca_out}", file=sys.stderr, flush=True)
        while True:
            try:
                conn, peer = listener.accept()
            except OSError:
                time.sleep(0.05)
                continue
            threading.Thread(target=front.handle, args=(conn, peer), daemon=True).start()
    finally:
        if log is not None:
            log.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
