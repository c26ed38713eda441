//! A loopback HTTP/1.1 reverse proxy that sits between an AWS client (infra,
//! the AWS CLI, Terraform) and an AWS emulator (moto), to measure and to
//! break things on purpose:
//!
//! * it counts every AWS call by service (from the SigV4 credential scope) and
//!   action (`X-Amz-Target`, the query protocols' `Action=`, or METHOD + path
//!   for REST protocols), and times how long the emulator takes to answer;
//! * `--latency-ms` adds a fixed delay to every call (a network round trip);
//! * `--fault-rate` with `--faults` injects, from a seeded PRNG (same seed,
//!   same sequence of decisions), throttling answers and 5xx errors before the
//!   emulator sees a call, or drops the emulator's real answer after it acted
//!   and answers 500 instead (a lost response).
//!
//! ```text
//! cargo run --example proxy -- --listen 127.0.0.1:0 --upstream http://127.0.0.1:5000 \
//!     [--latency-ms 100] [--fault-rate 0.1 --seed 42 --faults throttle,error_before,error_after] \
//!     [--stats-file stats.json] [--log calls.jsonl] [--aws-clock 1/60] [--lose-first AssociateRouteTable]
//! ```
//!
//! * `--lose-first ACTION,...` loses the answer to the first call of each
//!   action named (forwarded, acted on, answered 500): the retry after a lost
//!   response, on purpose and exactly once, whatever `--fault-rate` draws.
//!
//! * `--lose-first-writes` loses the first answer of every distinct write
//!   (service, action, and for REST APIs the method and path: each
//!   resource's own): every create, update and delete is retried once after
//!   it took effect, which proves each one is safe to retry.
//!
//! * `--aws-clock FACTOR` (e.g. `1/60`, or a decimal) puts AWS's clock on top
//!   of the instant emulator: each resource passes through the states AWS
//!   reports (RDS `creating` → `backing-up` → `available`, CloudFront
//!   `InProgress` → `Deployed`, Lambda `Pending` → `Active`, ...) for as long
//!   as AWS typically takes times the factor, and the calls AWS refuses
//!   meanwhile are refused (see `clock.rs`; `--print-durations` prints the
//!   table of durations as JSON). `GET /__proxy/clock` shows the state of
//!   every resource the clock follows.
//!
//! The first line on stdout is the bound port. `GET /__proxy/stats` returns
//! the counters as JSON, `POST /__proxy/reset` zeroes them; `--stats-file` is
//! written on exit (SIGTERM, SIGINT). Calls to `/moto-api/` are forwarded
//! untouched: never delayed, faulted nor counted.
//!
//! Built on hyper 0.14 (server + pooled client), which the AWS SDK already
//! compiles with exactly these features: hyper 1's `server` feature is not in
//! the dependency tree, and enabling it would recompile every AWS SDK crate
//! for test builds.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hyper::body::Bytes;
use hyper::client::HttpConnector;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Client, Method, Request, Response, Server, StatusCode, Uri};
use serde_json::{Value, json};

mod clock;

/// Loopback reverse proxy for AWS API calls: counts, delays and injects faults.
#[derive(Parser, Debug)]
#[command(name = "proxy")]
struct Args {
    /// Address to listen on (port 0 picks a free port; printed on stdout's first line).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The emulator's base URL, e.g. http://127.0.0.1:5000.
    #[arg(long, required_unless_present = "print_durations")]
    upstream: Option<String>,
    /// Delay added to every AWS call before it is answered or forwarded.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Probability (0..=1) that a call gets a fault.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// PRNG seed: the same seed gives the same sequence of fault decisions.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fault kinds to draw from: throttle, error_before, error_after.
    #[arg(long, value_delimiter = ',', default_value = "throttle,error_before,error_after")]
    faults: Vec<Fault>,
    /// Write the stats JSON here on exit (SIGTERM / SIGINT).
    #[arg(long)]
    stats_file: Option<PathBuf>,
    /// Append one JSON line per AWS call (times, service, action, status, fault).
    #[arg(long)]
    log: Option<PathBuf>,
    /// AWS's clock, scaled: `1/60` makes a 15-minute wait 15 s (also a decimal, e.g. 0.05).
    #[arg(long, value_name = "FACTOR", value_parser = clock::parse_factor)]
    aws_clock: Option<f64>,
    /// Print the clock's durations (seconds on AWS) as JSON and exit.
    #[arg(long)]
    print_durations: bool,
    /// Actions (e.g. `AssociateRouteTable`) whose first call's answer is lost.
    #[arg(long, value_delimiter = ',')]
    lose_first: Vec<String>,
    /// Lose the first answer of every distinct write call (see [`is_write`]).
    #[arg(long)]
    lose_first_writes: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[clap(rename_all = "snake_case")]
enum Fault {
    /// Answer with the protocol's throttling error, without forwarding.
    Throttle,
    /// Answer 500 or 503 without forwarding (the emulator never sees the call).
    ErrorBefore,
    /// Forward, let the emulator act, drop its answer and answer 500.
    ErrorAfter,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::ErrorBefore => "error_before",
            Fault::ErrorAfter => "error_after",
        }
    }
}

/// SplitMix64: tiny, fast, and its sequence for a seed never changes with a
/// dependency upgrade (fault schedules stay reproducible forever).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Counters since start or the last reset.
#[derive(Default)]
struct Stats {
    calls: u64,
    forwarded: u64,
    by_service_action: BTreeMap<String, u64>,
    faults: BTreeMap<&'static str, u64>,
    upstream_errors: u64,
    /// Forwarded calls whose client went away before the answer.
    cancelled: u64,
    /// `--aws-clock`: calls answered with AWS's refusal, by error code.
    clock_refused: BTreeMap<&'static str, u64>,
    /// `--aws-clock`: answers whose states were rewritten.
    clock_rewritten: u64,
    /// Sum of every call's upstream time (overlapping calls each count).
    upstream_total: Duration,
    /// Time during which at least one call was waiting for the upstream: the
    /// emulator's serving time when it serves one call at a time (moto does).
    upstream_busy: Duration,
    in_flight: u64,
    busy_since: Option<Instant>,
    max_in_flight: u64,
    first_call: Option<Instant>,
    last_end: Option<Instant>,
    since: Option<Instant>,
}

impl Stats {
    fn upstream_started(&mut self, now: Instant) {
        if self.in_flight == 0 {
            self.busy_since = Some(now);
        }
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
    }
    fn upstream_finished(&mut self, started: Instant, now: Instant) {
        self.upstream_total += now - started;
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0
            && let Some(b) = self.busy_since.take()
        {
            self.upstream_busy += now - b;
        }
    }
    fn to_json(&self, now: Instant) -> Value {
        // A call still waiting counts up to now.
        let busy = self.upstream_busy + self.busy_since.map(|b| now - b).unwrap_or_default();
        let active = match (self.first_call, self.last_end) {
            (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        json!({
            "calls": self.calls,
            "forwarded": self.forwarded,
            "by_service_action": self.by_service_action,
            "upstream_seconds_total": self.upstream_total.as_secs_f64(),
            "upstream_busy_seconds": busy.as_secs_f64(),
            "faults_injected": self.faults,
            "upstream_errors": self.upstream_errors,
            "cancelled": self.cancelled,
            "clock_refused": self.clock_refused,
            "clock_rewritten": self.clock_rewritten,
            "max_in_flight": self.max_in_flight,
            "active_seconds": active,
            "seconds_since_reset": self.since.map(|s| (now - s).as_secs_f64()).unwrap_or(0.0),
        })
    }
    fn reset(&mut self) {
        // Calls in flight keep their place in the busy accounting.
        let in_flight = self.in_flight;
        let busy_since = self.busy_since.map(|_| Instant::now());
        *self = Stats { in_flight, busy_since, since: Some(Instant::now()), ..Stats::default() };
    }
}

/// One call waiting for the upstream. Finishing it updates the busy-time
/// accounting; so does dropping it unfinished (the client went away, e.g.
/// killed, and hyper dropped the request), or the proxy would count the
/// emulator busy forever.
struct Upstream<'a> {
    stats: &'a Mutex<Stats>,
    started: Instant,
    done: bool,
}

impl<'a> Upstream<'a> {
    fn start(stats: &'a Mutex<Stats>) -> Self {
        let started = Instant::now();
        stats.lock().unwrap().upstream_started(started);
        Upstream { stats, started, done: false }
    }
    fn finish(mut self, failed: bool) {
        self.record(failed, false);
    }
    fn record(&mut self, failed: bool, cancelled: bool) {
        self.done = true;
        let mut s = self.stats.lock().unwrap();
        s.upstream_finished(self.started, Instant::now());
        s.forwarded += 1;
        s.upstream_errors += u64::from(failed);
        s.cancelled += u64::from(cancelled);
    }
}

impl Drop for Upstream<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.record(false, true);
        }
    }
}

struct Proxy {
    upstream: Uri,
    client: Client<HttpConnector, Body>,
    latency: Duration,
    fault_rate: f64,
    faults: Vec<Fault>,
    rng: Mutex<SplitMix64>,
    stats: Mutex<Stats>,
    log: Option<Mutex<std::fs::File>>,
    started: Instant,
    clock: Option<clock::Clock>,
    /// Actions whose first answer is still to be lost (`--lose-first`).
    lose_first: Mutex<Vec<String>>,
    /// With `--lose-first-writes`: the writes whose first answer was lost.
    lost_writes: Option<Mutex<std::collections::HashSet<String>>>,
}

/// How an API encodes its errors, which decides the shape of injected ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// awsJson1_0 / awsJson1_1 (DynamoDB, ...): `X-Amz-Target`.
    Json,
    /// awsQuery (ELBv2, AutoScaling, RDS, IAM, STS): form body with `Action=`.
    Query,
    /// ec2Query: like awsQuery, but errors are `<Response><Errors><Error>`.
    Ec2,
    /// S3's REST-XML dialect (`<Error>` at the root).
    S3,
    /// restXml (CloudFront, Route 53): `<ErrorResponse><Error>`.
    RestXml,
    /// restJson1 (Lambda, API Gateway): `x-amzn-ErrorType` header.
    RestJson,
}

/// What a call is, read from its headers and body.
struct CallInfo {
    service: String,
    action: String,
    protocol: Protocol,
}

/// The service of a SigV4-signed request: `Credential=AKID/date/region/SERVICE/aws4_request`
/// in the Authorization header, or `X-Amz-Credential` in a presigned URL's query.
fn service_of(headers: &HeaderMap, query: &str) -> Option<String> {
    let scope = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|s| s.split([',', ' ']).next().unwrap_or("").to_string())
        .or_else(|| form_value(query.as_bytes(), "X-Amz-Credential").map(|c| c.replace("%2F", "/")))?;
    // AKID/date/region/service/aws4_request
    let parts: Vec<&str> = scope.split('/').collect();
    (parts.len() >= 5).then(|| parts[parts.len() - 2].to_string())
}

/// Value of `key` in an `application/x-www-form-urlencoded` string.
fn form_value(body: &[u8], key: &str) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |b| *b == b'=');
        let k = kv.next()?;
        (k == key.as_bytes()).then(|| String::from_utf8_lossy(kv.next().unwrap_or(b"")).into())
    })
}

fn classify(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> CallInfo {
    let query = uri.query().unwrap_or("");
    let service = service_of(headers, query).unwrap_or_else(|| "unsigned".to_string());
    let content_type = headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        // "DynamoDB_20120810.DescribeTable" -> "DescribeTable"
        let action = target.rsplit('.').next().unwrap_or(target).to_string();
        return CallInfo { service, action, protocol: Protocol::Json };
    }
    let form_action =
        if content_type.starts_with("application/x-www-form-urlencoded") { form_value(body, "Action") } else { None }
            .or_else(|| form_value(query.as_bytes(), "Action"));
    if let Some(action) = form_action {
        let protocol = if service == "ec2" { Protocol::Ec2 } else { Protocol::Query };
        return CallInfo { service, action, protocol };
    }
    let protocol = match service.as_str() {
        "s3" => Protocol::S3,
        "cloudfront" | "route53" => Protocol::RestXml,
        _ if content_type.starts_with("application/x-amz-json") => Protocol::Json,
        _ => Protocol::RestJson,
    };
    CallInfo { action: format!("{} {}", method, uri.path()), service, protocol }
}

/// An AWS-shaped error answer: the protocol's status, headers and body, so
/// the client's SDK classifies it as it would a real one.
fn aws_error(protocol: Protocol, status: u16, code: &str, message: &str) -> Response<Body> {
    let request_id = "00000000-0000-4000-8000-000000000000";
    let (content_type, body, error_type_header) = match protocol {
        Protocol::Json | Protocol::RestJson => (
            if protocol == Protocol::Json { "application/x-amz-json-1.1" } else { "application/json" },
            json!({"__type": code, "message": message}).to_string(),
            true,
        ),
        Protocol::Ec2 => (
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
            false,
        ),
        Protocol::S3 => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
            ),
            false,
        ),
        Protocol::Query | Protocol::RestXml => {
            let kind = if status >= 500 { "Receiver" } else { "Sender" };
            (
                "text/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
                ),
                false,
            )
        }
    };
    let mut r = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", request_id)
        .header("x-amz-request-id", request_id);
    if error_type_header {
        r = r.header("x-amzn-errortype", code);
    }
    r.body(Body::from(body)).unwrap_or_else(|_| Response::new(Body::empty()))
}

fn throttle(protocol: Protocol) -> Response<Body> {
    match protocol {
        Protocol::Json => aws_error(protocol, 400, "ThrottlingException", "Rate exceeded"),
        Protocol::RestJson => aws_error(protocol, 429, "TooManyRequestsException", "Rate exceeded"),
        Protocol::S3 => aws_error(protocol, 503, "SlowDown", "Please reduce your request rate."),
        Protocol::Ec2 => aws_error(protocol, 400, "RequestLimitExceeded", "Request limit exceeded."),
        Protocol::Query | Protocol::RestXml => aws_error(protocol, 400, "Throttling", "Rate exceeded"),
    }
}

fn internal_error(protocol: Protocol, status: u16) -> Response<Body> {
    if status == 503 {
        aws_error(protocol, 503, "ServiceUnavailable", "Service is unavailable (injected by the proxy)")
    } else {
        aws_error(protocol, 500, "InternalError", "Internal error (injected by the proxy)")
    }
}

/// Headers that belong to one connection, not to the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "expect"
            | "content-length"
    )
}

/// Whether a call changes something: a REST call other than GET/HEAD, or a
/// named action that is not one of AWS's read verbs.
fn is_write(action: &str) -> bool {
    const READS: &[&str] =
        &["Describe", "Get", "List", "Head", "Search", "Query", "Scan", "BatchGet", "Lookup", "Check", "Validate"];
    match action.split_once(' ') {
        Some((method, _)) => !matches!(method, "GET" | "HEAD" | "OPTIONS"),
        None => !READS.iter().any(|r| action.starts_with(r)),
    }
}

fn json_response(v: &Value) -> Response<Body> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

impl Proxy {
    /// The fault for the next call, in arrival order (seeded: reproducible).
    /// The fault of a call of `action`: a lost answer if it is the first
    /// call of a `--lose-first` action, else a draw.
    fn fault_for(&self, service: &str, action: &str) -> Option<(Fault, u16)> {
        let mut pending = self.lose_first.lock().unwrap();
        if let Some(i) = pending.iter().position(|a| a == action) {
            pending.remove(i);
            return Some((Fault::ErrorAfter, 500));
        }
        drop(pending);
        if let Some(lost) = &self.lost_writes
            && is_write(action)
            && lost.lock().unwrap().insert(format!("{service}.{action}"))
        {
            return Some((Fault::ErrorAfter, 500));
        }
        self.draw()
    }

    fn draw(&self) -> Option<(Fault, u16)> {
        if self.fault_rate <= 0.0 || self.faults.is_empty() {
            return None;
        }
        let mut rng = self.rng.lock().unwrap();
        if rng.next_f64() >= self.fault_rate {
            return None;
        }
        let fault = self.faults[(rng.next_u64() % self.faults.len() as u64) as usize];
        let status = if rng.next_u64().is_multiple_of(2) { 500 } else { 503 };
        Some((fault, status))
    }

    /// Sends the request to the emulator and reads the whole answer.
    async fn forward(
        &self, method: Method, uri: &Uri, headers: &HeaderMap, body: Bytes, counted: bool,
    ) -> Result<(hyper::http::response::Parts, Bytes), String> {
        let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let target: Uri = format!(
            "{}://{}{}",
            self.upstream.scheme_str().unwrap_or("http"),
            self.upstream.authority().map(|a| a.as_str()).unwrap_or(""),
            path_and_query
        )
        .parse()
        .map_err(|e| format!("bad upstream URI: {e}"))?;
        let mut req = Request::builder().method(method).uri(target);
        for (k, v) in headers {
            if !hop_by_hop(k) {
                req = req.header(k, v);
            }
        }
        req = req.header("content-length", body.len());
        let req = req.body(Body::from(body)).map_err(|e| e.to_string())?;
        let guard = counted.then(|| Upstream::start(&self.stats));
        let result = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let (parts, body) = resp.into_parts();
            let bytes = hyper::body::to_bytes(body).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((parts, bytes))
        }
        .await;
        if let Some(g) = guard {
            g.finish(result.is_err());
        }
        result
    }

    async fn handle(self: Arc<Self>, req: Request<Body>) -> Result<Response<Body>, Infallible> {
        let path = req.uri().path().to_string();
        if path == "/__proxy/stats" {
            return Ok(json_response(&self.stats.lock().unwrap().to_json(Instant::now())));
        }
        if path == "/__proxy/reset" {
            if req.method() != Method::POST {
                return Ok(Response::builder()
                    .status(StatusCode::METHOD_NOT_ALLOWED)
                    .body(Body::from("POST /__proxy/reset"))
                    .unwrap_or_default());
            }
            self.stats.lock().unwrap().reset();
            return Ok(json_response(&json!({"reset": true})));
        }
        if path == "/__proxy/clock" {
            return Ok(json_response(&match &self.clock {
                Some(c) => c.snapshot(Instant::now()),
                None => json!({"factor": null}),
            }));
        }
        let (parts, body) = req.into_parts();
        let body = match hyper::body::to_bytes(body).await {
            Ok(b) => b,
            Err(e) => {
                return Ok(Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .body(Body::from(format!("proxy: cannot read the request body: {e}")))
                    .unwrap_or_default());
            }
        };
        // The emulator's own control API: never delayed, faulted nor counted.
        if path.starts_with("/moto-api/") {
            return Ok(match self.forward(parts.method, &parts.uri, &parts.headers, body, false).await {
                Ok((p, b)) => Response::from_parts(p, Body::from(b)),
                Err(e) => bad_gateway(&e),
            });
        }

        let arrived = Instant::now();
        let info = classify(&parts.method, &parts.uri, &parts.headers, &body);
        let call = clock::Call {
            service: &info.service,
            action: &info.action,
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            body: &body,
        };
        // AWS refuses some calls while a resource is busy: answered here,
        // as a fault would be, without the emulator seeing them.
        let refusal = self.clock.as_ref().and_then(|c| c.refuse(&call, Instant::now()));
        let fault = if refusal.is_some() { None } else { self.fault_for(&info.service, &info.action) };
        {
            let mut s = self.stats.lock().unwrap();
            s.calls += 1;
            s.first_call.get_or_insert(arrived);
            *s.by_service_action.entry(format!("{}.{}", info.service, info.action)).or_default() += 1;
            if let Some((f, _)) = fault {
                *s.faults.entry(f.name()).or_default() += 1;
            }
            if let Some(r) = &refusal {
                *s.clock_refused.entry(r.code).or_default() += 1;
            }
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let mut upstream_seconds = 0.0;
        let mut rewritten = false;
        let response = match (fault, &refusal) {
            (_, Some(r)) => aws_error(info.protocol, r.status, r.code, &r.message),
            (fault, None) => match fault {
                Some((Fault::Throttle, _)) => throttle(info.protocol),
                Some((Fault::ErrorBefore, status)) => internal_error(info.protocol, status),
                Some((Fault::ErrorAfter, _)) | None => {
                    let t = Instant::now();
                    let r = self.forward(parts.method.clone(), &parts.uri, &parts.headers, body.clone(), true).await;
                    upstream_seconds = t.elapsed().as_secs_f64();
                    // The clock records what the emulator did (even when the
                    // answer is then lost) and rewrites its answer.
                    let r = r.map(|(mut p, b)| {
                        let new =
                            self.clock.as_ref().and_then(|c| c.rewrite(&call, p.status.as_u16(), &b, Instant::now()));
                        match new {
                            Some((status, nb)) => {
                                rewritten = true;
                                p.status = StatusCode::from_u16(status).unwrap_or(p.status);
                                p.headers.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(nb.len()));
                                (p, Bytes::from(nb))
                            }
                            None => (p, b),
                        }
                    });
                    match (r, fault) {
                        // The emulator acted; its answer is lost on the way back.
                        (Ok(_), Some(_)) => internal_error(info.protocol, 500),
                        (Ok((p, b)), None) => {
                            let mut resp = Response::from_parts(p, Body::from(b));
                            resp.headers_mut().retain_hop_by_hop();
                            resp
                        }
                        (Err(e), _) => bad_gateway(&e),
                    }
                }
            },
        };
        if rewritten {
            self.stats.lock().unwrap().clock_rewritten += 1;
        }
        let ended = Instant::now();
        self.stats.lock().unwrap().last_end = Some(ended);
        if let Some(log) = &self.log {
            let line = json!({
                "start": (arrived - self.started).as_secs_f64(),
                "end": (ended - self.started).as_secs_f64(),
                "service": info.service,
                "action": info.action,
                "status": response.status().as_u16(),
                "upstream_seconds": upstream_seconds,
                "fault": fault.map(|(f, _)| f.name()),
                "clock": refusal.as_ref().map(|r| r.code).or(rewritten.then_some("rewritten")),
            });
            let _ = writeln!(log.lock().unwrap(), "{line}");
        }
        Ok(response)
    }
}

/// Drops connection-specific headers from a forwarded answer (hyper sets its own).
trait RetainHopByHop {
    fn retain_hop_by_hop(&mut self);
}
impl RetainHopByHop for HeaderMap<HeaderValue> {
    fn retain_hop_by_hop(&mut self) {
        let drop: Vec<HeaderName> =
            self.keys().filter(|k| hop_by_hop(k) && k.as_str() != "content-length").cloned().collect();
        for k in drop {
            self.remove(k);
        }
    }
}

fn bad_gateway(e: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(Body::from(format!("proxy: upstream error: {e}")))
        .unwrap_or_default()
}

fn write_stats(proxy: &Proxy, file: &Option<PathBuf>) {
    if let Some(f) = file {
        let v = proxy.stats.lock().unwrap().to_json(Instant::now());
        if let Err(e) = std::fs::write(f, format!("{v:#}\n")) {
            eprintln!("proxy: cannot write {}: {e}", f.display());
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.print_durations {
        let table: serde_json::Map<String, Value> =
            clock::DURATIONS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        println!("{}", Value::Object(table));
        return;
    }
    let upstream_arg = args.upstream.clone().unwrap_or_default();
    if !(0.0..=1.0).contains(&args.fault_rate) {
        eprintln!("proxy: --fault-rate must be between 0 and 1");
        std::process::exit(2);
    }
    let upstream: Uri = match upstream_arg.parse() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("proxy: --upstream {upstream_arg}: {e}");
            std::process::exit(2);
        }
    };
    let log = args.log.as_ref().map(|p| {
        std::fs::OpenOptions::new().create(true).append(true).open(p).map(Mutex::new).unwrap_or_else(|e| {
            eprintln!("proxy: cannot open {}: {e}", p.display());
            std::process::exit(2);
        })
    });
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder().pool_idle_timeout(Duration::from_secs(30)).build(connector);
    let proxy = Arc::new(Proxy {
        upstream,
        client,
        latency: Duration::from_millis(args.latency_ms),
        fault_rate: args.fault_rate,
        faults: args.faults.clone(),
        rng: Mutex::new(SplitMix64(args.seed)),
        stats: Mutex::new(Stats { since: Some(Instant::now()), ..Stats::default() }),
        log,
        started: Instant::now(),
        clock: args.aws_clock.map(clock::Clock::new),
        lose_first: Mutex::new(args.lose_first.clone()),
        lost_writes: args.lose_first_writes.then(Default::default),
    });

    let builder = match Server::try_bind(&args.listen) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("proxy: cannot listen on {}: {e}", args.listen);
            std::process::exit(2);
        }
    };
    let make = {
        let proxy = proxy.clone();
        make_service_fn(move |_conn| {
            let proxy = proxy.clone();
            async move { Ok::<_, Infallible>(service_fn(move |req| proxy.clone().handle(req))) }
        })
    };
    let server = builder.tcp_nodelay(true).http1_keepalive(true).serve(make);
    println!("{}", server.local_addr().port());
    let _ = std::io::stdout().flush();

    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    };
    tokio::select! {
        r = server => {
            if let Err(e) = r {
                eprintln!("proxy: server error: {e}");
            }
        }
        _ = shutdown => {}
    }
    write_stats(&proxy, &args.stats_file);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const AUTH: &str =
        "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/SVC/aws4_request, SignedHeaders=host, Signature=00";

    fn auth(svc: &str) -> String {
        AUTH.replace("SVC", svc)
    }

    #[test]
    fn tells_writes_from_reads() {
        for w in ["CreateVpc", "PutBucketPolicy", "DeleteTable", "AuthorizeSecurityGroupIngress", "POST /restapis"] {
            assert!(is_write(w), "{w}");
        }
        for r in ["DescribeVpcs", "GetCallerIdentity", "ListTagsForResource", "Query", "GET /restapis/abc", "HEAD /b"] {
            assert!(!is_write(r), "{r}");
        }
    }

    #[test]
    fn classifies_each_protocol() {
        let uri: Uri = "/".parse().unwrap();
        let q = classify(
            &Method::POST,
            &uri,
            &headers(&[
                ("authorization", &auth("ec2")),
                ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ]),
            b"Action=DescribeVpcs&Version=2016-11-15",
        );
        assert_eq!((q.service.as_str(), q.action.as_str()), ("ec2", "DescribeVpcs"));
        assert_eq!(q.protocol, Protocol::Ec2);

        let q = classify(
            &Method::POST,
            &uri,
            &headers(&[
                ("authorization", &auth("elasticloadbalancing")),
                ("content-type", "application/x-www-form-urlencoded"),
            ]),
            b"Version=2015-12-01&Action=DescribeLoadBalancers",
        );
        assert_eq!(q.action, "DescribeLoadBalancers");
        assert_eq!(q.protocol, Protocol::Query);

        let j = classify(
            &Method::POST,
            &uri,
            &headers(&[("authorization", &auth("dynamodb")), ("x-amz-target", "DynamoDB_20120810.DescribeTable")]),
            b"{}",
        );
        assert_eq!((j.service.as_str(), j.action.as_str()), ("dynamodb", "DescribeTable"));
        assert_eq!(j.protocol, Protocol::Json);

        let s3: Uri = "/bucket/key?x-id=GetObject".parse().unwrap();
        let r = classify(&Method::GET, &s3, &headers(&[("authorization", &auth("s3"))]), b"");
        assert_eq!(r.action, "GET /bucket/key");
        assert_eq!(r.protocol, Protocol::S3);

        let cf: Uri = "/2020-05-31/distribution".parse().unwrap();
        let r = classify(&Method::GET, &cf, &headers(&[("authorization", &auth("cloudfront"))]), b"");
        assert_eq!(r.protocol, Protocol::RestXml);

        let l: Uri = "/2015-03-31/functions/".parse().unwrap();
        let r = classify(&Method::GET, &l, &headers(&[("authorization", &auth("lambda"))]), b"");
        assert_eq!(r.protocol, Protocol::RestJson);

        let presigned: Uri =
            "/b/k?X-Amz-Credential=AKID%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0".parse().unwrap();
        let r = classify(&Method::GET, &presigned, &HeaderMap::new(), b"");
        assert_eq!(r.service, "s3");

        let r = classify(&Method::GET, &uri, &HeaderMap::new(), b"");
        assert_eq!(r.service, "unsigned");
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let seq = |seed| {
            let mut r = SplitMix64(seed);
            (0..5).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(seq(42), seq(42));
        assert_ne!(seq(42), seq(43));
        // Pinned: a fault schedule must not change with a refactoring.
        assert_eq!(SplitMix64(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let mut r = SplitMix64(1);
        assert!((0..1000).map(|_| r.next_f64()).all(|x| (0.0..1.0).contains(&x)));
    }

    #[test]
    fn throttling_errors_carry_each_protocols_code() {
        assert_eq!(throttle(Protocol::S3).status(), 503);
        assert_eq!(throttle(Protocol::RestJson).status(), 429);
        assert_eq!(throttle(Protocol::Ec2).status(), 400);
        let j = throttle(Protocol::Json);
        assert_eq!(j.headers()["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(internal_error(Protocol::Query, 503).status(), 503);
        assert_eq!(internal_error(Protocol::Query, 500).status(), 500);
    }
}
