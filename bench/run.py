#!/usr/bin/env python3
"""The benchmark of issue 9, in one command.

    bench/run.py [--runs 3] [--skip-terraform] [--skip-latency] [--skip-scale]
                 [--latency-ms 100] [--scales 1,5,10] [--measure-build]
                 [--infra target/debug/infra] [--aws-clock 1/60] [--skip-clock | --clock-only]

Starts ONE moto server and the loopback proxy (tools/proxy.rs) in front of it,
builds infra in release, then runs the reference stack.yaml with infra and
with Terraform (../shared/peers/terraform, the same stack) against that one
emulator: apply, no-op plan, destroy, --runs times each, moto reset between
runs. The proxy counts the API calls of every phase and times the emulator's
own serving time. Then a latency run (a second proxy adding --latency-ms to
every call) and a scale run (stacks generated with 1x, 5x, 10x the repeatable
sections of stack.yaml), and the clock run: both tools' apply and destroy
through a proxy with AWS's clock (--aws-clock), against the floor computed
from the stack's dependency graph. Prints the table and writes it to
bench/RESULTS.md (--clock-only replaces only the clock run's section there).
Every target says met / not met with its numbers. See bench/README.md.

Python 3.11 standard library, plus PyYAML (installed with the AWS CLI and
moto, which the benchmark needs anyway) to read and generate stack files.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK_DIRS = ("site", "functions", "web")  # what stack.yaml may refer to (as tests/common does)
# Sections of stack.yaml that hold repeatable, independent entries (maps of
# name -> spec, or lists of specs with a `name`), multiplied by the scale run.
REPEATABLE = (
    ("network", "security_groups"),
    ("compute", "groups"),
    ("data", "tables"),
    ("backend", "functions"),
)
TARGETS = {"apply": 50.0, "destroy": 50.0, "plan": 30.0}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listening on port {port} after {timeout}s")


def http(url: str, method: str = "GET") -> dict:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
    try:
        return json.loads(body or b"{}")
    except json.JSONDecodeError:
        return {}


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt_s(x: float) -> str:
    if x != x:  # NaN
        return "–"
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


# --------------------------------------------------------------------------
# Processes: moto and the proxy


class Moto:
    def __init__(self, logdir: Path):
        self.port = free_port()
        env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
        self.log = open(logdir / "moto.log", "w")
        self.proc = subprocess.Popen(
            # moto with the tests' patches of its known gaps (OAC id dropped
            # on read, ...): on plain moto a no-op plan of the frontend tier
            # would show a change. Both tools run against this same server.
            [sys.executable, str(ROOT / "tests/support/moto_patched.py"),
             "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        wait_port(self.port)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        http(f"{self.endpoint}/moto-api/reset", "POST")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Proxy:
    def __init__(self, binary: Path, upstream: str, logdir: Path, name: str, latency_ms: int = 0,
                 extra: list[str] | None = None):
        self.calls_log = logdir / f"{name}-calls.jsonl"
        self.proc = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--upstream", upstream,
             "--latency-ms", str(latency_ms), "--stats-file", str(logdir / f"{name}-stats.json"),
             "--log", str(self.calls_log), *(extra or [])],
            stdout=subprocess.PIPE, stderr=open(logdir / f"{name}.log", "w"), text=True,
        )
        self.binary = binary
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            raise SystemExit(f"proxy did not print its port (got {line!r}); see {logdir}/{name}.log")
        self.port = int(line)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.latency_ms = latency_ms

    def reset(self) -> None:
        http(f"{self.endpoint}/__proxy/reset", "POST")
        self.mark = self.calls_log.stat().st_size if self.calls_log.exists() else 0

    def calls_since_reset(self) -> list[dict]:
        """The call log's lines since the last reset."""
        if not self.calls_log.exists():
            return []
        with open(self.calls_log) as f:
            f.seek(getattr(self, "mark", 0))
            return [json.loads(l) for l in f if l.strip()]

    def stats(self) -> dict:
        return http(f"{self.endpoint}/__proxy/stats")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --------------------------------------------------------------------------
# Build


def cargo(args: list[str], env: dict | None = None, quiet: bool = False) -> float:
    t = time.monotonic()
    out = subprocess.DEVNULL if quiet else sys.stderr
    subprocess.run(["cargo", *args], cwd=ROOT, check=True, env=env, stdout=out, stderr=out)
    return time.monotonic() - t


def sdk_crates() -> list[str]:
    """Every aws-sdk-* package in Cargo.lock (profile overrides take no globs)."""
    lock = (ROOT / "Cargo.lock").read_text()
    return sorted(set(re.findall(r'^name = "(aws-sdk-[a-z0-9-]+)"$', lock, re.M)))


def opt_override_args(level: str) -> list[str]:
    args = []
    for c in sdk_crates():
        args += ["--config", f'profile.release.package."{c}".opt-level={level}']
    return args


def target_dir() -> Path:
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    return Path(json.loads(meta.stdout)["target_directory"])


# --------------------------------------------------------------------------
# infra


def aws_env(endpoint: str) -> dict:
    env = dict(os.environ)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(k, None)
    env.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
        NO_COLOR="1",
    )
    return env


def stack_workdir(stack_text: str | None = None) -> Path:
    d = Path(tempfile.mkdtemp(prefix="infra-bench-"))
    (d / "stack.yaml").write_text(stack_text if stack_text is not None else (ROOT / "stack.yaml").read_text())
    for extra in STACK_DIRS:
        if (ROOT / extra).is_dir():
            shutil.copytree(ROOT / extra, d / extra)
    return d


class Phase:
    """One timed phase: wall time, exit code, proxy counters, output."""

    def __init__(self, name: str, wall: float, code: int, stats: dict, stdout: str, stderr: str,
                 calls_log: list[dict]):
        self.name, self.wall, self.code, self.stats = name, wall, code, stats
        self.stdout, self.stderr, self.calls_log = stdout, stderr, calls_log

    @property
    def calls(self) -> int:
        return int(self.stats.get("calls", 0))

    @property
    def busy(self) -> float:
        return float(self.stats.get("upstream_busy_seconds", 0.0))

    @property
    def upstream_sum(self) -> float:
        return float(self.stats.get("upstream_seconds_total", 0.0))


def timed(cmd: list[str], cwd: Path, env: dict, proxy: Proxy, name: str, logdir: Path,
          ok_codes=(0,), timeout: float = 1800) -> Phase:
    proxy.reset()
    t = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - t
    stats = proxy.stats()
    (logdir / f"{name}.out").write_text(p.stdout + "\n--- stderr ---\n" + p.stderr)
    if p.returncode not in ok_codes:
        log(f"{name}: exit {p.returncode} (log: {logdir / (name + '.out')})")
        log("\n".join((p.stdout + p.stderr).strip().splitlines()[-15:]))
    return Phase(name, wall, p.returncode, stats, p.stdout, p.stderr, proxy.calls_since_reset())


def fresh_moto(moto: Moto, infra: Path, work: Path) -> None:
    """Resets moto, then warms it: right after a reset moto rebuilds each
    service's backend on its first call (close to a second for EC2 on this
    machine), which is the emulator's start-up, not work of the tool being
    measured. An `infra plan` straight to moto (not through the proxy, so not
    counted) touches every service the stack uses. Done alike for Terraform."""
    moto.reset()
    subprocess.run([str(infra), "plan"], cwd=work, env=aws_env(moto.endpoint),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def infra_cycle(infra: Path, work: Path, moto: Moto, proxy: Proxy, logdir: Path, tag: str,
                plans: int = 1, slow: "Proxy | None" = None) -> dict[str, list[Phase]]:
    """apply, `plans` no-op plans, destroy on a freshly reset moto; with
    `slow`, one more no-op plan through that proxy before the destroy."""
    env = aws_env(proxy.endpoint)
    fresh_moto(moto, infra, work)
    out: dict[str, list[Phase]] = {"apply": [], "plan": [], "destroy": []}
    out["apply"].append(timed([str(infra), "apply", "--auto-approve"], work, env, proxy, f"{tag}-apply", logdir))
    for i in range(plans):
        out["plan"].append(timed([str(infra), "plan", "--detailed-exitcode"], work, env, proxy,
                                 f"{tag}-plan{i}", logdir))
    if slow:
        out["slow_plan"] = [timed([str(infra), "plan", "--detailed-exitcode"], work, aws_env(slow.endpoint), slow,
                                  f"{tag}-slow-plan", logdir)]
    out["destroy"].append(timed([str(infra), "destroy", "--auto-approve"], work, env, proxy,
                                f"{tag}-destroy", logdir))
    return out


def plan_json(infra: Path, work: Path, endpoint: str) -> dict:
    p = subprocess.run([str(infra), "plan", "--json"], cwd=work, env=aws_env(endpoint),
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def refs(v, out: set[str]) -> None:
    if isinstance(v, dict):
        r = v.get("$ref")
        if isinstance(r, str) and len(v) == 1:
            out.add(r.split("#", 1)[0])
        for x in v.values():
            refs(x, out)
    elif isinstance(v, list):
        for x in v:
            refs(x, out)


def dependency_graph(plan: dict) -> dict[str, set[str]]:
    """address -> addresses it needs first (references and depends_on), for creates."""
    g: dict[str, set[str]] = {}
    for c in plan.get("changes", []):
        d = c.get("desired")
        if not d:
            continue
        deps: set[str] = set(d.get("depends_on", []))
        refs(d.get("props"), deps)
        g[c["address"]] = deps
    for a in g:
        g[a] &= set(g)
    return g


def longest_chain(g: dict[str, set[str]], weight: dict[str, float]) -> tuple[float, list[str]]:
    memo: dict[str, tuple[float, list[str]]] = {}

    def best(a: str, seen: frozenset) -> tuple[float, list[str]]:
        if a in memo:
            return memo[a]
        w, path = 0.0, []
        for d in g.get(a, ()):
            if d in seen:
                continue
            dw, dp = best(d, seen | {d})
            if dw > w:
                w, path = dw, dp
        memo[a] = (w + weight.get(a, 1.0), path + [a])
        return memo[a]

    result = (0.0, [])
    for a in g:
        r = best(a, frozenset({a}))
        if r[0] > result[0]:
            result = r
    return result


STEP_LINE = re.compile(r"^\S+ (?P<addr>\S+): (?:created|updated|destroyed) \((?P<t>[0-9.]+)s\)")


def step_seconds(stdout: str) -> dict[str, float]:
    """Per-step durations from infra's plain progress output (`addr: created (1.2s)`)."""
    out = {}
    for line in stdout.splitlines():
        m = STEP_LINE.match(line.strip())
        if m:
            out[m["addr"]] = float(m["t"])
    return out


def json_events(stdout: str) -> dict[str, float] | None:
    """Per-step durations from `apply --json` events, when infra emits them."""
    out = {}
    for line in stdout.splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(e, dict) and e.get("event") == "finished":
            out[e["address"]] = float(e["seconds"])
    return out or None


def managed_kinds() -> list[str]:
    """The kinds infra reads on every plan (`model::Desired::kinds()`, made of
    each tier's `KINDS` list in src/model/*.rs), which may be more than the
    stack uses: a plan also looks for resources removed from the file."""
    kinds: set[str] = set()
    for f in sorted((ROOT / "src/model").glob("*.rs")):
        for m in re.finditer(r"pub const KINDS: &\[&str\] = &\[(.*?)\];", f.read_text(), re.S):
            kinds.update(re.findall(r'"([^"]+)"', m.group(1)))
    return sorted(kinds)


def has_apply_json(infra: Path) -> bool:
    p = subprocess.run([str(infra), "apply", "--help"], capture_output=True, text=True)
    return "--json" in p.stdout


# --------------------------------------------------------------------------
# Terraform


def find_terraform_dir(explicit: str | None) -> Path | None:
    cands = [Path(explicit)] if explicit else [ROOT.parent / "shared/peers/terraform",
                                               ROOT.parent.parent / "shared/peers/terraform"]
    for c in cands:
        if (c / "run.sh").is_file():
            return c.resolve()
    return None


def find_mirror() -> str | None:
    if os.environ.get("TF_PLUGIN_MIRROR"):
        return os.environ["TF_PLUGIN_MIRROR"]
    for base in ("/opt", "/usr/local/share", "/usr/share"):
        for depth_dir, dirs, _ in os.walk(base):
            depth = depth_dir[len(base):].count(os.sep)
            if "registry.terraform.io" in dirs:
                return depth_dir
            if depth >= 2:
                dirs[:] = []
    return None


class Terraform:
    """run.sh's semantics, phase by phase: a writable copy of the peer
    directory, the same CLI config, environment and commands."""

    def __init__(self, src: Path, endpoint: str, logdir: Path):
        self.tf = os.environ.get("TF_BIN", "terraform")
        self.dir = Path(tempfile.mkdtemp(prefix="infra-bench-tf-"))
        shutil.copytree(src, self.dir, dirs_exist_ok=True)
        mirror = find_mirror()
        if not mirror:
            raise RuntimeError("no local Terraform provider mirror found; set TF_PLUGIN_MIRROR")
        rc = (self.dir / "terraformrc.tpl").read_text().replace("__PLUGIN_MIRROR__", mirror)
        (self.dir / ".terraformrc").write_text(rc)
        env = dict(os.environ)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(k, None)
        env.update(TF_CLI_CONFIG_FILE=str(self.dir / ".terraformrc"), TF_IN_AUTOMATION="1",
                   CHECKPOINT_DISABLE="1", TF_INPUT="0", TF_VAR_endpoint=endpoint,
                   AWS_EC2_METADATA_DISABLED="true")
        self.env = env
        self.par = [f"-parallelism={os.environ['TF_PARALLELISM']}"] if os.environ.get("TF_PARALLELISM") else []
        subprocess.run([sys.executable, str(self.dir / "build_zip.py"), str(self.dir / "build/lambda.zip")],
                       check=True, stdout=subprocess.DEVNULL)
        t = time.monotonic()
        p = subprocess.run([self.tf, "init", "-input=false", "-no-color"], cwd=self.dir, env=env,
                           capture_output=True, text=True)
        self.init_seconds = time.monotonic() - t
        (logdir / "terraform-init.out").write_text(p.stdout + p.stderr)
        if p.returncode != 0:
            raise RuntimeError(f"terraform init failed: {p.stderr[-2000:]}")
        self.version = subprocess.run([self.tf, "version"], capture_output=True, text=True).stdout.splitlines()[0]

    def cycle(self, moto: Moto, proxy: Proxy, logdir: Path, tag: str, warm) -> dict[str, list[Phase]]:
        warm()
        for f in ("terraform.tfstate", "terraform.tfstate.backup"):
            (self.dir / f).unlink(missing_ok=True)
        tf, par = self.tf, self.par
        out: dict[str, list[Phase]] = {}
        out["apply"] = [timed([tf, "apply", "-auto-approve", "-input=false", "-no-color", *par],
                              self.dir, self.env, proxy, f"{tag}-apply", logdir)]
        out["plan"] = [timed([tf, "plan", "-detailed-exitcode", "-input=false", "-no-color", *par],
                             self.dir, self.env, proxy, f"{tag}-plan", logdir)]
        state = subprocess.run([tf, "state", "list"], cwd=self.dir, env=self.env, capture_output=True, text=True)
        self.resources = len([l for l in state.stdout.splitlines() if l.strip() and not l.startswith("data.")])
        out["destroy"] = [timed([tf, "destroy", "-auto-approve", "-input=false", "-no-color", *par],
                                self.dir, self.env, proxy, f"{tag}-destroy", logdir)]
        return out


# --------------------------------------------------------------------------
# Scale


def scaled_stack(text: str, k: int) -> tuple[str, dict[str, int]]:
    """The stack with every repeatable section's entries copied k times in
    all (copies named <name><i>); returns the YAML and the entry counts."""
    import yaml  # PyYAML: comes with the AWS CLI and moto

    doc = yaml.safe_load(text)
    counts = {}
    for path in REPEATABLE:
        node = doc
        for p in path[:-1]:
            node = node.get(p) if isinstance(node, dict) else None
            if node is None:
                break
        if not isinstance(node, dict) or path[-1] not in node:
            continue
        section = node[path[-1]]
        if isinstance(section, dict):
            orig = list(section.items())
            for i in range(2, k + 1):
                for name, spec in orig:
                    c = copy.deepcopy(spec)
                    if path == ("compute", "groups") and isinstance(c, dict):
                        # One load balancer: each further group gets its own
                        # path (validation requires a way to tell them apart).
                        c["path_patterns"] = [f"/{name}{i}/*"]
                    section[f"{name}{i}"] = c
            counts[".".join(path)] = len(section)
        elif isinstance(section, list):
            orig = list(section)
            for i in range(2, k + 1):
                for spec in orig:
                    c = copy.deepcopy(spec)
                    if isinstance(c, dict) and "name" in c:
                        c["name"] = f"{c['name']}{i}"
                    section.append(c)
            counts[".".join(path)] = len(section)
    return yaml.safe_dump(doc, sort_keys=False), counts


# --------------------------------------------------------------------------
# Report


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, "
            f"load average at start {load[0]:.1f}")


def tool_versions() -> str:
    def first(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return (p.stdout or p.stderr).strip().splitlines()[0]
        except Exception:
            return "absent"
    moto_v = first([sys.executable, "-c", "import moto; print('moto', moto.__version__)"])
    commit = first(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True,
                           text=True).stdout.strip()
    return f"infra {commit}{' (uncommitted changes)' if dirty else ''}, {moto_v}, Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs of apply / plan / destroy per tool (medians)")
    ap.add_argument("--skip-terraform", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--scales", default="1,5,10")
    ap.add_argument("--terraform-dir", help="the Terraform peer (default ../shared/peers/terraform)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--aws-clock", default="1/60", metavar="FACTOR",
                    help="the clock run's factor: AWS's durations times this (1/60: 15 min -> 15 s)")
    ap.add_argument("--skip-clock", action="store_true", help="leave out the run on AWS's clock")
    ap.add_argument("--clock-only", action="store_true",
                    help="only the run on AWS's clock; replaces only its section of --out")
    ap.add_argument("--infra", "--infra-bin", dest="infra_bin",
                    help="benchmark this infra binary instead of target/release/infra "
                                        "(implies --no-build for infra)")
    ap.add_argument("--measure-build", action="store_true",
                    help="also time two cold release builds (as is, and with opt-level overrides "
                         "for the aws-sdk-* crates) in fresh target dirs and compare their speed; slow")
    ap.add_argument("--sdk-opt-level", default="1", help="opt-level for --measure-build's override")
    ap.add_argument("--out", default=str(ROOT / "bench/RESULTS.md"))
    args = ap.parse_args()

    logdir = Path(tempfile.mkdtemp(prefix="infra-bench-logs-"))
    log(f"logs in {logdir}")
    started = dt.datetime.now().astimezone()
    md: list[str] = []
    notes: list[str] = []
    # (target, met? True / False / None = not measured / "check" = needs a look, numbers)
    targets: list[tuple[str, bool | None | str, str]] = []

    # ---- build
    # infra in release, as users get it. The proxy in the dev profile: an
    # example links the package's dev-dependencies, whose feature unification
    # would make a second release build of every AWS SDK crate; the debug
    # proxy (the one the tests use) forwards thousands of calls a second,
    # far above moto's ~110.
    build_line = ""
    cold_secs = None  # the main release build's time, when it built everything
    if not args.no_build and not args.infra_bin:
        cold = not (target_dir() / "release" / "infra").exists()
        log(f"cargo build --release --bin infra{' (cold)' if cold else ''}")
        secs = cargo(["build", "--release", "--bin", "infra"])
        cold_secs = secs if cold else None
        build_line = (f"`cargo build --release --bin infra`: {secs:.0f} s "
                      + ("(cold: every crate)" if cold else "(incremental: only what changed)"))
    if not args.no_build:
        log("cargo build --example proxy")
        cargo(["build", "--example", "proxy"])
    tdir = target_dir()
    infra = Path(args.infra_bin).resolve() if args.infra_bin else tdir / "release" / "infra"
    proxy_bin = tdir / "debug" / "examples" / "proxy"
    for b in (infra, proxy_bin):
        if not b.exists():
            raise SystemExit(f"{b} missing: run without --no-build")
    # A copy: the shared target directory may be rebuilt by someone else mid-run.
    shutil.copy2(infra, logdir / "infra")
    shutil.copy2(proxy_bin, logdir / "proxy")
    infra, proxy_bin = logdir / "infra", logdir / "proxy"

    if args.clock_only:
        moto = Moto(logdir)
        try:
            section = clock_section(args, infra, stack_workdir(), moto, proxy_bin, logdir)
        finally:
            moto.stop()
        text = clock_block(args, started, section)
        print(text)
        out = Path(args.out)
        old = out.read_text() if out.exists() else ""
        if CLOCK_BEGIN in old and CLOCK_END in old:
            new = old[:old.index(CLOCK_BEGIN)] + text + old[old.index(CLOCK_END) + len(CLOCK_END) + 1:]
        else:
            new = old.rstrip("\n") + "\n\n" + text
        out.write_text(new)
        log(f"clock run written to {args.out}; logs in {logdir}")
        return 0

    build_md: list[str] = []
    moto = Moto(logdir)
    proxy = Proxy(proxy_bin, moto.endpoint, logdir, "proxy")
    lat_proxy = None
    try:
        if args.measure_build:
            build_md = measure_build(args, logdir, moto, proxy, cold_secs, infra)

        # ---- infra: apply / plan / destroy
        work = stack_workdir()
        infra_runs: dict[str, list[Phase]] = {"apply": [], "plan": [], "destroy": []}
        for r in range(args.runs):
            log(f"infra run {r + 1}/{args.runs}")
            res = infra_cycle(infra, work, moto, proxy, logdir, f"infra-r{r + 1}")
            for k, v in res.items():
                infra_runs[k] += v
        failed = [p for ps in infra_runs.values() for p in ps if p.code != 0]
        if failed:
            notes.append("infra phases FAILED: " + ", ".join(f"{p.name} (exit {p.code})" for p in failed)
                         + f"; logs in {logdir}")
        moto.reset()
        # What the stack is: resources and kinds, from the plan of an empty account.
        plan0 = plan_json(infra, work, moto.endpoint)
        n_resources = len([c for c in plan0.get("changes", []) if c.get("action") == "create"])
        kinds = sorted({c["kind"] for c in plan0.get("changes", [])})
        read_kinds = managed_kinds() or kinds

        # ---- Terraform
        tf_runs: dict[str, list[Phase]] | None = None
        tf = None
        tf_dir = find_terraform_dir(args.terraform_dir)
        if args.skip_terraform:
            notes.append("Terraform skipped (--skip-terraform).")
        elif not shutil.which(os.environ.get("TF_BIN", "terraform")):
            notes.append("Terraform skipped: `terraform` is not on PATH.")
        elif not tf_dir:
            notes.append("Terraform skipped: ../shared/peers/terraform not found (--terraform-dir).")
        else:
            try:
                tf = Terraform(tf_dir, proxy.endpoint, logdir)
                tf_runs = {"apply": [], "plan": [], "destroy": []}
                for r in range(args.runs):
                    log(f"terraform run {r + 1}/{args.runs}")
                    res = tf.cycle(moto, proxy, logdir, f"terraform-r{r + 1}",
                                   lambda: fresh_moto(moto, infra, work))
                    for k, v in res.items():
                        tf_runs[k] += v
                bad = [p for ps in tf_runs.values() for p in ps if p.code != 0]
                if bad:
                    notes.append("Terraform phases failed: " + ", ".join(f"{p.name} (exit {p.code})" for p in bad))
            except Exception as e:  # noqa: BLE001 - reported, not hidden
                notes.append(f"Terraform failed to run: {e}")
                tf_runs = None

        # ---- main table
        md.append("## apply / no-op plan / destroy (medians)\n")
        stack_line = (f"Reference `stack.yaml`: {n_resources} resources of {len(kinds)} kinds ({', '.join(kinds)}); "
                      f"a plan reads the {len(read_kinds)} kinds infra manages.")
        like_for_like = True  # noqa: F841 - kept for the note below
        if tf is not None and tf_runs:
            tf_n = getattr(tf, "resources", None)
            stack_line += (f" Terraform peer: {tf_n if tf_n is not None else '?'} managed resources ({tf.version}; "
                           f"`terraform init` {tf.init_seconds:.1f} s, not counted).")
            if tf_n is not None and tf_n != n_resources:
                like_for_like = False
                notes.append(f"Resource counts differ ({n_resources} for infra, {tf_n} for Terraform) for the same "
                             "web stack: Terraform counts as separate resources what infra folds into their parent "
                             "resource (routes and route table associations, bucket versioning and public access "
                             "block, IAM policy attachments, API Gateway resources / methods / integrations, the "
                             "scaling policy); infra also publishes the site, which the Terraform peer does not.")
        md.append(stack_line)
        md.append("")
        md.append("| phase | infra wall | infra calls | emulator busy (sum) | Terraform wall | Terraform calls | Terraform / infra | target |")
        md.append("|---|---|---|---|---|---|---|---|")
        for ph in ("apply", "plan", "destroy"):
            ip = infra_runs[ph]
            iw, ic = median([p.wall for p in ip]), median([p.calls for p in ip])
            ib, isum = median([p.busy for p in ip]), median([p.upstream_sum for p in ip])
            label = "no-op plan" if ph == "plan" else ph
            if tf_runs:
                tw, tc = median([p.wall for p in tf_runs[ph]]), median([p.calls for p in tf_runs[ph]])
                ratio = tw / iw if iw > 0 else float("nan")
                ok = ratio >= TARGETS[ph]
                targets.append((f"{label}: Terraform / infra ≥ {TARGETS[ph]:.0f}×", ok,
                                f"{fmt_s(tw)} / {fmt_s(iw)} = {ratio:.1f}×"
                                ))
                md.append(f"| {label} | {fmt_s(iw)} | {ic:.0f} | {fmt_s(ib)} ({fmt_s(isum)}) | {fmt_s(tw)} | "
                          f"{tc:.0f} | {ratio:.1f}× | ≥ {TARGETS[ph]:.0f}× {verdict(ok)} |")
            else:
                targets.append((f"{label}: Terraform / infra ≥ {TARGETS[ph]:.0f}×", None,
                                "not measured: Terraform not run"))
                md.append(f"| {label} | {fmt_s(iw)} | {ic:.0f} | {fmt_s(ib)} ({fmt_s(isum)}) | – | – | – | "
                          f"≥ {TARGETS[ph]:.0f}× not measured |")
        md.append("")
        md.append(f"All runs (wall s): " + "; ".join(
            f"infra {ph} " + ", ".join(f"{p.wall:.2f}" for p in infra_runs[ph]) for ph in infra_runs)
            + ("; " + "; ".join(f"Terraform {ph} " + ", ".join(f"{p.wall:.1f}" for p in tf_runs[ph])
                                 for ph in tf_runs) if tf_runs else ""))
        md.append("")

        # no-op plan calls vs kinds
        plan_calls = infra_runs["plan"][len(infra_runs["plan"]) // 2] if infra_runs["plan"] else None
        if plan_calls:
            by = plan_calls.stats.get("by_service_action", {})
            md.append("### no-op plan: calls by action\n")
            md.append("| call | count |")
            md.append("|---|---|")
            for k, v in sorted(by.items(), key=lambda kv: (-kv[1], kv[0])):
                md.append(f"| `{k}` | {v} |")
            md.append("")
            extra = {k: v for k, v in by.items() if v > 1}
            ok = plan_calls.calls <= len(read_kinds)
            why = ("" if ok else
                   f"; {plan_calls.calls - len(read_kinds)} beyond one per kind: met only if those are sub-reads "
                   f"without a batch API (actions called more than once: "
                   f"{', '.join(f'{k} ×{v}' for k, v in sorted(extra.items())) or 'none'})")
            targets.append(("no-op plan calls ≤ one per resource kind (+ sub-reads with no batch API)",
                            True if ok else "check",
                            f"{plan_calls.calls} calls for {len(read_kinds)} kinds{why}"))

        # emulator time vs wall
        for ph in ("plan", "apply"):
            ps = infra_runs[ph]
            w, b = median([p.wall for p in ps]), median([p.busy for p in ps])
            ok = b > 0 and w <= 1.25 * b
            targets.append((f"{'no-op plan' if ph == 'plan' else 'apply'} wall ≤ 1.25 × emulator serving time",
                            ok, f"{fmt_s(w)} vs 1.25 × {fmt_s(b)} = {fmt_s(1.25 * b)} ({w / b if b else float('nan'):.2f}×)"))

        # ---- latency run
        if not args.skip_latency:
            lat_proxy = Proxy(proxy_bin, moto.endpoint, logdir, "proxy-latency", args.latency_ms)
            md += latency_section(args, infra, work, moto, lat_proxy, logdir, targets, notes)

        # ---- scale run
        if not args.skip_scale:
            md += scale_section(args, infra, moto, proxy, logdir, targets, notes)

        # ---- on AWS's clock
        clock_md: list[str] = []
        if not args.skip_clock:
            clock_md = clock_section(args, infra, work, moto, proxy_bin, logdir)
    finally:
        if lat_proxy:
            lat_proxy.stop()
        proxy.stop()
        moto.stop()

    # ---- assemble
    head = [
        "# Benchmark results",
        "",
        f"Produced by `bench/run.py --runs {args.runs}"
        + "".join(f" --{f.replace('_', '-')}" for f in ("skip_terraform", "skip_latency", "skip_scale", "skip_clock", "measure_build")
                  if getattr(args, f)) + f"` on {started:%Y-%m-%d %H:%M %Z}.",
        "",
        f"- Machine: {machine()}.",
        f"- Versions: {tool_versions()}.",
        "- One moto server for everything, reset (`POST /moto-api/reset`) before every apply; every call goes "
        "through the loopback proxy (`tools/proxy.rs`), which counts it and times the emulator.",
    ]
    if build_line:
        head.append(f"- Build: {build_line}.")
    head.append("")
    tgt = ["## Targets", "", "| target | status | numbers |", "|---|---|---|"]
    for name, ok, nums in targets:
        st = ("not measured" if ok is None else "**check** (see numbers)" if ok == "check"
              else verdict(bool(ok)))
        tgt.append(f"| {name} | {st} | {nums} |")
    tgt.append("")
    if notes:
        tgt += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    text = "\n".join(head + tgt + md + build_md) + "\n"
    if clock_md:
        text += "\n" + clock_block(args, started, clock_md)
    print(text)
    Path(args.out).write_text(text)
    log(f"written to {args.out}; logs in {logdir}")
    failed_phases = any("FAILED" in n for n in notes)
    return 1 if failed_phases else 0


#: Latency of the proxy the plan's round trips are counted through.
ROUND_TRIP_MS = 1000


def round_trip_ms(scale: int) -> int:
    """The counting proxy's latency for a stack `scale` times the reference."""
    return max(ROUND_TRIP_MS, 300 * scale)


def sequential_round_trips(calls: list[dict]) -> tuple[int, list[str]]:
    """The longest chain of `calls` in which each was sent after the one
    before it was answered (the proxy's arrival and answer times): an upper
    bound on the plan's round trips in sequence (a call is sent late only
    because it waited for another), exact when each round trip is much
    longer than the emulator's queue (see ROUND_TRIP_MS)."""
    cs = sorted(calls, key=lambda c: c["start"])
    best: list[tuple[int, int]] = []  # (length, predecessor index)
    for i, c in enumerate(cs):
        prev = [(best[j][0], j) for j in range(i) if cs[j]["end"] <= c["start"]]
        best.append((max(prev)[0] + 1, max(prev)[1]) if prev else (1, -1))
    if not best:
        return 0, []
    i = max(range(len(best)), key=lambda k: best[k][0])
    chain = []
    while i >= 0:
        chain.append(f"{cs[i]['service']}.{cs[i]['action'].split('?')[0][:40]}")
        i = best[i][1]
    return len(chain), chain[::-1]


def latency_section(args, infra: Path, work: Path, moto: Moto, proxy: Proxy, logdir: Path,
                    targets: list, notes: list) -> list[str]:
    lat = args.latency_ms / 1000
    log(f"latency run ({args.latency_ms} ms per call)")
    moto.reset()
    plan = plan_json(infra, work, moto.endpoint)  # direct, not through the slow proxy
    graph = dependency_graph(plan)
    # Round trips are counted on a plan through a third proxy adding a whole
    # second per call: at 100 ms, moto's own serving time (one process
    # answering ~100 calls, ~6 ms each) hides the latency and blurs the
    # rounds; at 1 s it is a small part of each round.
    slow = Proxy(proxy.binary, moto.endpoint, logdir, "proxy-round-trips", ROUND_TRIP_MS)
    try:
        res = infra_cycle(infra, work, moto, proxy, logdir, "latency", plans=max(1, args.runs), slow=slow)
    finally:
        slow.stop()
    slow_plan = res.pop("slow_plan")[0]
    apply_p = res["apply"][0]
    plan_w = median([p.wall for p in res["plan"]])
    md = ["## Latency run", "",
          f"A second proxy adds {args.latency_ms} ms to every call (same moto).", "",
          "| phase | wall | calls | wall / latency |", "|---|---|---|---|"]
    for ph, ps in res.items():
        w = median([p.wall for p in ps])
        md.append(f"| {'no-op plan' if ph == 'plan' else ph} | {fmt_s(w)} | {median([p.calls for p in ps]):.0f} | "
                  f"{w / lat:.1f} |")
    depth, chain = sequential_round_trips(slow_plan.calls_log)
    md.append("")
    md.append(f"No-op plan: **{depth} round trips in sequence**, counted on one more plan through a proxy adding "
              f"{ROUND_TRIP_MS / 1000:.0f} s to every call ({fmt_s(slow_plan.wall)} wall, {slow_plan.calls} calls): "
              f"the longest chain of calls each sent after the one before it was answered, "
              f"{' → '.join(chain)}. At {args.latency_ms} ms the plan's wall ({fmt_s(plan_w)}) is mostly the "
              f"emulator's serving time (busy {fmt_s(median([p.busy for p in res['plan']]))}).")
    md.append("")
    ok = depth <= 3
    targets.append(("no-op plan ≤ 3 round trips in sequence", ok,
                    f"{depth} ({' → '.join(chain)}; {fmt_s(slow_plan.wall)} at {ROUND_TRIP_MS / 1000:.0f} s per call); "
                    f"at {args.latency_ms} ms: {fmt_s(plan_w)} = {plan_w / lat:.1f} × latency"))

    # Critical path: the longest chain of dependent calls, times the latency.
    events = json_events(apply_p.stdout) if has_apply_json(infra) else None
    durations = events or step_seconds(apply_p.stdout)
    source = "`apply --json` events" if events else "the per-step durations of the plain apply output"
    if not durations or not graph:
        targets.append(("apply ≤ 1.25 × critical path", None,
                        "not measured: no per-step durations in infra's output"))
        return md
    # One call's round trip: the median duration of the apply's calls (latency + moto's time).
    per_call = median([c["end"] - c["start"] for c in apply_p.calls_log]) if apply_p.calls_log else lat
    calls = {a: max(1, round(d / per_call)) for a, d in durations.items()}
    chain_calls, chain = longest_chain(graph, {a: float(calls.get(a, 1)) for a in graph})
    # +1: the read of the live state before any step starts (one concurrent round).
    cp = (chain_calls + 1) * lat
    ok = apply_p.wall <= 1.25 * cp
    targets.append(("apply ≤ 1.25 × critical path", ok,
                    f"{fmt_s(apply_p.wall)} vs 1.25 × {fmt_s(cp)} = {fmt_s(1.25 * cp)} "
                    f"(critical path {chain_calls + 1:.0f} calls: 1 read round + {' → '.join(chain)}; "
                    f"calls per step estimated from {source})"))
    if not events:
        notes.append("The critical path's calls per step are estimated as round(step duration / median call "
                     "round trip) from the plain output (0.1 s resolution). Wire `infra apply --json` "
                     "(the executor's JSON-lines events exist: ops::execute(..., json) and PlainProgress) and emit "
                     "per-step call counts to make this exact.")
    return md


def scale_section(args, infra: Path, moto: Moto, proxy: Proxy, logdir: Path, targets: list,
                  notes: list) -> list[str]:
    base = (ROOT / "stack.yaml").read_text()
    rows = ["## Scale run", "",
            "Stacks generated from `stack.yaml` with its repeatable sections "
            f"({', '.join('.'.join(p) for p in REPEATABLE)}, where present) multiplied; "
            f"no-op plan median of {max(1, args.runs)} runs.", "",
            "| scale | entries | resources | apply | no-op plan | plan calls | plan: emulator busy | "
            "plan round trips in sequence | destroy |",
            "|---|---|---|---|---|---|---|---|---|"]
    plan_at: dict[int, float] = {}
    rounds_at: dict[int, int] = {}
    for k in [int(x) for x in args.scales.split(",")]:
        text, counts = scaled_stack(base, k)
        work = stack_workdir(text)
        log(f"scale {k}x")
        moto.reset()
        try:
            n = len([c for c in plan_json(infra, work, moto.endpoint).get("changes", [])])
        except subprocess.CalledProcessError as e:
            notes.append(f"scale {k}x: the generated stack does not plan: {e.stderr[-500:]}")
            continue
        # The round trip must outlast moto's queue, which grows with the
        # stack (at 10×, ~390 calls of ~8 ms each): 1 s at 1×, 3 s at 10×.
        slow = Proxy(proxy.binary, moto.endpoint, logdir, f"proxy-scale{k}-round-trips", round_trip_ms(k))
        try:
            res = infra_cycle(infra, work, moto, proxy, logdir, f"scale{k}", plans=max(1, args.runs), slow=slow)
        finally:
            slow.stop()
        rounds_at[k] = sequential_round_trips(res.pop("slow_plan")[0].calls_log)[0]
        pw = median([p.wall for p in res["plan"]])
        plan_at[k] = pw
        bad = [p.name for ps in res.values() for p in ps if p.code != 0]
        if bad:
            notes.append(f"scale {k}x FAILED: {', '.join(bad)} (logs in {logdir})")
        rows.append(f"| {k}× | {', '.join(f'{s}: {c}' for s, c in counts.items())} | {n} | "
                    f"{fmt_s(res['apply'][0].wall)} | {fmt_s(pw)} | {median([p.calls for p in res['plan']]):.0f} | "
                    f"{fmt_s(median([p.busy for p in res['plan']]))} | {rounds_at[k]} | "
                    f"{fmt_s(res['destroy'][0].wall)} |")
    rows.append("")
    ks = sorted(plan_at)
    if len(ks) >= 2:
        lo, hi = ks[0], ks[-1]
        ok = plan_at[hi] <= 2 * plan_at[lo]
        targets.append((f"no-op plan at {hi}× ≤ 2 × at {lo}×", ok,
                        f"{fmt_s(plan_at[hi])} vs 2 × {fmt_s(plan_at[lo])} = {fmt_s(2 * plan_at[lo])} "
                        f"({plan_at[hi] / plan_at[lo]:.2f}×); round trips in sequence {rounds_at[lo]} at {lo}×, "
                        f"{rounds_at[hi]} at {hi}×"))
        rows.append(f"On one emulator the plan's wall follows its calls (moto answers one at a time): the calls per "
                    f"resource that no batch read replaces grow with the stack. The round trips in sequence, what "
                    f"a plan waits for where calls are served side by side, are {rounds_at[lo]} at {lo}× and "
                    f"{rounds_at[hi]} at {hi}× (counted on one more plan through a proxy adding "
                    f"{round_trip_ms(lo) / 1000:g} s to {round_trip_ms(hi) / 1000:g} s to every call, longer than "
                    f"moto's queue).")
        rows.append("")
    return rows


# --------------------------------------------------------------------------
# On AWS's clock

CLOCK_BEGIN = "<!-- clock run: bench/run.py --clock-only replaces from here -->"
CLOCK_END = "<!-- end of the clock run -->"

# Terraform resource types -> the kinds the floor knows (infra's names).
TF_KINDS = {
    "aws_db_instance": "rds.db_instance", "aws_cloudfront_distribution": "cloudfront.distribution",
    "aws_lb": "elbv2.load_balancer", "aws_alb": "elbv2.load_balancer", "aws_nat_gateway": "ec2.nat_gateway",
    "aws_vpc_endpoint": "ec2.vpc_endpoint", "aws_lambda_function": "lambda.function",
    "aws_dynamodb_table": "dynamodb.table", "aws_subnet": "ec2.subnet", "aws_security_group": "ec2.security_group",
    "aws_db_subnet_group": "rds.db_subnet_group", "aws_internet_gateway": "ec2.internet_gateway",
    "aws_eip": "ec2.eip", "aws_vpc": "ec2.vpc",
}
# A dependent must wait for these attributes' resource to be ready (AWS has
# no database endpoint before the instance is available); every other
# reference needs only the resource's id / ARN / name, known at create.
READY_ATTRS = {"rds.db_instance": {"endpoint", "address", "port", "*"}}
# What AWS refuses to delete while something that used it is still going.
HELD_KINDS = {"ec2.subnet", "ec2.security_group", "rds.db_subnet_group", "ec2.internet_gateway", "ec2.eip"}
# Whose deletion both tools wait for to the end.
WAITED_GONE = {"rds.db_instance", "dynamodb.table", "ec2.nat_gateway"}


def parse_factor(s: str) -> float:
    a, _, b = s.partition("/")
    return float(a) / float(b) if b else float(a)


def ref_attrs(v, out: dict[str, set[str]]) -> None:
    """address -> the attributes referred to (`{"$ref": "address#attr"}`)."""
    if isinstance(v, dict):
        r = v.get("$ref")
        if isinstance(r, str) and len(v) == 1:
            addr, _, attr = r.partition("#")
            out.setdefault(addr, set()).add(attr or "*")
        for x in v.values():
            ref_attrs(x, out)
    elif isinstance(v, list):
        for x in v:
            ref_attrs(x, out)


def infra_nodes(plan: dict) -> dict[str, dict]:
    """The stack's resources for the floor, from `infra plan --json` of an empty account."""
    nodes = {}
    for c in plan.get("changes", []):
        d = c.get("desired")
        if not d:
            continue
        props = d.get("props") or {}
        refs: dict[str, set[str]] = {}
        ref_attrs(props, refs)
        for a in d.get("depends_on", []):
            refs.setdefault(a, set()).add("depends_on")  # order only: no attribute read
        nodes[c["address"]] = {
            "kind": c["kind"], "refs": refs,
            # Taken by an update after the create (late properties): the create does not wait.
            "late": set(c.get("fill_in_after", [])), "multi_az": bool(props.get("multi_az")),
            "vpc": bool(props.get("vpc_config")),
            "interface": str(props.get("endpoint_type", props.get("vpc_endpoint_type", ""))).lower() == "interface",
        }
    for n in nodes.values():
        n["refs"] = {a: at for a, at in n["refs"].items() if a in nodes}
    return nodes


def tf_nodes(state: dict) -> dict[str, dict]:
    """The Terraform peer's resources for the floor, from its state after apply
    (each resource's `dependencies`; instances of one resource are one node)."""
    nodes: dict[str, dict] = {}
    for r in state.get("resources", []):
        if r.get("mode") != "managed" or r.get("module"):
            continue
        addr = f"{r['type']}.{r['name']}"
        n = nodes.setdefault(addr, {"kind": TF_KINDS.get(r["type"], r["type"]), "refs": {},
                                    "multi_az": False, "vpc": False, "interface": False})
        for inst in r.get("instances", []):
            at = inst.get("attributes") or {}
            n["multi_az"] |= bool(at.get("multi_az"))
            vc = at.get("vpc_config") or []
            n["vpc"] |= any(v.get("subnet_ids") for v in vc if isinstance(v, dict))
            n["interface"] |= at.get("vpc_endpoint_type") == "Interface"
            for dep in inst.get("dependencies", []):
                # "aws_subnet.private" (no index); data sources are not waited for.
                if not dep.startswith("data."):
                    n["refs"].setdefault(dep, set()).add("*")
    for n in nodes.values():
        n["refs"] = {a: at for a, at in n["refs"].items() if a in nodes}
    return nodes


class Floor:
    """The least time any tool can take on the clock: the longest chain of
    unavoidable waits through the graph plus one round trip per step."""

    def __init__(self, durations: dict[str, float], factor: float):
        self.d, self.f = durations, factor

    def w(self, key: str) -> float:
        return self.d[key] * self.f

    def ready(self, n: dict) -> float:
        """The resource's own wait after its create call."""
        k = n["kind"]
        if k == "rds.db_instance":
            az = "multi_az" if n["multi_az"] else "single_az"
            return self.w(f"rds.{az}.creating") + self.w(f"rds.{az}.backing-up")
        return {
            "cloudfront.distribution": lambda: self.w("cloudfront.deploy"),
            "elbv2.load_balancer": lambda: self.w("elbv2.provisioning"),
            "ec2.nat_gateway": lambda: self.w("ec2.nat_gateway.pending"),
            "ec2.vpc_endpoint": lambda: self.w("ec2.vpc_endpoint.interface.pending" if n["interface"]
                                               else "ec2.vpc_endpoint.gateway.pending"),
            "lambda.function": lambda: self.w("lambda.vpc.pending" if n["vpc"] else "lambda.pending"),
            "dynamodb.table": lambda: self.w("dynamodb.creating"),
        }.get(k, lambda: 0.0)()

    def before_delete(self, n: dict) -> float:
        """A wait between the first call of a deletion and its last (a distribution's disable)."""
        return self.w("cloudfront.deploy") if n["kind"] == "cloudfront.distribution" else 0.0

    @staticmethod
    def early(n: dict) -> bool:
        """Whether the wait that ends the resource can start a destroy, before
        its dependants are deleted: a distribution's disable, a VPC function
        taken out of its VPC (no tool has to wait to send either)."""
        return n["kind"] == "cloudfront.distribution" or (n["kind"] == "lambda.function" and n["vpc"])

    def after_delete(self, n: dict) -> float:
        """How long after its delete call the resource still holds what it used."""
        if n["kind"] == "lambda.function":
            return self.w("lambda.vpc.eni_release") if n["vpc"] else 0.0
        key = {"rds.db_instance": "rds.deleting", "elbv2.load_balancer": "elbv2.eni_release",
               "ec2.nat_gateway": "ec2.nat_gateway.deleting", "dynamodb.table": "dynamodb.deleting"}.get(n["kind"])
        return self.w(key) if key else 0.0

    @staticmethod
    def needs_ready(dep: dict, attrs: set[str]) -> bool:
        want = READY_ATTRS.get(dep["kind"])
        return bool(want and attrs & want)

    def apply(self, nodes: dict, rt: float) -> tuple[float, list[str]]:
        done: dict[str, float] = {}
        via: dict[str, str | None] = {}

        def finish(a: str, seen: frozenset = frozenset()) -> float:
            if a in done:
                return done[a]
            start, prev = rt, None  # one round of reads first
            for dep, attrs in nodes[a]["refs"].items():
                if dep in seen or dep in nodes[a].get("late", ()):
                    continue
                t = finish(dep, seen | {a}) + (self.ready(nodes[dep]) if self.needs_ready(nodes[dep], attrs) else 0)
                if t > start:
                    start, prev = t, dep
            done[a], via[a] = start + rt, prev
            return done[a]

        ends = {a: finish(a) + self.ready(n) for a, n in nodes.items()}
        # A creation's late properties are filled in by one more call once
        # what they take from is ready.
        for a, n in nodes.items():
            for dep in n.get("late", ()):
                attrs = n["refs"].get(dep, set())
                t = max(finish(a), finish(dep) + (self.ready(nodes[dep]) if self.needs_ready(nodes[dep], attrs) else 0))
                key = f"{a} (filled in)"
                if t + rt > ends.get(key, 0):
                    ends[key], via[key] = t + rt, dep
        return self._result(ends, via, nodes, lambda a: self.ready(nodes[a]) if a in nodes else 0.0, "ready")

    def destroy(self, nodes: dict, rt: float) -> tuple[float, list[str]]:
        dependents: dict[str, list[str]] = {a: [] for a in nodes}
        for a, n in nodes.items():
            for dep in n["refs"]:
                dependents[dep].append(a)
        done: dict[str, float] = {}
        via: dict[str, str | None] = {}

        def finish(a: str, seen: frozenset = frozenset()) -> float:
            if a in done:
                return done[a]
            start, prev = rt, None
            for x in dependents[a]:
                if x in seen:
                    continue
                t = finish(x, seen | {a})
                if nodes[a]["kind"] in HELD_KINDS:
                    hold = self.after_delete(nodes[x])
                    # Released at the start (a VPC function taken out of its
                    # VPC by the first call), or held from its delete on.
                    t = max(t, rt + hold) if self.early(nodes[x]) else t + hold
                if t > start:
                    start, prev = t, x
            pre = self.before_delete(nodes[a])
            if pre and self.early(nodes[a]):
                # The disable is the first call; its deployment runs while
                # the dependants are deleted.
                done[a], via[a] = max(start, rt + pre) + rt, prev
            else:
                done[a], via[a] = start + rt + pre + (rt if pre else 0), prev
            return done[a]

        ends = {a: finish(a) + (self.after_delete(n) if n["kind"] in WAITED_GONE else 0) for a, n in nodes.items()}
        return self._result(ends, via, nodes,
                            lambda a: self.before_delete(nodes[a]) + self.after_delete(nodes[a]), "gone")

    @staticmethod
    def _result(ends, via, nodes, wait, _what) -> tuple[float, list[str]]:
        if not ends:
            return 0.0, []
        last = max(ends, key=lambda a: ends[a])
        chain, a = [], last
        while a is not None:
            w = wait(a)
            chain.append(f"{a} ({w:.1f} s)" if w >= 0.05 else a)
            a = via.get(a)
        return ends[last], list(reversed(chain))


def clock_section(args, infra: Path, work: Path, moto: Moto, proxy_bin: Path, logdir: Path) -> list[str]:
    factor = parse_factor(args.aws_clock)
    durations = json.loads(subprocess.run([str(proxy_bin), "--print-durations"], capture_output=True,
                                          text=True, check=True).stdout)
    floor = Floor(durations, factor)
    log(f"clock run (--aws-clock {args.aws_clock})")
    proxy = Proxy(proxy_bin, moto.endpoint, logdir, "proxy-clock", extra=["--aws-clock", args.aws_clock])
    rows: list[tuple] = []  # (tool, phase, Phase, floor, chain, note)
    notes: list[str] = []
    try:
        moto.reset()
        nodes = infra_nodes(plan_json(infra, work, moto.endpoint))
        help_apply = subprocess.run([str(infra), "apply", "--help"], capture_output=True, text=True).stdout
        help_destroy = subprocess.run([str(infra), "destroy", "--help"], capture_output=True, text=True).stdout
        apply_cmd = [str(infra), "apply", "--auto-approve"] + (["--wait"] if "--wait" in help_apply else [])
        destroy_cmd = [str(infra), "destroy", "--auto-approve"] + (
            ["--skip-final-backup"] if "--skip-final-backup" in help_destroy else [])
        fresh_moto(moto, infra, work)
        env = aws_env(proxy.endpoint)
        log("clock run: infra apply")
        a = timed(apply_cmd, work, env, proxy, "clock-infra-apply", logdir)
        log("clock run: infra destroy")
        d = timed(destroy_cmd, work, env, proxy, "clock-infra-destroy", logdir)
        for ph, p, fl in (("apply", a, floor.apply), ("destroy", d, floor.destroy)):
            rt = median([c["end"] - c["start"] for c in p.calls_log]) if p.calls_log else 0.0
            f, chain = fl(nodes, rt)
            steps = sorted(step_seconds(p.stdout).items(), key=lambda kv: -kv[1])[:3]
            rows.append(("infra", ph, p, f, chain, ", ".join(f"{k} {v:.1f} s" for k, v in steps)))
        infra_cmds = f"`{' '.join(['infra'] + apply_cmd[1:])}`, `{' '.join(['infra'] + destroy_cmd[1:])}`"

        tf_dir = find_terraform_dir(args.terraform_dir)
        if args.skip_terraform:
            notes.append("Terraform skipped (--skip-terraform).")
        elif not shutil.which(os.environ.get("TF_BIN", "terraform")) or not tf_dir:
            notes.append("Terraform skipped: `terraform` or the peer directory not found.")
        else:
            try:
                tf = Terraform(tf_dir, proxy.endpoint, logdir)
                fresh_moto(moto, infra, work)
                for f in ("terraform.tfstate", "terraform.tfstate.backup"):
                    (tf.dir / f).unlink(missing_ok=True)
                log("clock run: terraform apply")
                ta = timed([tf.tf, "apply", "-auto-approve", "-input=false", "-no-color", *tf.par], tf.dir,
                           tf.env, proxy, "clock-terraform-apply", logdir)
                state = json.loads((tf.dir / "terraform.tfstate").read_text())
                tnodes = tf_nodes(state)
                log("clock run: terraform destroy")
                td = timed([tf.tf, "destroy", "-auto-approve", "-input=false", "-no-color", *tf.par], tf.dir,
                           tf.env, proxy, "clock-terraform-destroy", logdir)
                for ph, p, fl in (("apply", ta, floor.apply), ("destroy", td, floor.destroy)):
                    rt = median([c["end"] - c["start"] for c in p.calls_log]) if p.calls_log else 0.0
                    f, chain = fl(tnodes, rt)
                    rows.append(("Terraform", ph, p, f, chain, ""))
            except Exception as e:  # noqa: BLE001 - reported, not hidden
                notes.append(f"Terraform failed to run on the clock: {e}")
    finally:
        proxy.stop()

    md = ["## On AWS's clock", "",
          f"A third proxy with `--aws-clock {args.aws_clock}` (every AWS duration × {factor:.4g}: a Multi-AZ "
          f"database's {durations['rds.multi_az.creating'] + durations['rds.multi_az.backing-up']:.0f} s become "
          f"{(durations['rds.multi_az.creating'] + durations['rds.multi_az.backing-up']) * factor:.1f} s; "
          "durations and their sources in [README.md](README.md#durations)), same moto, one run of each tool: "
          f"{infra_cmds}; `terraform apply`, `terraform destroy` (the peer waits for CloudFront's deployment "
          "and skips the final snapshot). **floor**: the longest chain of unavoidable waits through the "
          "stack's dependency graph plus one round trip (the run's median call time) per step "
          "([how](README.md#the-clock-run-and-its-floor)); each tool against its own stack's floor.", "",
          "| tool | phase | wall | floor | wall / floor | calls | refused by the clock | the chain that sets the floor |",
          "|---|---|---|---|---|---|---|---|"]
    for tool, ph, p, f, chain, _ in rows:
        refused = p.stats.get("clock_refused") or {}
        ref = ", ".join(f"{k} ×{v}" for k, v in sorted(refused.items())) or "none"
        ok = "" if p.code == 0 else f" (**exit {p.code}**)"
        md.append(f"| {tool} | {ph} | {fmt_s(p.wall)}{ok} | {fmt_s(f)} | {p.wall / f if f else float('nan'):.2f}× | "
                  f"{p.calls} | {ref} | {' → '.join(chain)} |")
    md.append("")
    by = {(t, ph): (p, f) for t, ph, p, f, _, _ in rows}
    for ph in ("apply", "destroy"):
        if ("infra", ph) in by and ("Terraform", ph) in by:
            (ip, i_f), (tp, t_f) = by[("infra", ph)], by[("Terraform", ph)]
            md.append(f"- {ph}: Terraform / infra = {tp.wall / ip.wall:.2f}× on the clock; above its floor, "
                      f"infra spends {ip.wall - i_f:.1f} s, Terraform {tp.wall - t_f:.1f} s.")
    for tool, ph, p, f, chain, steps in rows:
        if steps:
            md.append(f"- {tool} {ph}, longest steps: {steps}.")
    md.append("- The floors differ because the stacks do: infra's has a VPC function (its network interfaces "
              "hold the private subnets and a security group for "
              f"{durations['lambda.vpc.eni_release'] * factor:.0f} s after it is deleted) whose environment "
              "and role name the database's endpoint and secret (filled in by an update once the database is "
              "available: `fill_in_after` in the plan, so the API, stage and distribution do not wait for it), "
              "and a table index; the Terraform peer has neither.")
    md.append(f"- At this factor a tool's fixed poll intervals and start-up weigh {1 / factor:.0f}× more against "
              "AWS's waits than they would on AWS (Terraform's waiters poll every 10-30 s whatever the factor: "
              "the database every 10 s, the load balancer every 30 s in the call log), and so does its time on "
              "moto without any wait (the runs above): the ratios to the floor are an upper bound of what the "
              "same tool shows on AWS.")
    md += [f"- {n}" for n in notes]
    md.append("")
    return md


def clock_block(args, started, section: list[str]) -> str:
    head = [CLOCK_BEGIN, "",
            f"Produced by `bench/run.py{' --clock-only' if args.clock_only else ''} --aws-clock {args.aws_clock}"
            f"{' --infra ' + args.infra_bin if args.infra_bin else ''}` on {started:%Y-%m-%d %H:%M %Z}; "
            f"{machine()}; {tool_versions()}.", ""]
    return "\n".join(head + section + [CLOCK_END]) + "\n"


def measure_build(args, logdir: Path, moto: Moto, proxy: Proxy, cold_secs: float | None,
                  infra: Path) -> list[str]:
    """Cold release builds: as configured, and with `[profile.release.package.
    <aws-sdk-*>] opt-level` overrides (passed with --config, one per crate:
    profile overrides take no globs), each in a fresh target dir; then the
    speed of both binaries on the same apply / plan / destroy. When this
    invocation's own release build was cold, it is the "as is" build (one
    cold build less on a shared machine)."""
    rows = ["## Release build: opt-level override for the AWS SDK crates", ""]
    results = {}
    variants = [("as is", []), (f"aws-sdk-* opt-level={args.sdk_opt_level}", opt_override_args(args.sdk_opt_level))]
    for label, extra in variants:
        tdir = None
        if not extra and cold_secs is not None:
            secs, binary = cold_secs, infra
            log("cold release build (as is): this run's own build")
        else:
            tdir = Path(tempfile.mkdtemp(prefix="infra-bench-target-"))
            log(f"cold release build ({label}) into {tdir}")
            env = dict(os.environ, CARGO_TARGET_DIR=str(tdir))
            secs = cargo(["build", "--release", "--bin", "infra", *extra], env=env, quiet=True)
            binary = tdir / "release" / "infra"
        work = stack_workdir()
        runs = {"apply": [], "plan": [], "destroy": []}
        for r in range(args.runs):
            res = infra_cycle(binary, work, moto, proxy, logdir, f"build-{len(results)}-r{r}")
            for k, v in res.items():
                runs[k] += v
        results[label] = (secs, {k: median([p.wall for p in v]) for k, v in runs.items()},
                          binary.stat().st_size)
        if tdir:
            shutil.rmtree(tdir, ignore_errors=True)
    rows.append("| build | cold build | binary | apply | no-op plan | destroy |")
    rows.append("|---|---|---|---|---|---|")
    for label, (secs, w, size) in results.items():
        rows.append(f"| {label} | {secs:.0f} s | {size / 2**20:.0f} MiB | {fmt_s(w['apply'])} | "
                    f"{fmt_s(w['plan'])} | {fmt_s(w['destroy'])} |")
    rows.append("")
    (a_s, a_w, _), (b_s, b_w, _) = results.values()
    faster = b_s < a_s
    slower = any(b_w[k] > a_w[k] * 1.10 for k in a_w)
    rows.append(f"The override {'shortens' if faster else 'does not shorten'} the cold build "
                f"({b_s:.0f} s vs {a_s:.0f} s, {100 * (b_s - a_s) / a_s:+.0f} %) and "
                f"{'slows' if slower else 'does not slow'} the runs by more than 10 % "
                f"(apply {a_w['apply']:.2f} → {b_w['apply']:.2f} s, plan {a_w['plan']:.2f} → {b_w['plan']:.2f} s, "
                f"destroy {a_w['destroy']:.2f} → {b_w['destroy']:.2f} s). "
                "Both builds ran on the same, shared machine: compare them only with the load noted above.")
    rows.append("")
    return rows


if __name__ == "__main__":
    sys.exit(main())
