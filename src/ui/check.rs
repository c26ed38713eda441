//! The report of `infra check`: one line per check on a terminal, one JSON
//! document with `--json`.

use serde_json::json;

use super::Style;
use crate::engine::provider::Finding;

/// What `infra check` found, and how long it took to find it.
pub struct CheckReport<'a> {
    pub stack: &'a str,
    pub region: &'a str,
    pub findings: &'a [Finding],
    pub seconds: f64,
    /// Rounds run (failing checks are tried again until the deadline).
    pub rounds: u32,
}

impl CheckReport<'_> {
    pub fn failed(&self) -> usize {
        self.findings.iter().filter(|f| !f.ok).count()
    }
}

/// The table: status, resource, check, what was seen; then the verdict.
pub fn text(r: &CheckReport, st: Style) -> String {
    let width = |get: fn(&Finding) -> &str| r.findings.iter().map(|f| get(f).chars().count()).max().unwrap_or(0);
    let (wa, wc) = (width(|f| &f.address), width(|f| &f.check));
    let mut out = format!("Check of stack \"{}\" ({}):\n\n", r.stack, r.region);
    for f in r.findings {
        let mark = if f.ok { st.green("ok  ") } else { st.red("FAIL") };
        out.push_str(&format!("  {mark}  {:wa$}  {:wc$}  {}\n", f.address, f.check, st.dim(&f.detail)));
    }
    let failed = r.failed();
    let passed = r.findings.len() - failed;
    let took = format!("in {:.1}s, {} round(s)", r.seconds, r.rounds);
    out.push('\n');
    if failed == 0 {
        out.push_str(&st.green(&format!("All {passed} checks passed {took}.\n")));
    } else {
        out.push_str(&st.red(&format!("{failed} check(s) failed, {passed} passed {took}:\n")));
        for f in r.findings.iter().filter(|f| !f.ok) {
            out.push_str(&format!("  {} {}: {}\n", f.address, f.check, f.detail));
        }
    }
    out
}

pub fn json(r: &CheckReport) -> serde_json::Value {
    json!({
        "stack": r.stack,
        "region": r.region,
        "ok": r.failed() == 0,
        "passed": r.findings.len() - r.failed(),
        "failed": r.failed(),
        "seconds": (r.seconds * 10.0).round() / 10.0,
        "rounds": r.rounds,
        "checks": r.findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_named_in_the_verdict() {
        let findings = vec![
            Finding::new("backend.stage", "GET /api/orders", true, "200"),
            Finding::new("backend.stage", "POST /api/orders", false, "502: {\"message\": \"Internal server error\"}"),
        ];
        let r = CheckReport { stack: "shop", region: "us-east-1", findings: &findings, seconds: 3.04, rounds: 2 };
        let t = text(&r, Style { on: false });
        assert!(t.contains("  ok    backend.stage  GET /api/orders   200\n"), "{t}");
        assert!(t.contains("1 check(s) failed, 1 passed in 3.0s, 2 round(s):"), "{t}");
        assert!(
            t.ends_with("  backend.stage POST /api/orders: 502: {\"message\": \"Internal server error\"}\n"),
            "{t}"
        );
        let j = json(&r);
        assert_eq!(j["ok"], false);
        assert_eq!(j["checks"][1]["ok"], false);
    }
}
