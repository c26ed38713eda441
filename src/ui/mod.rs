//! Everything the user sees: plan rendering, progress, colours.

pub mod check;
pub mod graph;
pub mod line_diff;
pub mod progress;
pub mod render;

use std::io::IsTerminal;

/// Whether to colour output on stdout.
pub fn color_enabled(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// ANSI styling that disappears when colour is off.
#[derive(Clone, Copy)]
pub struct Style {
    pub on: bool,
}

impl Style {
    fn wrap(self, code: &str, s: &str) -> String {
        if self.on { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
    pub fn green(self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub fn yellow(self, s: &str) -> String {
        self.wrap("33", s)
    }
    pub fn red(self, s: &str) -> String {
        self.wrap("31", s)
    }
    pub fn magenta(self, s: &str) -> String {
        self.wrap("35", s)
    }
    pub fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }
    pub fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
}
