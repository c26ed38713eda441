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

pub struct PlainProgress {
    style: Style,
    running: Mutex<HashMap<String, (Op, Instant, Option<String>)>>,
    done: Mutex<usize>,
    started: Instant,
    json: bool,
}

impl PlainProgress {
    pub fn new(style: Style, json: bool) -> Arc<Self> {
        Arc::new(PlainProgress {
            style,
            running: Mutex::new(HashMap::new()),
            done: Mutex::new(0),
            started: Instant::now(),
            json,
        })
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
        let mut long: Vec<_> = running
            .iter()
            .filter(|(_, (_, t, _))| t.elapsed() >= after)
            .collect();
        long.sort_by_key(|(a, _)| a.to_string());
        for (addr, (op, t, status)) in long {
            let st = status
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            self.line(&format!(
                "{addr}: still {} ({}){st}",
                op.progressive(),
                elapsed(t.elapsed())
            ));
        }
    }

    pub fn done(&self) -> usize {
        *self.done.lock().unwrap()
    }

    pub fn total_elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl EventSink for PlainProgress {
    fn event(&self, e: Event) {
        if self.json {
            let mut v = serde_json::to_value(&e).unwrap_or_default();
            v["time"] = serde_json::Value::String(crate::engine::plan::now_rfc3339());
            println!("{v}");
            if matches!(e, Event::Finished { .. }) {
                *self.done.lock().unwrap() += 1;
            }
            return;
        }
        let st = self.style;
        match e {
            Event::Started { address, op, .. } => {
                self.running
                    .lock()
                    .unwrap()
                    .insert(address.clone(), (op, Instant::now(), None));
                self.line(&format!("{address}: {}...", op.progressive()));
            }
            Event::Status { address, text, .. } => {
                if let Some(r) = self.running.lock().unwrap().get_mut(&address) {
                    r.2 = Some(text);
                }
            }
            Event::Finished {
                address,
                op,
                seconds,
                note,
            } => {
                self.running.lock().unwrap().remove(&address);
                *self.done.lock().unwrap() += 1;
                let note = note.map(|n| format!(" [{n}]")).unwrap_or_default();
                self.line(&format!(
                    "{address}: {} {}{note}",
                    st.green(op.past()),
                    st.dim(&format!("({})", elapsed(Duration::from_secs_f64(seconds))))
                ));
            }
            Event::Failed {
                address, op, error, ..
            } => {
                self.running.lock().unwrap().remove(&address);
                self.line(&format!(
                    "{address}: {} {error}",
                    st.red(&format!("{} failed:", op.progressive()))
                ));
            }
            Event::Skipped {
                address, reason, ..
            } => {
                self.line(&format!("{address}: {} ({reason})", st.yellow("skipped")));
            }
        }
    }
}
