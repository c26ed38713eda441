//! HTTP requests to what the stack serves (API stages, the site through
//! CloudFront), for `infra check`: the answer a user would get.
//!
//! The client takes the proxy from `HTTPS_PROXY`/`NO_PROXY` and trusts the
//! system's roots (`SSL_CERT_FILE` adds a CA), as the AWS CLI does, so a
//! check runs from behind a corporate proxy, and a test can put its own TLS
//! front before an emulator without the product knowing.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};

/// One request's bound: a stalled edge or a cold Lambda start is retried by
/// the check's own rounds, not waited for here.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of a body an answer keeps (errors are shown, pages are not).
const BODY_KEPT: usize = 2048;

/// An HTTP answer, as far as a check looks at it.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    /// The start of the body, as text.
    pub body: String,
}

impl Answer {
    /// `503 Service Unavailable: {"message": ...}` for a finding.
    pub fn summary(&self) -> String {
        let body: String = self.body.chars().take(120).collect::<String>().replace(['\n', '\r'], " ");
        if body.trim().is_empty() { format!("{}", self.status) } else { format!("{}: {}", self.status, body.trim()) }
    }
}

fn client() -> Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let built = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("infra-check/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .context("setting up the HTTP client")?;
    Ok(CLIENT.get_or_init(|| built))
}

/// Sends `method url` (with a JSON `body`, when given) and reads the answer.
pub async fn send(method: &str, url: &str, body: Option<&str>) -> Result<Answer> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).with_context(|| format!("bad method {method}"))?;
    let mut req = client()?.request(method, url);
    if let Some(b) = body {
        req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.to_string());
    }
    let resp = req.send().await.map_err(|e| anyhow::anyhow!("{}", chain(&e)))?;
    let status = resp.status().as_u16();
    let content_type =
        resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = resp.bytes().await.map_err(|e| anyhow::anyhow!("{}", chain(&e)))?;
    let kept = &bytes[..bytes.len().min(BODY_KEPT)];
    Ok(Answer { status, content_type, body: String::from_utf8_lossy(kept).into_owned() })
}

/// reqwest's error with its causes ("error sending request: connection
/// refused"), on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// A route's path with each `{param}` (and `{proxy+}`) filled with a
/// placeholder no real id looks like: a probe never touches real data.
pub fn probe_path(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') && seg.ends_with('}') { "infra-check-probe" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_become_a_placeholder() {
        assert_eq!(probe_path("/api/orders/{id}"), "/api/orders/infra-check-probe");
        assert_eq!(probe_path("/api/{proxy+}"), "/api/infra-check-probe");
        assert_eq!(probe_path("/api/orders"), "/api/orders");
    }

    #[test]
    fn a_summary_is_one_short_line() {
        let a = Answer { status: 502, content_type: String::new(), body: "{\"message\":\n \"Internal\"}".into() };
        assert_eq!(a.summary(), "502: {\"message\":  \"Internal\"}");
        let empty = Answer { status: 200, content_type: String::new(), body: String::new() };
        assert_eq!(empty.summary(), "200");
    }
}
