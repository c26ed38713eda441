"""A small PostgreSQL client on the standard library only (the Lambda Python
runtime has no PostgreSQL driver).

Protocol 3.0: SSLRequest then TLS (RDS for PostgreSQL 15+ refuses plain
connections), StartupMessage, authentication by SCRAM-SHA-256 (RFC 5802/7677),
md5 or cleartext password, the extended query protocol for statements with
parameters (Parse/Bind/Describe/Execute/Sync: values travel separately from the
SQL, so nothing is ever spliced into it) and the simple query protocol for
statements without.

    with pg.connect(host=..., port=5432, user=..., password=..., database=...) as conn:
        rows = conn.query("SELECT id, name FROM users WHERE id = $1", [42]).dicts()

sslmode (as libpq): "disable", "prefer" (TLS when the server offers it),
"require" (TLS, certificate not checked), "verify-ca" / "verify-full" (checked
against `sslrootcert`, a CA bundle file such as RDS's global-bundle.pem; full
also checks the host name).
"""

import base64
import datetime
import decimal
import hashlib
import hmac
import json
import os
import socket
import ssl
import struct
import uuid

__all__ = ["connect", "Connection", "Result", "Error", "InterfaceError", "DatabaseError",
           "IntegrityError", "ProgrammingError", "OperationalError"]


class Error(Exception):
    """Any failure of this client."""


class InterfaceError(Error):
    """A protocol or connection problem (network, TLS, unexpected message)."""


class DatabaseError(Error):
    """An ErrorResponse from the server: `sqlstate` is its SQLSTATE code."""

    def __init__(self, fields):
        self.fields = fields
        self.sqlstate = fields.get("C", "")
        self.severity = fields.get("V") or fields.get("S", "")
        self.detail = fields.get("D")
        self.constraint = fields.get("n")
        super().__init__(f"{self.severity} {self.sqlstate}: {fields.get('M', '')}")


class IntegrityError(DatabaseError):
    """Class 23: a constraint was violated (23505 unique_violation, ...)."""


class ProgrammingError(DatabaseError):
    """Class 42: syntax error or access rule violation (42P01 undefined table, ...)."""


class OperationalError(DatabaseError):
    """Class 08 connection exceptions, 28 invalid authorization, 53/57 resources and shutdown."""


def _error_for(fields):
    cls = {"23": IntegrityError, "42": ProgrammingError, "08": OperationalError, "28": OperationalError,
           "53": OperationalError, "57": OperationalError}.get(fields.get("C", "")[:2], DatabaseError)
    return cls(fields)


# Type OIDs decoded from text format; anything else stays a str.
_INT = {20, 21, 23, 26}
_FLOAT = {700, 701}
_BOOL = 16
_NUMERIC = 1700
_JSON = {114, 3802}
_BYTEA = 17
_TIMESTAMP, _TIMESTAMPTZ, _DATE = 1114, 1184, 1082
_UUID = 2950


def _decode(oid, raw):
    text = raw.decode("utf-8")
    if oid in _INT:
        return int(text)
    if oid in _FLOAT:
        return float(text)
    if oid == _BOOL:
        return text == "t"
    if oid == _NUMERIC:
        return decimal.Decimal(text)
    if oid in _JSON:
        return json.loads(text)
    if oid == _BYTEA:
        return bytes.fromhex(text[2:]) if text.startswith("\\x") else text.encode()
    if oid == _UUID:
        return uuid.UUID(text)
    if oid in (_TIMESTAMP, _TIMESTAMPTZ):
        try:
            t = text.replace(" ", "T")
            if oid == _TIMESTAMPTZ and len(t) > 3 and t[-3] in "+-" and ":" not in t[-3:]:
                t += ":00"  # "+00" -> "+00:00"
            return datetime.datetime.fromisoformat(t)
        except ValueError:
            return text
    if oid == _DATE:
        try:
            return datetime.date.fromisoformat(text)
        except ValueError:
            return text
    return text


def _encode(value):
    """A parameter in text format; None is NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
        return str(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"\\x" + bytes(value).hex().encode()
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat().encode()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False).encode()
    if isinstance(value, str):
        if "\x00" in value:
            raise InterfaceError("PostgreSQL text cannot contain NUL characters")
        return value.encode("utf-8")
    raise InterfaceError(f"cannot send a {type(value).__name__} as a parameter")


class Result:
    """The outcome of one statement: `columns`, `rows` (tuples), `command` (the
    CommandComplete tag, e.g. "INSERT 0 1") and `rowcount`."""

    def __init__(self, columns, rows, command):
        self.columns = columns
        self.rows = rows
        self.command = command
        tail = command.rsplit(" ", 1)[-1] if command else ""
        self.rowcount = int(tail) if tail.isdigit() else -1

    def dicts(self):
        return [dict(zip(self.columns, r)) for r in self.rows]

    def first(self):
        return self.dicts()[0] if self.rows else None


def _cstr(s):
    return s.encode("utf-8") + b"\x00"


class Connection:
    def __init__(self, sock):
        self._sock = sock
        self._buf = b""
        self.parameters = {}  # ParameterStatus: server_version, client_encoding, ...
        self.backend_pid = None
        self.status = "I"  # ReadyForQuery: I idle, T in transaction, E failed transaction
        self.closed = False

    # -- framing ---------------------------------------------------------
    def _send(self, kind, payload=b""):
        try:
            self._sock.sendall(kind + struct.pack("!I", len(payload) + 4) + payload)
        except OSError as e:
            self._broken()
            raise InterfaceError(f"connection lost: {e}") from e

    def _recv_exact(self, n):
        while len(self._buf) < n:
            try:
                chunk = self._sock.recv(max(65536, n - len(self._buf)))
            except OSError as e:
                self._broken()
                raise InterfaceError(f"connection lost: {e}") from e
            if not chunk:
                self._broken()
                raise InterfaceError("server closed the connection")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _recv(self):
        head = self._recv_exact(5)
        kind, length = head[:1], struct.unpack("!I", head[1:])[0]
        if length < 4 or length > 1 << 30:
            self._broken()
            raise InterfaceError("malformed message from server")
        return kind, self._recv_exact(length - 4)

    def _broken(self):
        self.closed = True
        try:
            self._sock.close()
        except OSError:
            pass

    @staticmethod
    def _fields(payload):
        fields = {}
        for part in payload.split(b"\x00"):
            if part:
                fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return fields

    def _common(self, kind, payload):
        """Messages that may come at any time. True when handled."""
        if kind == b"S":
            name, value = payload.split(b"\x00")[:2]
            self.parameters[name.decode()] = value.decode()
            return True
        if kind in (b"N", b"A"):  # NoticeResponse, NotificationResponse
            return True
        return False

    # -- start-up and authentication -------------------------------------
    def _startup(self, user, password, database, application_name):
        params = _cstr("user") + _cstr(user) + _cstr("database") + _cstr(database)
        params += _cstr("client_encoding") + _cstr("UTF8")
        if application_name:
            params += _cstr("application_name") + _cstr(application_name)
        payload = struct.pack("!I", 196608) + params + b"\x00"
        try:
            self._sock.sendall(struct.pack("!I", len(payload) + 4) + payload)
        except OSError as e:
            self._broken()
            raise InterfaceError(f"connection lost: {e}") from e
        scram = None
        while True:
            kind, payload = self._recv()
            if kind == b"R":
                code = struct.unpack("!I", payload[:4])[0]
                if code == 0:
                    continue
                if code == 3:
                    self._password(password)
                elif code == 5:
                    inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + payload[4:8]).hexdigest()
                    self._send(b"p", _cstr("md5" + outer))
                elif code == 10:
                    mechanisms = [m.decode() for m in payload[4:].split(b"\x00") if m]
                    if "SCRAM-SHA-256" not in mechanisms:
                        raise InterfaceError(f"no supported SASL mechanism in {mechanisms}")
                    scram = _Scram(password)
                    first = scram.client_first()
                    self._send(b"p", _cstr("SCRAM-SHA-256") + struct.pack("!I", len(first)) + first)
                elif code == 11:
                    if scram is None:
                        raise InterfaceError("SASLContinue before SASL")
                    self._send(b"p", scram.client_final(payload[4:]))
                elif code == 12:
                    if scram is None or not scram.verify(payload[4:]):
                        self._broken()
                        raise InterfaceError("the server failed SCRAM authentication (bad server signature)")
                else:
                    raise InterfaceError(f"unsupported authentication method {code}")
            elif kind == b"K":
                self.backend_pid = struct.unpack("!I", payload[:4])[0]
            elif kind == b"Z":
                self.status = payload[:1].decode()
                return
            elif kind == b"E":
                self._broken()
                raise _error_for(self._fields(payload))
            elif not self._common(kind, payload):
                raise InterfaceError(f"unexpected message {kind!r} during start-up")

    def _password(self, password):
        self._send(b"p", _cstr(password))

    # -- queries ---------------------------------------------------------
    def _check_open(self):
        if self.closed:
            raise InterfaceError("connection is closed")

    def query(self, sql, params=None):
        """Run one statement and return its Result. With `params` (a sequence,
        `$1`, `$2`... in the SQL) it uses the extended protocol."""
        self._check_open()
        if params is None:
            results = self._simple(sql)
            return results[-1] if results else Result([], [], "")
        values = [_encode(v) for v in params]
        bind = b"\x00\x00" + b"\x00\x00" + struct.pack("!H", len(values))  # portal "", statement ""
        for v in values:
            bind += struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v
        bind += b"\x00\x00"  # all results in text format
        if "\x00" in sql:
            raise InterfaceError("SQL cannot contain NUL characters")
        msg = (self._frame(b"P", b"\x00" + _cstr(sql) + b"\x00\x00")
               + self._frame(b"B", bind)
               + self._frame(b"D", b"P\x00")
               + self._frame(b"E", b"\x00" + struct.pack("!I", 0))
               + self._frame(b"S"))
        try:
            self._sock.sendall(msg)
        except OSError as e:
            self._broken()
            raise InterfaceError(f"connection lost: {e}") from e
        return self._collect()[0]

    def execute(self, sql, params=None):
        """query() for statements whose rows you do not need; returns the row count."""
        return self.query(sql, params).rowcount

    @staticmethod
    def _frame(kind, payload=b""):
        return kind + struct.pack("!I", len(payload) + 4) + payload

    def _simple(self, sql):
        if "\x00" in sql:
            raise InterfaceError("SQL cannot contain NUL characters")
        self._send(b"Q", _cstr(sql))
        return self._collect()

    def _collect(self):
        """Read until ReadyForQuery; one Result per statement; raise the first error."""
        results, columns, oids, rows, error = [], [], [], [], None
        while True:
            kind, payload = self._recv()
            if kind == b"T":
                n = struct.unpack("!H", payload[:2])[0]
                columns, oids, pos = [], [], 2
                for _ in range(n):
                    end = payload.index(b"\x00", pos)
                    columns.append(payload[pos:end].decode())
                    oids.append(struct.unpack("!I", payload[end + 7:end + 11])[0])
                    pos = end + 19
                rows = []
            elif kind == b"D":
                n = struct.unpack("!H", payload[:2])[0]
                pos, row = 2, []
                for i in range(n):
                    size = struct.unpack("!i", payload[pos:pos + 4])[0]
                    pos += 4
                    if size < 0:
                        row.append(None)
                    else:
                        row.append(_decode(oids[i] if i < len(oids) else 25, payload[pos:pos + size]))
                        pos += size
                rows.append(tuple(row))
            elif kind == b"C":
                results.append(Result(columns, rows, payload.rstrip(b"\x00").decode()))
                columns, oids, rows = [], [], []
            elif kind == b"I":
                results.append(Result([], [], ""))
            elif kind == b"E":
                error = error or _error_for(self._fields(payload))
            elif kind == b"Z":
                self.status = payload[:1].decode()
                if error is not None:
                    raise error
                return results
            elif kind in (b"1", b"2", b"n", b"s", b"t"):
                pass  # ParseComplete, BindComplete, NoData, PortalSuspended, ParameterDescription
            elif not self._common(kind, payload):
                self._broken()
                raise InterfaceError(f"unexpected message {kind!r}")

    def transaction(self):
        """`with conn.transaction():` BEGIN ... COMMIT, or ROLLBACK on an exception."""
        return _Transaction(self)

    def close(self):
        if not self.closed:
            try:
                self._sock.sendall(self._frame(b"X"))
            except OSError:
                pass
            self._broken()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Transaction:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if self.conn.closed:
            return False
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False


class _Scram:
    """SCRAM-SHA-256 without channel binding (gs2 header "n,,")."""

    def __init__(self, password):
        self.password = password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.server_signature = None

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        text = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in text.split(","))
        nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        if not nonce.startswith(self.nonce) or iterations < 1:
            raise InterfaceError("bad SCRAM server-first message")
        salted = hashlib.pbkdf2_hmac("sha256", _saslprep(self.password).encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.first_bare},{text},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final):
        attrs = dict(kv.split("=", 1) for kv in server_final.decode().split(",") if "=" in kv)
        if "v" not in attrs or self.server_signature is None:
            return False
        return hmac.compare_digest(base64.b64decode(attrs["v"]), self.server_signature)


def _saslprep(s):
    # PostgreSQL uses the raw password when SASLprep would fail; ASCII passwords
    # (RDS generates those) are unchanged by it. Normalise only the common case.
    import unicodedata
    return unicodedata.normalize("NFKC", s)


def connect(host, port=5432, user="postgres", password="", database=None, sslmode="prefer",
            sslrootcert=None, timeout=5.0, application_name=None):
    """Open a Connection. `timeout` bounds the TCP connect and every read."""
    if sslmode not in ("disable", "prefer", "require", "verify-ca", "verify-full"):
        raise InterfaceError(f"unknown sslmode {sslmode!r}")
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as e:
        raise InterfaceError(f"cannot connect to {host}:{port}: {e}") from e
    sock.settimeout(timeout)
    try:
        if sslmode != "disable":
            sock.sendall(struct.pack("!II", 8, 80877103))
            answer = sock.recv(1)
            if answer == b"S":
                ctx = ssl.create_default_context(cafile=sslrootcert) if sslrootcert else ssl.create_default_context()
                if sslmode in ("prefer", "require"):
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                elif sslmode == "verify-ca":
                    ctx.check_hostname = False
                sock = ctx.wrap_socket(sock, server_hostname=host)
            elif answer == b"N":
                if sslmode != "prefer":
                    raise InterfaceError(f"{host}:{port} does not accept TLS (sslmode={sslmode})")
            else:
                raise InterfaceError(f"unexpected answer {answer!r} to SSLRequest")
        conn = Connection(sock)
        conn._startup(user, password, database or user, application_name)
        return conn
    except (OSError, ssl.SSLError) as e:
        try:
            sock.close()
        except OSError:
            pass
        raise InterfaceError(f"{host}:{port}: {e}") from e
    except Error:
        try:
            sock.close()
        except OSError:
            pass
        raise
