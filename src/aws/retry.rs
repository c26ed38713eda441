//! Waiting and retrying the way AWS needs it: polling for a state (never a
//! fixed sleep), retrying while AWS is eventually consistent, and creates and
//! deletes that must not be repeated blindly after a lost answer.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::errors::{self, AwsError};
use crate::engine::provider::StepReporter;

/// The pause before the next poll of a state AWS reaches on its own (or the
/// next try of a call it refuses until then): a tenth of the time waited so
/// far, within `floor` and `cap`. A wait then overshoots its end by about a
/// tenth of its length (a table's 12 s creation by ~1 s, where a schedule
/// that grows by half at each poll overshoots by up to half), and a long
/// one polls every `cap`.
fn pause(start: Instant, floor: Duration, cap: Duration) -> Duration {
    (start.elapsed() / 10).clamp(floor, cap)
}

/// Polls `check` until it yields a value: first at once, then at growing
/// intervals ([`pause`]: never a fixed sleep), up to `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, rep: &dyn StepReporter, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_report: Option<Instant> = None;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            bail!("gave up waiting for {what} after {}s", timeout.as_secs());
        }
        if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            rep.status(&format!("waiting for {what}"));
            last_report = Some(Instant::now());
        }
        tokio::time::sleep(pause(start, Duration::from_millis(250), Duration::from_secs(5))).await;
    }
}

/// Retries `op` while it fails with one of `codes` (AWS's eventual
/// consistency: dependencies draining, just-created things not yet visible),
/// at growing intervals, up to `timeout`.
pub async fn retry_on<T, F, Fut>(
    codes: &[&str], what: &str, timeout: Duration, rep: &dyn StepReporter, mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, errors::AwsError>>,
{
    let start = Instant::now();
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if codes.iter().any(|c| e.code.as_deref() == Some(*c)) && start.elapsed() < timeout => {
                rep.status(&format!("{what}: {} (retrying)", e.code.as_deref().unwrap_or("")));
                tokio::time::sleep(pause(start, Duration::from_millis(250), Duration::from_secs(10))).await;
            }
            Err(e) => return Err(anyhow!(e).context(what.to_string())),
        }
    }
}

/// Retries `op` while `retry(err)` holds (eventual consistency that AWS
/// reports with a generic code and a specific message), at growing
/// intervals, up to `timeout`.
pub async fn retry_when<T, P, F, Fut>(
    retry: P, what: &str, timeout: Duration, rep: &dyn StepReporter, mut op: F,
) -> Result<T>
where
    P: Fn(&AwsError) -> bool,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let start = Instant::now();
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if retry(&e) && start.elapsed() < timeout => {
                rep.status(&format!("{what}: {} (retrying)", e.message));
                tokio::time::sleep(pause(start, Duration::from_millis(500), Duration::from_secs(10))).await;
            }
            Err(e) => return Err(anyhow!(e).context(what.to_string())),
        }
    }
}

/// Creates something whose create call is not idempotent on every endpoint
/// (no client token, or one an endpoint may ignore), with an SDK client whose
/// retries are off (`*_once`):
/// * a retryable failure (5xx, timeout, throttling) may have hidden a create
///   that happened: before trying again, `find` looks for the resource by its
///   tags (made in the same call), and a found one is the result;
/// * an `exists` error code (the name is taken) is a create whose answer was
///   lost, when `find` finds this address's resource; else an error that says
///   the name belongs to something else;
/// * a `wait` error code (a dependency not visible yet) is retried until
///   `timeout`.
pub async fn create_guarded<T, C, CF, F, FF>(
    what: &str, codes: Codes<'_>, rep: &dyn StepReporter, mut create: C, mut find: F,
) -> Result<T>
where
    C: FnMut() -> CF,
    CF: std::future::Future<Output = Result<T, errors::AwsError>>,
    F: FnMut() -> FF,
    FF: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let e = match create().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let code = e.code.as_deref().unwrap_or_default();
        if codes.exists.contains(&code) {
            return match find().await? {
                Some(found) => Ok(found),
                None => Err(anyhow!(e).context(format!(
                    "creating {what}: the name is taken by something this stack did not create; delete or rename it"
                ))),
            };
        }
        if codes.wait.contains(&code) && start.elapsed() < codes.timeout {
            rep.status(&format!("creating {what}: {code} (retrying)"));
        } else if !(e.retryable() && attempt < 8) {
            return Err(anyhow!(e).context(format!("creating {what}")));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
        if !e.throttled()
            && let Some(found) = find().await?
        {
            return Ok(found);
        }
    }
}

/// Deletes something whose delete may be answered with an error once it is
/// gone (some endpoints even answer a second delete with a 5xx), with a
/// client whose SDK retries are off: before each attempt `exists` reads it
/// (gone = done), so a delete whose answer was lost is never repeated
/// blindly. `busy` codes (in use, still being changed) are retried until
/// `timeout`; retryable failures (5xx, throttling, timeouts) a bounded number
/// of times.
pub async fn delete_guarded<E, EF, D, DF, T>(
    what: &str, busy: &[&str], timeout: Duration, rep: &dyn StepReporter, mut exists: E, mut delete: D,
) -> Result<()>
where
    E: FnMut() -> EF,
    EF: std::future::Future<Output = Result<Option<T>>>,
    D: FnMut(T) -> DF,
    DF: std::future::Future<Output = Result<(), errors::AwsError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(found) = exists().await? else {
            return Ok(());
        };
        // Busy: AWS frees it on its own clock (paced as a wait); a failed
        // call: backed off, a bounded number of times.
        let wait = match delete(found).await {
            Ok(()) => return Ok(()),
            Err(e) if e.not_found() => return Ok(()),
            Err(e) if busy.iter().any(|c| e.is(c)) && start.elapsed() < timeout => {
                rep.status(&format!("{what}: {} (retrying)", e.code.as_deref().unwrap_or_default()));
                pause(start, Duration::from_millis(250), Duration::from_secs(10))
            }
            Err(e) if e.retryable() && attempt < 8 => {
                delay = (delay * 3 / 2).min(Duration::from_secs(10));
                delay
            }
            Err(e) => return Err(anyhow!(e).context(what.to_string())),
        };
        tokio::time::sleep(wait).await;
    }
}

/// Error codes [`create_guarded`] treats specially.
#[derive(Clone, Copy, Default)]
pub struct Codes<'a> {
    /// The name is taken: maybe by an earlier attempt of this very create.
    pub exists: &'a [&'a str],
    /// A dependency is not visible yet: retried until `timeout`.
    pub wait: &'a [&'a str],
    pub timeout: Duration,
}

/// [`create_guarded`] without special codes.
pub async fn create_once<T, C, CF, F, FF>(what: &str, create: C, find: F) -> Result<T>
where
    C: FnMut() -> CF,
    CF: std::future::Future<Output = Result<T, errors::AwsError>>,
    F: FnMut() -> FF,
    FF: std::future::Future<Output = Result<Option<T>>>,
{
    create_guarded(what, Codes::default(), &crate::engine::provider::Quiet, create, find).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_is_a_tenth_of_the_wait_so_far_within_its_bounds() {
        let (floor, cap) = (Duration::from_millis(250), Duration::from_secs(5));
        let ago = |s: u64| Instant::now().checked_sub(Duration::from_secs(s)).expect("a monotonic clock this old");
        assert_eq!(pause(Instant::now(), floor, cap), floor);
        let at_30 = pause(ago(30), floor, cap);
        assert!(at_30 >= Duration::from_secs(3) && at_30 < Duration::from_millis(3100), "{at_30:?}");
        assert_eq!(pause(ago(100), floor, cap), cap);
    }
}
