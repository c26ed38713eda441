//! Test harness: a private moto server per test on a free loopback port, the
//! real `infra` binary, and the AWS CLI as an independent reader of what the
//! tool created.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Moto {
    /// Starts a fresh moto server and waits until it answers.
    pub fn start() -> Moto {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("infra-test-moto-{port}.log"));
        // moto with its known gaps patched (tests/support/moto_patched.py).
        let child = Command::new("python3")
            .arg(repo_root().join("tests/support/moto_patched.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("moto_server not found: pip install 'moto[server]'");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(60), "moto did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, port, endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// Points a command at this emulator (for commands the test spawns itself).
    pub fn env_for(&self, cmd: &mut Command) {
        self.env(cmd);
    }

    fn env(&self, cmd: &mut Command) {
        aws_env(cmd, &self.endpoint);
    }

    /// Runs `infra ARGS` in `dir`.
    pub fn infra(&self, dir: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
        cmd.args(args).current_dir(dir).stdin(Stdio::null());
        self.env(&mut cmd);
        Run::from(cmd.output().unwrap())
    }

    /// Runs the AWS CLI and parses its JSON output.
    pub fn aws(&self, args: &[&str]) -> Value {
        let mut cmd = Command::new("aws");
        // AWS CLI v1 ignores AWS_ENDPOINT_URL for some services (RDS).
        cmd.args(args).args(["--output", "json", "--endpoint-url", &self.endpoint]);
        self.env(&mut cmd);
        let out = cmd.output().expect("aws CLI not found");
        assert!(out.status.success(), "aws {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs the AWS CLI and expects it to fail.
    pub fn aws_ok(&self, args: &[&str]) -> bool {
        let mut cmd = Command::new("aws");
        // AWS CLI v1 ignores AWS_ENDPOINT_URL for some services (RDS).
        cmd.args(args).args(["--output", "json", "--endpoint-url", &self.endpoint]);
        self.env(&mut cmd);
        cmd.output().unwrap().status.success()
    }

    /// Resources of an EC2 describe call filtered by a stack tag.
    pub fn ec2_by_stack(&self, describe: &str, key: &str, stack: &str) -> Vec<Value> {
        let v = self.aws(&["ec2", describe, "--filters", &format!("Name=tag:infra:stack,Values={stack}")]);
        v[key].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// A temporary directory holding a copy of a stack file.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn with_stack(yaml: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stack.yaml"), yaml).unwrap();
        Workdir { dir }
    }
    /// A copy of the repository's reference stack.yaml (and what it refers to).
    pub fn reference() -> Workdir {
        let root = repo_root();
        let w = Workdir::with_stack(&std::fs::read_to_string(root.join("stack.yaml")).unwrap());
        for extra in ["site", "functions", "web"] {
            let src = root.join(extra);
            if src.is_dir() {
                copy_dir(&src, &w.path().join(extra));
            }
        }
        w
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn write(&self, name: &str, text: &str) {
        let p = self.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap()
    }
    /// Replaces `from` with `to` in stack.yaml (panics if absent: the test would be vacuous).
    pub fn edit(&self, from: &str, to: &str) {
        let s = self.read("stack.yaml");
        assert!(s.contains(from), "stack.yaml does not contain {from:?}");
        self.write("stack.yaml", &s.replacen(from, to, 1));
    }
}

/// Points a command at an emulator's `endpoint` with test credentials, in
/// us-east-1, without colours or the caller's profile.
pub fn aws_env(cmd: &mut Command, endpoint: &str) {
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

/// Value of tag `key` in an AWS `Tags: [{Key, Value}]` list.
pub fn tag<'a>(resource: &'a Value, key: &str) -> Option<&'a str> {
    resource["Tags"].as_array()?.iter().find(|t| t["Key"] == key)?["Value"].as_str()
}

/// A loopback TCP forwarder that delays every chunk the client sends by
/// `delay`, so each AWS call takes at least that long (to interrupt a run
/// mid-way).
pub struct SlowProxy {
    pub endpoint: String,
}

impl SlowProxy {
    pub fn start(upstream_port: u16, delay: Duration) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let (mut c_read, mut u_write) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (mut u_read, mut c_write) = (upstream, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    use std::io::{Read, Write};
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        std::thread::sleep(delay);
                        if u_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = u_write.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u_read, &mut c_write);
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        SlowProxy { endpoint: format!("http://127.0.0.1:{port}") }
    }
}

pub mod census;

/// Options of the loopback proxy (`tools/proxy.rs`) put in front of moto.
#[derive(Clone, Debug, Default)]
pub struct ProxyOpts {
    pub latency_ms: u64,
    pub fault_rate: f64,
    pub seed: u64,
    /// Comma-separated fault kinds (`throttle,error_before,error_after`); empty: all.
    pub faults: String,
    /// JSON-lines log of every call (`--log`).
    pub log: Option<PathBuf>,
    /// Comma-separated actions whose first answer is lost (`--lose-first`).
    pub lose_first: String,
    /// Lose the first answer of every distinct write (`--lose-first-writes`).
    pub lose_first_writes: bool,
}

/// The fault-injecting, call-counting proxy between a client and moto.
pub struct Proxy {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    moto_endpoint: String,
}

/// Path of the proxy example next to the `infra` binary under test.
/// `cargo test` builds examples, `cargo test --test X` does not, and a test
/// cannot build it itself (cargo holds the target directory's lock while tests
/// run): a missing or stale binary is an error that says what to run.
pub fn proxy_binary() -> PathBuf {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_infra")).parent().unwrap();
    let p = bin_dir.join("examples").join("proxy");
    let release = if bin_dir.ends_with("release") { " --release" } else { "" };
    let built = std::fs::metadata(&p).and_then(|m| m.modified());
    let source = std::fs::metadata(repo_root().join("tools/proxy.rs")).and_then(|m| m.modified());
    match (built, source) {
        (Ok(b), Ok(s)) if b >= s => p,
        (Ok(_), _) => panic!(
            "{} is older than tools/proxy.rs: run `cargo build --example proxy{release}` (or plain `cargo test`, which builds examples)",
            p.display()
        ),
        (Err(_), _) => panic!(
            "{} missing: run `cargo build --example proxy{release}` (or plain `cargo test`, which builds examples)",
            p.display()
        ),
    }
}

impl Proxy {
    /// Starts the proxy in front of `moto` and waits for its port.
    pub fn start(moto: &Moto, opts: ProxyOpts) -> Proxy {
        use std::io::BufRead;
        let mut cmd = Command::new(proxy_binary());
        cmd.args(["--listen", "127.0.0.1:0", "--upstream", &moto.endpoint])
            .args(["--latency-ms", &opts.latency_ms.to_string()])
            .args(["--fault-rate", &opts.fault_rate.to_string()])
            .args(["--seed", &opts.seed.to_string()]);
        if !opts.faults.is_empty() {
            cmd.args(["--faults", &opts.faults]);
        }
        if let Some(l) = &opts.log {
            cmd.arg("--log").arg(l);
        }
        if !opts.lose_first.is_empty() {
            cmd.args(["--lose-first", &opts.lose_first]);
        }
        if opts.lose_first_writes {
            cmd.arg("--lose-first-writes");
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("cannot start the proxy");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("proxy printed {line:?} instead of its port"));
        Proxy { child, port, endpoint: format!("http://127.0.0.1:{port}"), moto_endpoint: moto.endpoint.clone() }
    }

    fn env(&self, cmd: &mut Command) {
        aws_env(cmd, &self.endpoint);
    }

    /// Runs `infra ARGS` in `dir` with every AWS call going through the proxy.
    pub fn infra(&self, dir: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
        cmd.args(args).current_dir(dir).stdin(Stdio::null());
        self.env(&mut cmd);
        Run::from(cmd.output().unwrap())
    }

    /// `infra ARGS` in `dir` through the proxy, not started: for tests that
    /// kill it midway.
    pub fn infra_command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
        cmd.args(args).current_dir(dir).stdin(Stdio::null());
        self.env(&mut cmd);
        cmd
    }

    /// Runs the AWS CLI through the proxy with retries off (every injected
    /// fault shows), returning the raw outcome.
    pub fn aws_once(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("aws");
        // AWS CLI v1 ignores AWS_ENDPOINT_URL for some services (RDS).
        cmd.args(args).args(["--output", "json", "--endpoint-url", &self.endpoint]);
        self.env(&mut cmd);
        cmd.env("AWS_MAX_ATTEMPTS", "1").env("AWS_RETRY_MODE", "standard");
        Run::from(cmd.output().expect("aws CLI not found"))
    }

    /// `GET /__proxy/stats`.
    pub fn stats(&self) -> Value {
        let body = http(self.port, "GET", "/__proxy/stats");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad stats {body:?}: {e}"))
    }

    /// `POST /__proxy/reset`.
    pub fn reset(&self) {
        http(self.port, "POST", "/__proxy/reset");
    }

    /// The moto endpoint behind this proxy.
    pub fn upstream(&self) -> &str {
        &self.moto_endpoint
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request to a loopback port; returns the body.
pub fn http(port: u16, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    assert!(head.starts_with("HTTP/1.1 2"), "{method} {path}: {head}\n{body}");
    body.to_string()
}

impl Moto {
    /// `POST /moto-api/reset`: a fresh account without restarting moto.
    pub fn reset(&self) {
        http(self.port, "POST", "/moto-api/reset");
    }
}
