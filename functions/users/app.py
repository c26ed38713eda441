"""Users microservice: the REST API's /api/users routes, a users table in the
stack's PostgreSQL database (RDS, reached from the VPC's private subnets).

Routes (API Gateway REST proxy events; the `/api` prefix is optional):

    GET    /api/users/health     database reachability       200 | 503
    GET    /api/users            list, ?limit=1..100&next_token=<opaque>    200, 400
    POST   /api/users            create {"email", "name"}     201, 400, 409, 413, 415
    GET    /api/users/{id}       one user                     200, 404
    PUT    /api/users/{id}       replace {"email", "name"}    200, 400, 404, 409
    PATCH  /api/users/{id}       change some of them          200, 400, 404, 409
    DELETE /api/users/{id}       delete                       204, 404
    other methods                                             405 (with Allow)
    any other path                                            404
    database unreachable or refusing                         503 (Retry-After)

`/api/users` itself is reached only through a route for that path (`ANY
/api/users`): API Gateway's greedy `/api/users/{proxy+}` needs at least one
segment after `/api/users/`.

Errors are {"error": <code>, "message": <text>}; a 500 carries only the request
id. The table (created on first use when missing):

    users(id uuid primary key, email text unique (case-insensitively),
          name text, created_at timestamptz, updated_at timestamptz)

Environment: DB_ENDPOINT ("host:port" or "host", port 5432), DB_SECRET_ARN
(the RDS-managed master secret: JSON with "username" and "password"),
DB_NAME (default: the secret's "dbname", else "postgres"), DB_SSLMODE
(default "require": RDS enforces TLS; "verify-full" with DB_SSLROOTCERT, a CA
bundle file in the package such as RDS's global-bundle.pem, also checks the
certificate), DB_CONNECT_TIMEOUT (seconds, default 3).

The secret is read once per container (module-level cache) and read again
only when the database refuses the cached password (RDS rotates managed
secrets). It is never logged or returned. The connection is kept across
invocations and reopened when it breaks.
"""

import base64
import binascii
import json
import logging
import os
import re
import time
import uuid

import boto3

import pg

log = logging.getLogger("users")
log.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

MAX_BODY_BYTES = 16 * 1024
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_COLLECTION = re.compile(r"^(?:/api)?/users/?$")
_HEALTH = re.compile(r"^(?:/api)?/users/health/?$")
_ONE = re.compile(r"^(?:/api)?/users/([^/]+)/?$")
_PASSWORD_REFUSED = {"28P01", "28000"}

_credentials = None  # {"username", "password", ...} from Secrets Manager, once per container
_conn = None
_schema_ready = False


class HttpError(Exception):
    def __init__(self, status, error, message, headers=None):
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers or {}


class Unavailable(Exception):
    """The database cannot be used now. `reason` is what callers may see
    (secret_unavailable, not_configured, connect_failed, login_refused); the
    message, with the details, is for the log only."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


# -- configuration --------------------------------------------------------------
def credentials(refresh=False):
    """The database user and password from Secrets Manager, cached."""
    global _credentials
    if _credentials is None or refresh:
        arn = os.environ.get("DB_SECRET_ARN")
        if not arn:
            raise Unavailable("not_configured", "DB_SECRET_ARN is not set")
        sdk_log = logging.getLogger("botocore")
        level = sdk_log.level
        # botocore's DEBUG logs print response bodies: GetSecretValue's is the password.
        sdk_log.setLevel(max(sdk_log.getEffectiveLevel(), logging.INFO))
        try:
            value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
            secret = json.loads(value["SecretString"])
        except Exception as e:  # noqa: B902 - never let the secret or its parse error reach a caller
            raise Unavailable("secret_unavailable", f"cannot read the database secret ({type(e).__name__})") from None
        finally:
            sdk_log.setLevel(level)
        if not isinstance(secret, dict) or not secret.get("username") or "password" not in secret:
            raise Unavailable("secret_unavailable", "the database secret has no username/password")
        _credentials = secret
    return _credentials


def endpoint():
    raw = (os.environ.get("DB_ENDPOINT") or "").strip()
    if not raw:
        raise Unavailable("not_configured", "DB_ENDPOINT is not set")
    host, sep, port = raw.rpartition(":")
    if sep and port.isdigit() and host:
        return host.strip("[]"), int(port)
    return raw, 5432


def _open(creds):
    host, port = endpoint()
    root = os.environ.get("DB_SSLROOTCERT")
    if root and not os.path.isabs(root):
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), root)
    return pg.connect(host=host, port=port, user=creds["username"], password=creds["password"],
                      database=os.environ.get("DB_NAME") or creds.get("dbname") or "postgres",
                      sslmode=os.environ.get("DB_SSLMODE", "require"), sslrootcert=root or None,
                      timeout=float(os.environ.get("DB_CONNECT_TIMEOUT", "3")), application_name="users")


def connection():
    """The container's connection, opened (or reopened) when needed."""
    global _conn
    if _conn is not None and not _conn.closed and _conn.status != "E":
        return _conn
    if _conn is not None:
        _conn.close()
        _conn = None
    try:
        try:
            _conn = _open(credentials())
        except pg.DatabaseError as e:
            if e.sqlstate not in _PASSWORD_REFUSED:
                raise
            # The managed secret was rotated since this container read it.
            _conn = _open(credentials(refresh=True))
    except pg.DatabaseError as e:
        raise Unavailable("login_refused", f"the database refused the connection (SQLSTATE {e.sqlstate})") from None
    except pg.InterfaceError as e:
        raise Unavailable("connect_failed", f"the database is unreachable ({_short(e)})") from None
    return _conn


def ensure_schema(conn):
    global _schema_ready
    if _schema_ready:
        return
    conn.query("""
        CREATE TABLE IF NOT EXISTS users (
            id uuid PRIMARY KEY,
            email text NOT NULL CHECK (length(email) <= 254),
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    conn.query("CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (lower(email))")
    _schema_ready = True


def _short(e):
    return str(e).split("\n")[0][:200]


# -- HTTP helpers ---------------------------------------------------------------
def response(status, body=None, headers=None):
    r = {"statusCode": status,
         "headers": {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store",
                     **(headers or {})},
         "body": "" if body is None else json.dumps(body, ensure_ascii=False, default=str,
                                                      separators=(",", ":")),
         "isBase64Encoded": False}
    if body is None:
        del r["headers"]["Content-Type"]
    return r


def _header(event, name):
    for k, v in (event.get("headers") or {}).items():
        if k.lower() == name:
            return v
    return None


def parse_body(event):
    raw = event.get("body")
    if raw is None or raw == "":
        raise HttpError(400, "invalid_json", "the request body must be a JSON object")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, "invalid_json", "the request body is not valid base64")
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        raise HttpError(413, "payload_too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes")
    ctype = _header(event, "content-type")
    if ctype and not re.match(r"^\s*application/([\w.+-]*\+)?json\b", ctype, re.I):
        raise HttpError(415, "unsupported_media_type", "send application/json")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise HttpError(400, "invalid_json", f"the request body is not valid JSON: {_short(e)}")
    if not isinstance(value, dict):
        raise HttpError(400, "invalid_json", "the request body must be a JSON object")
    return value


def validate_user(body, partial=False):
    unknown = sorted(set(body) - {"email", "name"})
    if unknown:
        raise HttpError(400, "invalid_field", f"unknown field(s): {', '.join(unknown)}")
    if not partial:
        missing = [f for f in ("email", "name") if f not in body]
        if missing:
            raise HttpError(400, "missing_field", f"missing required field(s): {', '.join(missing)}")
    elif not body:
        raise HttpError(400, "missing_field", "give email and/or name")
    out = {}
    if "email" in body:
        email = body["email"]
        if not isinstance(email, str) or len(email.strip()) > 254 or not _EMAIL.match(email.strip()):
            raise HttpError(400, "invalid_field", "email must be an e-mail address")
        out["email"] = email.strip()
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200 or "\x00" in name:
            raise HttpError(400, "invalid_field", "name must be a string of 1 to 200 characters")
        out["name"] = name.strip()
    return out


def _uuid_or_404(raw):
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise HttpError(404, "not_found", "no such user")


def _user(row):
    return {"id": str(row["id"]), "email": row["email"], "name": row["name"],
            "created_at": row["created_at"].isoformat() if hasattr(row["created_at"], "isoformat")
            else row["created_at"],
            "updated_at": row["updated_at"].isoformat() if hasattr(row["updated_at"], "isoformat")
            else row["updated_at"]}


_COLUMNS = "id, email, name, created_at, updated_at"


# -- routes ---------------------------------------------------------------------
def health():
    started = time.monotonic()
    try:
        conn = connection()
        version = conn.query("SELECT current_setting('server_version') AS v").first()["v"]
    except (Unavailable, pg.Error) as e:
        reason = e.reason if isinstance(e, Unavailable) else "query_failed"
        log.warning(json.dumps({"event": "health_failed", "reason": reason, "detail": _short(e)}))
        return response(503, {"status": "unavailable", "database": "unreachable", "reason": reason},
                        {"Retry-After": "5"})
    return response(200, {"status": "ok", "database": "reachable", "server_version": version,
                          "latency_ms": round((time.monotonic() - started) * 1000, 1)})


def list_users(event):
    q = event.get("queryStringParameters") or {}
    raw_limit = q.get("limit", str(DEFAULT_LIMIT))
    if not re.fullmatch(r"\d{1,3}", raw_limit or "") or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise HttpError(400, "invalid_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}")
    limit = int(raw_limit)
    after = None
    if q.get("next_token"):
        try:
            t = q["next_token"]
            after = json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)).decode())
            after = (after[0], str(uuid.UUID(after[1])))
            if not isinstance(after[0], str):
                raise ValueError
        except (ValueError, TypeError, IndexError, KeyError, binascii.Error, UnicodeDecodeError):
            raise HttpError(400, "invalid_token", "next_token is not a token this API issued")
    conn = connection()
    ensure_schema(conn)
    if after:
        rows = conn.query(f"SELECT {_COLUMNS} FROM users WHERE (created_at, id) > ($1::timestamptz, $2::uuid) "
                          "ORDER BY created_at, id LIMIT $3", [after[0], after[1], limit + 1]).dicts()
    else:
        rows = conn.query(f"SELECT {_COLUMNS} FROM users ORDER BY created_at, id LIMIT $1", [limit + 1]).dicts()
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        token = base64.urlsafe_b64encode(json.dumps([last["created_at"].isoformat(), str(last["id"])])
                                         .encode()).decode().rstrip("=")
    return response(200, {"users": [_user(r) for r in rows], "next_token": token})


def create_user(event):
    user = validate_user(parse_body(event))
    conn = connection()
    ensure_schema(conn)
    row = conn.query(f"INSERT INTO users (id, email, name) VALUES ($1, $2, $3) RETURNING {_COLUMNS}",
                     [str(uuid.uuid4()), user["email"], user["name"]]).first()
    return response(201, _user(row), {"Location": f"/api/users/{row['id']}"})


def get_user(user_id):
    uid = _uuid_or_404(user_id)
    conn = connection()
    ensure_schema(conn)
    row = conn.query(f"SELECT {_COLUMNS} FROM users WHERE id = $1", [uid]).first()
    if row is None:
        raise HttpError(404, "not_found", "no such user")
    return response(200, _user(row))


def update_user(event, user_id, partial):
    user = validate_user(parse_body(event), partial=partial)
    uid = _uuid_or_404(user_id)
    conn = connection()
    ensure_schema(conn)
    sets, params = [], []
    for field in ("email", "name"):
        if field in user:
            params.append(user[field])
            sets.append(f"{field} = ${len(params)}")
    params.append(uid)
    row = conn.query(f"UPDATE users SET {', '.join(sets)}, updated_at = now() WHERE id = ${len(params)} "
                     f"RETURNING {_COLUMNS}", params).first()
    if row is None:
        raise HttpError(404, "not_found", "no such user")
    return response(200, _user(row))


def delete_user(user_id):
    uid = _uuid_or_404(user_id)
    conn = connection()
    ensure_schema(conn)
    if conn.execute("DELETE FROM users WHERE id = $1", [uid]) == 0:
        raise HttpError(404, "not_found", "no such user")
    return response(204)


def route(event):
    method = (event.get("httpMethod") or "").upper()
    path = event.get("path") or "/"
    if _HEALTH.match(path):
        if method == "GET":
            return health()
        raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}", {"Allow": "GET"})
    if _COLLECTION.match(path):
        if method == "GET":
            return list_users(event)
        if method == "POST":
            return create_user(event)
        raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}", {"Allow": "GET, POST"})
    m = _ONE.match(path)
    if m:
        if method == "GET":
            return get_user(m.group(1))
        if method in ("PUT", "PATCH"):
            return update_user(event, m.group(1), partial=method == "PATCH")
        if method == "DELETE":
            return delete_user(m.group(1))
        raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}",
                        {"Allow": "GET, PUT, PATCH, DELETE"})
    raise HttpError(404, "not_found", f"no route for {method} {path}")


def handler(event, context):
    global _conn
    event = event if isinstance(event, dict) else {}
    request_id = getattr(context, "aws_request_id", "") or ""
    try:
        result = route(event)
    except HttpError as e:
        result = response(e.status, {"error": e.error, "message": e.message}, e.headers)
    except Unavailable as e:
        log.warning(json.dumps({"event": "database_unavailable", "reason": e.reason, "detail": _short(e),
                                "request_id": request_id}))
        result = response(503, {"error": "unavailable", "message": "the database is unavailable, retry shortly"},
                          {"Retry-After": "5"})
    except pg.IntegrityError as e:
        if e.sqlstate == "23505":
            result = response(409, {"error": "conflict", "message": "a user with this email already exists"})
        else:
            result = response(400, {"error": "invalid_field", "message": "the user breaks a constraint"})
    except pg.InterfaceError as e:
        # The connection broke mid-request: drop it; the next request reconnects.
        if _conn is not None:
            _conn.close()
        _conn = None
        log.warning(json.dumps({"event": "database_connection_lost", "reason": _short(e), "request_id": request_id}))
        result = response(503, {"error": "unavailable", "message": "the database is unavailable, retry shortly"},
                          {"Retry-After": "1"})
    except Exception as e:  # noqa: B902 - the last line of defence
        log.exception(json.dumps({"event": "unhandled", "type": type(e).__name__, "request_id": request_id}))
        result = response(500, {"error": "internal", "message": f"internal error (request {request_id})"})
    log.info(json.dumps({"event": "request", "method": event.get("httpMethod"), "path": event.get("path"),
                         "status": result["statusCode"], "request_id": request_id}))
    return result
