//! Located errors about a stack file, rendered like a compiler's: the file,
//! line and column, the offending line with a marker, and what to do.

use codespan_reporting::diagnostic::{Diagnostic as Cs, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Config};

use crate::stack::yaml::{PathSeg, Span};

/// One problem in the file.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub message: String,
    pub span: Option<Span>,
    pub help: Option<String>,
}

/// Everything wrong with one file, with the text to show it against.
#[derive(Debug)]
pub struct Diagnostics {
    pub file: String,
    pub text: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Renders every diagnostic, in file order.
    pub fn render(&self) -> String {
        let file = SimpleFile::new(self.file.as_str(), self.text.as_str());
        let mut items = self.items.clone();
        items.sort_by_key(|d| d.span.map(|s| s.start).unwrap_or(0));
        let config = Config::default();
        let mut s = String::new();
        for d in &items {
            let mut cs = Cs::error().with_message(&d.message);
            let mut notes = Vec::new();
            if let Some(sp) = d.span {
                let start = sp.start.min(self.text.len());
                let end = sp.end.min(self.text.len()).max(start);
                cs = cs.with_labels(vec![Label::primary((), start..end)]);
            } else {
                notes.push(format!("in {}", self.file));
            }
            if let Some(h) = &d.help {
                notes.push(format!("help: {h}"));
            }
            cs = cs.with_notes(notes);
            match term::emit_into_string(&config, &file, &cs) {
                Ok(text) => s.push_str(&text),
                Err(_) => s.push_str(&format!("error: {}\n", d.message)),
            }
        }
        s.push_str(&format!("{} error{} in {}\n", items.len(), if items.len() == 1 { "" } else { "s" }, self.file));
        s
    }
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostics {}

/// Renders a path like `network.security_groups.web.ingress[0].port`.
pub fn path_string(path: &[PathSeg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathSeg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// An error found at a path of the (merged) document.
#[derive(Clone, Debug)]
pub struct PathError {
    pub path: Vec<PathSeg>,
    pub message: String,
    pub help: Option<String>,
    /// Point at the key rather than the value (unknown keys).
    pub at_key: bool,
}

impl PathError {
    pub fn new(path: Vec<PathSeg>, message: impl Into<String>) -> Self {
        PathError { path, message: message.into(), help: None, at_key: false }
    }
    pub fn help(mut self, h: impl Into<String>) -> Self {
        self.help = Some(h.into());
        self
    }
}
