//! Progress of an apply or destroy. On a terminal and without one alike, one
//! timestamped line per started and finished step, plus a "still creating X
//! (1m30s)" line every so often for long steps, never a flood. `--json`
//! emits the executor's events as JSON lines instead.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::executor::{Event, EventSink, Op};

use super::Style;

/// A running step: what it does, since when, and its latest status.
type Running = HashMap<String, (Op, Instant, Option<String>)>;

pub struct PlainProgress {
    style: Style,
    running: Mutex<Running>,
    json: bool,
}

impl PlainProgress {
    pub fn new(style: Style, json: bool) -> Arc<Self> {
        Arc::new(PlainProgress { style, running: Mutex::new(HashMap::new()), json })
    }

    fn line(&self, s: &str) {
        let now = time::OffsetDateTime::now_utc();
        let ts = format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} {s}", self.style.dim(&ts));
    }

    /// Prints a line for every step running longer than `after`; call periodically.
    pub fn tick(&self, after: Duration) {
        if self.json {
            return;
        }
        let running = self.running.lock().unwrap();
        let mut long: Vec<_> = running.iter().filter(|(_, (_, t, _))| t.elapsed() >= after).collect();
        long.sort_by_key(|(a, _)| a.to_string());
        for (addr, (op, t, status)) in long {
            let st = status.as_deref().map(|s| format!(": {s}")).unwrap_or_default();
            self.line(&format!("{addr}: still {} ({}){st}", op.progressive(), elapsed(t.elapsed())));
        }
    }
}

pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{:.1}s", d.as_secs_f64()) }
}

impl EventSink for PlainProgress {
    fn event(&self, e: Event) {
        if self.json {
            let mut v = serde_json::to_value(&e).unwrap_or_default();
            v["time"] = serde_json::Value::String(crate::engine::plan::now_rfc3339());
            println!("{v}");
            return;
        }
        let st = self.style;
        match e {
            Event::Started { address, op, .. } => {
                self.running.lock().unwrap().insert(address.clone(), (op, Instant::now(), None));
                self.line(&format!("{address}: {}...", op.progressive()));
            }
            Event::Status { address, text, .. } => {
                if let Some(r) = self.running.lock().unwrap().get_mut(&address) {
                    r.2 = Some(text);
                }
            }
            Event::Finished { address, op, seconds, note } => {
                self.running.lock().unwrap().remove(&address);
                let note = note.map(|n| format!(" [{n}]")).unwrap_or_default();
                self.line(&format!(
                    "{address}: {} {}{note}",
                    st.green(op.past()),
                    st.dim(&format!("({})", elapsed(Duration::from_secs_f64(seconds))))
                ));
            }
            Event::Failed { address, op, error, .. } => {
                self.running.lock().unwrap().remove(&address);
                self.line(&format!("{address}: {} {error}", st.red(&format!("{} failed:", op.progressive()))));
            }
            Event::Skipped { address, reason, .. } => {
                self.line(&format!("{address}: {} ({reason})", st.yellow("skipped")));
            }
        }
    }
}

/// The live view on a terminal: a line per running step with its elapsed
/// time, and a header with steps done and total elapsed. Finished steps
/// scroll above it as plain lines.
pub struct TtyProgress {
    multi: indicatif::MultiProgress,
    header: indicatif::ProgressBar,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
    style: Style,
}

impl TtyProgress {
    pub fn new(style: Style, total: usize) -> Arc<Self> {
        let multi = indicatif::MultiProgress::new();
        let header = multi.add(indicatif::ProgressBar::new(total as u64));
        header.set_style(
            indicatif::ProgressStyle::with_template("{pos}/{len} steps done, {elapsed} elapsed")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        header.enable_steady_tick(Duration::from_millis(500));
        Arc::new(TtyProgress { multi, header, bars: Mutex::new(HashMap::new()), style })
    }

    pub fn finish(&self) {
        self.header.finish_and_clear();
        for (_, b) in self.bars.lock().unwrap().drain() {
            b.finish_and_clear();
        }
    }
}

impl EventSink for TtyProgress {
    fn event(&self, e: Event) {
        let st = self.style;
        match e {
            Event::Started { address, op, .. } => {
                let b = self.multi.add(indicatif::ProgressBar::new_spinner());
                b.set_style(
                    indicatif::ProgressStyle::with_template("  {spinner} {prefix} ({elapsed}) {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                b.set_prefix(format!("{} {address}", op.progressive()));
                b.enable_steady_tick(Duration::from_millis(120));
                self.bars.lock().unwrap().insert(address, b);
            }
            Event::Status { address, text, .. } => {
                if let Some(b) = self.bars.lock().unwrap().get(&address) {
                    b.set_message(text);
                }
            }
            Event::Finished { address, op, seconds, note } => {
                if let Some(b) = self.bars.lock().unwrap().remove(&address) {
                    b.finish_and_clear();
                }
                self.header.inc(1);
                let note = note.map(|n| format!(" [{n}]")).unwrap_or_default();
                let _ = self.multi.println(format!(
                    "{address}: {} {}{note}",
                    st.green(op.past()),
                    st.dim(&format!("({})", elapsed(Duration::from_secs_f64(seconds))))
                ));
            }
            Event::Failed { address, op, error, .. } => {
                if let Some(b) = self.bars.lock().unwrap().remove(&address) {
                    b.finish_and_clear();
                }
                let _ = self
                    .multi
                    .println(format!("{address}: {} {error}", st.red(&format!("{} failed:", op.progressive()))));
            }
            Event::Skipped { address, reason, .. } => {
                let _ = self.multi.println(format!("{address}: {} ({reason})", st.yellow("skipped")));
            }
        }
    }
}
