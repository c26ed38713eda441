//! Bounded, located, panic-free loading of `stack.yaml`.
//!
//! `saphyr-parser` turns text into a stream of YAML events, and that is all it does. A config
//! loader needs more than that, so this module adds:
//!
//! * limits on size, nesting depth and node count. Alias expansion counts towards the node
//!   limit before anything is copied, so an alias bomb ("billion laughs") fails fast and uses
//!   little memory;
//! * errors that no YAML parser reports: duplicate keys, several documents, non-scalar keys,
//!   unsupported tags, binary or non-UTF-8 input, and tabs used as indentation;
//! * a [`Node`] tree where every value carries a [`Span`], so later validation can report
//!   `file:line:column`;
//! * YAML 1.2 core-schema resolution of plain scalars, and merge keys (`<<`);
//! * a guarantee that no input panics.
//!
//! Every [`YamlError`] has a span pointing at the offending place and a `help` line.

use std::collections::{HashMap, HashSet};
use std::fmt;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};

/// Byte range and human position (1-based line and column, column counted in chars) of a node.
///
/// `start`/`end` are byte offsets into the source (`end` exclusive). `line`/`col` give the
/// position of `start`. A UTF-8 byte order mark at the start of the file is not counted as a
/// column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// 1-based column of `start`, in chars.
    pub col: usize,
}

/// A YAML value. Scalars are already resolved to their type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~`, an empty value, or `!!null`.
    Null,
    /// `true`/`false` (also `True`, `TRUE`, ...).
    Bool(bool),
    /// A decimal, `0x` hexadecimal or `0o` octal integer that fits in an `i64`.
    Int(i64),
    /// A float, including `.inf`, `-.inf`, `.nan`, and decimal integers too large for `i64`.
    Float(f64),
    /// Any other scalar, and every quoted or block (`|`, `>`) scalar.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order. Keys are always scalars and unique (see [`key_text`]).
    Map(Vec<(Node, Node)>),
}

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value is in the source. For an alias (`*name`) this is the alias itself,
    /// while the nodes inside the copied value keep the spans of the anchored original.
    pub span: Span,
}

/// A located error with a hint for the user.
#[derive(Clone, Debug)]
pub struct YamlError {
    /// What is wrong, in one line.
    pub message: String,
    /// Where it is wrong.
    pub span: Span,
    /// What to do about it.
    pub help: Option<String>,
}

impl YamlError {
    fn new(message: impl Into<String>, span: Span, help: impl Into<String>) -> Self {
        YamlError { message: message.into(), span, help: Some(help.into()) }
    }
}

/// `line:col: message`; prefix it with the file name to get `file:line:col: message`.
impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.span.line, self.span.col, self.message)
    }
}

impl std::error::Error for YamlError {}

/// Resource limits for [`parse`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of collections (the root collection is depth 1).
    /// Keep this small: dropping or walking a [`Node`] recurses once per level.
    pub max_depth: usize,
    /// Most nodes (keys, values and items) in the document. Each alias counts the full size of
    /// the value it copies, and an anchored value also counts once more for the copy kept to
    /// expand later aliases.
    pub max_nodes: usize,
}

impl Default for Limits {
    /// 1 MiB, depth 64, 100 000 nodes.
    fn default() -> Self {
        Limits { max_bytes: 1 << 20, max_depth: 64, max_nodes: 100_000 }
    }
}

/// One step of a path into a [`Node`] tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSeg {
    /// A mapping key, compared with [`key_text`] of the keys.
    Key(String),
    /// A sequence index.
    Index(usize),
}

impl From<&str> for PathSeg {
    fn from(key: &str) -> Self {
        PathSeg::Key(key.to_owned())
    }
}

impl From<usize> for PathSeg {
    fn from(index: usize) -> Self {
        PathSeg::Index(index)
    }
}

/// Parses one YAML document from `src`, enforcing `limits`.
///
/// An empty document (empty file, or only comments) gives a `Value::Null` root at 1:1.
///
/// # Errors
/// Returns a located [`YamlError`] for anything invalid or over a limit (see the module docs).
pub fn parse(src: &[u8], limits: &Limits) -> Result<Node, YamlError> {
    // Belt and braces: the parser crate is not ours, and an input that panics it must still be
    // reported as an error, not crash the CLI.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_unguarded(src, limits))).unwrap_or_else(|_| {
        Err(YamlError::new(
            "the YAML parser failed on this file",
            first_char_span(src),
            "this is a bug in the YAML parser; simplify the file around recent changes",
        ))
    })
}

fn parse_unguarded(src: &[u8], limits: &Limits) -> Result<Node, YamlError> {
    if src.len() > limits.max_bytes {
        return Err(YamlError::new(
            format!("file is {} bytes, limit is {}", src.len(), limits.max_bytes),
            first_char_span(src),
            "check that this is the right file; configuration files are expected to be small",
        ));
    }
    let text = check_text(src)?;
    Builder::new(text, limits).run()
}

const BOM: &str = "\u{feff}";

fn first_char_span(src: &[u8]) -> Span {
    Span { start: 0, end: src.len().min(1), line: 1, col: 1 }
}

/// Rejects binary (C0 control characters other than tab, LF, CR) and invalid UTF-8 input,
/// whichever comes first.
fn check_text(src: &[u8]) -> Result<&str, YamlError> {
    let control = src.iter().position(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'));
    let utf8 = std::str::from_utf8(src);
    let bad_utf8 = utf8.as_ref().err().map(std::str::Utf8Error::valid_up_to);
    match (control, bad_utf8) {
        (Some(c), u) if u.is_none_or(|u| c < u) => {
            let what =
                if src[c] == 0 { "a NUL byte".to_owned() } else { format!("the control character U+{:04X}", src[c]) };
            Err(YamlError::new(
                format!("file contains {what}; it looks binary, not YAML text"),
                locate(src, c),
                "check that this is the right file, and remove the control character",
            ))
        }
        (_, Some(u)) => Err(YamlError::new(
            format!("file is not valid UTF-8 (byte 0x{:02X})", src[u]),
            locate(src, u),
            "save the file as UTF-8",
        )),
        _ => Ok(utf8.unwrap_or_default()),
    }
}

/// Line and column of byte `pos`, counted like the parser does: `\n`, `\r\n` and a lone `\r`
/// end a line, columns count chars, and a leading byte order mark is not a column.
/// `src[..pos]` must be valid UTF-8.
fn locate(src: &[u8], pos: usize) -> Span {
    let mut line = 1;
    let mut col = 1;
    let first = if src.starts_with(BOM.as_bytes()) { 3 } else { 0 };
    for i in first..pos.min(src.len()) {
        match src[i] {
            b'\n' => (line, col) = (line + 1, 1),
            b'\r' if src.get(i + 1) != Some(&b'\n') => (line, col) = (line + 1, 1),
            b'\r' => {}
            b if b & 0xC0 != 0x80 => col += 1,
            _ => {}
        }
    }
    let end = src.len().min(pos + 1);
    Span { start: pos, end: end.max(pos), line, col }
}

/// The source text, with a char-index to byte-offset table (the parser counts chars).
struct Source<'a> {
    text: &'a str,
    /// Byte offset of every char; empty for ASCII text, where they are equal.
    char_starts: Vec<usize>,
    /// Length of a leading byte order mark, 0 or 3.
    bom: usize,
    /// Byte offset where each line starts (line breaks as [`locate`] counts them).
    /// Line and column come from these, not from the scanner's markers, which
    /// can name a line past the last one at the end of the input.
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        let char_starts = if text.is_ascii() { Vec::new() } else { text.char_indices().map(|(i, _)| i).collect() };
        let bom = if text.starts_with(BOM) { BOM.len() } else { 0 };
        let bytes = text.as_bytes();
        let mut line_starts = vec![bom];
        for (i, &b) in bytes.iter().enumerate().skip(bom) {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                line_starts.push(i + 1);
            }
        }
        Source { text, char_starts, bom, line_starts }
    }

    /// 1-based line and column (in chars) of byte offset `pos`.
    fn line_col(&self, pos: usize) -> (usize, usize) {
        let pos = pos.clamp(self.bom, self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= pos).max(1);
        let start = self.line_starts[line - 1];
        let col = 1 + self.text.as_bytes()[start..pos].iter().filter(|&&b| b & 0xC0 != 0x80 && b != b'\r').count();
        (line, col)
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.char_starts.is_empty() {
            char_index.min(self.text.len())
        } else {
            self.char_starts.get(char_index).copied().unwrap_or(self.text.len())
        }
    }

    fn span(&self, span: saphyr_parser::Span) -> Span {
        let start = self.byte(span.start.index());
        let (line, col) = self.line_col(start);
        Span { start, end: self.byte(span.end.index()).max(start), line, col }
    }

    /// A span covering the char at `marker` (empty at the end of the input).
    fn point(&self, marker: Marker) -> Span {
        let start = self.byte(marker.index());
        let len = self.text[start..].chars().next().map_or(0, char::len_utf8);
        let (line, col) = self.line_col(start);
        Span { start, end: start + len, line, col }
    }

    /// A span covering the char at byte `pos`.
    fn at_byte(&self, pos: usize) -> Span {
        locate(self.text.as_bytes(), pos)
    }

    /// Whether a collection starting at `span` is a flow collection (`[` or `{`). Block
    /// collections have empty spans, or spans ending in whitespace after a tag or anchor.
    fn opens_flow(&self, span: Span) -> bool {
        span.end > span.start && matches!(self.text.as_bytes()[span.end - 1], b'[' | b'{')
    }

    /// The name of the alias `*name` at byte `pos`.
    fn alias_name(&self, pos: usize) -> &'a str {
        let rest = self.text.get(pos..).unwrap_or_default();
        let rest = rest.strip_prefix('*').unwrap_or(rest);
        let end = rest.find(|c: char| c.is_whitespace() || ",[]{}".contains(c)).unwrap_or(rest.len());
        &rest[..end]
    }

    /// If only blanks precede byte `pos` on its line and they include a tab, the first tab.
    fn indent_tab(&self, pos: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let mut i = pos.min(bytes.len());
        let mut tab = None;
        while i > self.bom && matches!(bytes[i - 1], b' ' | b'\t') {
            i -= 1;
            if bytes[i] == b'\t' {
                tab = Some(i);
            }
        }
        let line_start = i <= self.bom || matches!(bytes[i - 1], b'\n' | b'\r');
        tab.filter(|_| line_start)
    }

    /// Where a tab-related parser error really is: the parser often reports the end of the
    /// previous scalar. Looks at the indentation of the error's line, then (if `follow`) of
    /// the following lines up to the first one with content.
    fn find_indent_tab(&self, pos: usize, follow: bool) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let mut line_start =
            bytes[..pos.min(bytes.len())].iter().rposition(|&b| b == b'\n' || b == b'\r').map_or(self.bom, |i| i + 1);
        let mut first_line = true;
        while line_start < bytes.len() {
            let line_end = bytes[line_start..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .map_or(bytes.len(), |i| line_start + i);
            let line = &bytes[line_start..line_end];
            let blanks = line.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
            if let Some(tab) = line[..blanks].iter().position(|&b| b == b'\t') {
                return Some(line_start + tab);
            }
            let has_content = blanks < line.len() && line[blanks] != b'#';
            if !follow || (has_content && !first_line) {
                break;
            }
            first_line = false;
            line_start = line_end + 1;
        }
        None
    }
}

/// A finished node with what the limits need to know about it.
struct Built {
    node: Node,
    /// Number of nodes in the subtree.
    size: usize,
    /// Collection nesting inside the subtree (0 for a scalar).
    height: usize,
}

/// A collection being built.
struct Frame {
    kind: FrameKind,
    span: Span,
    anchor: usize,
    /// This collection or an enclosing one is a flow collection.
    flow: bool,
    size: usize,
    height: usize,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map(MapFrame),
}

#[derive(Default)]
struct MapFrame {
    entries: Vec<(Node, Node)>,
    /// The key waiting for its value, and whether it is a merge key (`<<`).
    pending_key: Option<(Node, bool)>,
    /// Key text -> line of its first occurrence.
    seen: HashMap<String, usize>,
    /// Indexes in `entries` of merge-key entries.
    merges: Vec<usize>,
}

impl MapFrame {
    fn push(&mut self, node: Node, merge_key: bool) -> Result<(), YamlError> {
        let Some((key, is_merge)) = self.pending_key.take() else {
            let Some(text) = key_text(&node.value) else {
                let kind = if matches!(node.value, Value::Seq(_)) { "a list" } else { "a mapping" };
                return Err(YamlError::new(
                    format!("a mapping key must be a single value, not {kind}"),
                    node.span,
                    "use a plain string as the key",
                ));
            };
            if let Some(first) = self.seen.get(&text) {
                return Err(YamlError::new(
                    format!("duplicate key `{}` (first defined on line {first})", shorten(&text)),
                    node.span,
                    "remove one of the two entries, or rename one of the keys",
                ));
            }
            self.seen.insert(text, node.span.line);
            self.pending_key = Some((node, merge_key));
            return Ok(());
        };
        if is_merge {
            let bad = match &node.value {
                Value::Map(_) => None,
                Value::Seq(items) => items.iter().find(|n| !matches!(n.value, Value::Map(_))),
                _ => Some(&node),
            };
            if let Some(bad) = bad {
                return Err(YamlError::new(
                    "the merge key `<<` expects a mapping or a list of mappings",
                    bad.span,
                    "write `<<: *name` or `<<: [*a, *b]` where the anchors are mappings",
                ));
            }
            self.merges.push(self.entries.len());
        }
        self.entries.push((key, node));
        Ok(())
    }

    /// The final entries: merge-key entries are replaced by the merged mappings' entries whose
    /// keys are not written explicitly (earlier merged mappings win over later ones).
    fn into_entries(self) -> Vec<(Node, Node)> {
        if self.merges.is_empty() {
            return self.entries;
        }
        let mut taken: HashSet<String> = self.seen.into_keys().collect();
        let mut out = Vec::with_capacity(self.entries.len());
        for (i, (key, value)) in self.entries.into_iter().enumerate() {
            if !self.merges.contains(&i) {
                out.push((key, value));
                continue;
            }
            let sources = match value.value {
                Value::Seq(items) => items,
                other => vec![Node { value: other, span: value.span }],
            };
            for source in sources {
                let Value::Map(pairs) = source.value else {
                    continue;
                };
                for (k, v) in pairs {
                    if key_text(&k.value).is_some_and(|t| taken.insert(t)) {
                        out.push((k, v));
                    }
                }
            }
        }
        out
    }
}

/// Turns parser events into a [`Node`] tree without recursion.
struct Builder<'a> {
    src: Source<'a>,
    limits: &'a Limits,
    stack: Vec<Frame>,
    /// Finished anchored nodes by parser anchor id.
    anchors: HashMap<usize, Built>,
    nodes: usize,
    documents: usize,
    root: Option<Node>,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str, limits: &'a Limits) -> Self {
        Builder {
            src: Source::new(text),
            limits,
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            documents: 0,
            root: None,
        }
    }

    fn run(mut self) -> Result<Node, YamlError> {
        let mut parser = Parser::new_from_str(self.src.text);
        while let Some(next) = parser.next_event() {
            let (event, raw_span) = next.map_err(|e| self.scan_error(&e))?;
            let span = self.src.span(raw_span);
            match event {
                Event::DocumentStart(_) => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(YamlError::new(
                            "one YAML document expected, found a second one",
                            span,
                            "remove this `---` and everything after it, or merge the documents",
                        ));
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    if !matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
                        self.check_indent(span)?;
                    }
                    self.count(1, span)?;
                    let merge_key = text == "<<" && style == ScalarStyle::Plain && tag.is_none();
                    let value = resolve_scalar(&text, style, tag.as_deref(), span)?;
                    self.finish(Node { value, span }, anchor, 1, 0, merge_key)?;
                }
                Event::SequenceStart(anchor, tag) => {
                    self.open(span, anchor, tag.as_deref(), false)?;
                }
                Event::MappingStart(anchor, tag) => {
                    self.open(span, anchor, tag.as_deref(), true)?;
                }
                Event::SequenceEnd | Event::MappingEnd => self.close(span)?,
                Event::Alias(id) => self.alias(id, span)?,
                Event::StreamEnd => break,
                Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            }
        }
        Ok(self.root.unwrap_or(Node { value: Value::Null, span: Span { line: 1, col: 1, ..Span::default() } }))
    }

    fn in_flow(&self) -> bool {
        self.stack.last().is_some_and(|f| f.flow)
    }

    /// Rejects a block-context node indented with tabs (the parser accepts some such lines).
    fn check_indent(&self, span: Span) -> Result<(), YamlError> {
        match self.src.indent_tab(span.start) {
            Some(tab) if !self.in_flow() => Err(tab_error(self.src.at_byte(tab))),
            _ => Ok(()),
        }
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(YamlError::new(
                format!("document has more than {} values (keys, values and list items)", self.limits.max_nodes),
                span,
                "split the file, or reduce the use of anchors and aliases",
            ));
        }
        Ok(())
    }

    fn depth_error(&self, span: Span) -> YamlError {
        YamlError::new(
            format!("nesting is too deep (more than {} levels)", self.limits.max_depth),
            span,
            "flatten this value; configuration is not expected to nest this deeply",
        )
    }

    fn open(&mut self, span: Span, anchor: usize, tag: Option<&Tag>, is_map: bool) -> Result<(), YamlError> {
        if let Some(tag) = tag {
            let expected = if is_map { "map" } else { "seq" };
            match core_tag(tag) {
                Some(name) if name == expected || name == "!" => {}
                Some(_) => {
                    let kind = if is_map { "a mapping" } else { "a list" };
                    return Err(YamlError::new(
                        format!("tag `{}` cannot be used on {kind}", tag_text(tag)),
                        span,
                        "remove the tag",
                    ));
                }
                None => return Err(unsupported_tag(tag, span)),
            }
        }
        self.check_indent(span)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.depth_error(span));
        }
        self.count(1, span)?;
        let kind = if is_map { FrameKind::Map(MapFrame::default()) } else { FrameKind::Seq(Vec::new()) };
        self.stack.push(Frame {
            kind,
            span,
            anchor,
            flow: self.in_flow() || self.src.opens_flow(span),
            size: 1,
            height: 0,
        });
        Ok(())
    }

    fn close(&mut self, end: Span) -> Result<(), YamlError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let mut span = frame.span;
        // Flow collections end at their bracket; block ones at their last child.
        if end.end > end.start {
            span.end = span.end.max(end.end);
        }
        let value = match frame.kind {
            FrameKind::Seq(items) => Value::Seq(items),
            FrameKind::Map(map) => Value::Map(map.into_entries()),
        };
        self.finish(Node { value, span }, frame.anchor, frame.size, frame.height + 1, false)
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), YamlError> {
        self.check_indent(span)?;
        let name = self.src.alias_name(span.start);
        let Some(target) = self.anchors.get(&id) else {
            return Err(YamlError::new(
                format!("alias `*{name}` is used inside the value it refers to"),
                span,
                "an alias cannot refer to its own enclosing value; restructure the data",
            ));
        };
        let (size, height) = (target.size, target.height);
        if self.stack.len() + height > self.limits.max_depth {
            return Err(self.depth_error(span));
        }
        // Count before copying: this is what stops alias bombs.
        if self.nodes.saturating_add(size) > self.limits.max_nodes {
            return Err(YamlError::new(
                format!("expanding alias `*{name}` would exceed the limit of {} values", self.limits.max_nodes),
                span,
                "aliases copy their value each time they are used; use fewer or smaller aliases",
            ));
        }
        self.nodes += size;
        let mut node = target.node.clone();
        node.span = span;
        self.push_child(node, size, height, false)
    }

    fn finish(
        &mut self, node: Node, anchor: usize, size: usize, height: usize, merge_key: bool,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            // The kept copy counts too, so anchors cannot double memory past the limit.
            self.count(size, node.span)?;
            let built = Built { node: node.clone(), size, height };
            self.anchors.insert(anchor, built);
        }
        self.push_child(node, size, height, merge_key)
    }

    fn push_child(&mut self, node: Node, size: usize, height: usize, merge_key: bool) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.size = frame.size.saturating_add(size);
        frame.height = frame.height.max(height);
        frame.span.end = frame.span.end.max(node.span.end);
        match &mut frame.kind {
            FrameKind::Seq(items) => {
                items.push(node);
                Ok(())
            }
            FrameKind::Map(map) => map.push(node, merge_key),
        }
    }

    /// Maps a parser error to a located, explained error.
    fn scan_error(&self, e: &ScanError) -> YamlError {
        let info = e.info();
        let at = self.src.point(*e.marker());
        if info.contains("recursion limit exceeded") {
            return self.flow_depth_error(at);
        }
        if info.contains("unknown anchor") {
            let name = self.src.alias_name(at.start);
            return YamlError::new(
                format!("unknown alias `*{name}`"),
                at,
                format!("define the anchor with `&{name}` before using `*{name}`"),
            );
        }
        if info.contains("tab") {
            let tab = self.src.find_indent_tab(at.start, true);
            return tab_error(tab.map_or(at, |t| self.src.at_byte(t)));
        }
        // Other errors on a line indented with a tab are most likely caused by it.
        if let Some(tab) = self.src.find_indent_tab(at.start, false) {
            return tab_error(self.src.at_byte(tab));
        }
        // E.g. `key:<TAB>value`, which the parser rejects just after the tab.
        let bytes = self.src.text.as_bytes();
        let tab = [at.start, at.start.wrapping_sub(1)].into_iter().find(|&i| bytes.get(i) == Some(&b'\t'));
        if let Some(tab) = tab {
            return YamlError::new(
                format!("unexpected tab character ({info})"),
                self.src.at_byte(tab),
                "use spaces instead of tabs",
            );
        }
        YamlError::new(
            format!("invalid YAML: {info}"),
            at,
            "check indentation and punctuation (`:`, `-`, quotes, brackets) around here",
        )
    }

    /// The parser stops at 255 nested flow collections, before emitting their events. Walk
    /// back from there to the bracket that crossed `max_depth`.
    fn flow_depth_error(&self, at: Span) -> YamlError {
        const PARSER_FLOW_LEVEL: usize = 256;
        let block_levels = self.stack.iter().filter(|f| !f.flow).count();
        let target = (self.limits.max_depth + 1).saturating_sub(block_levels);
        let bytes = self.src.text.as_bytes();
        let mut level = PARSER_FLOW_LEVEL;
        let mut closed = 0usize;
        let mut pos = at.start.min(bytes.len());
        while pos > 0 && level > target {
            pos -= 1;
            match bytes[pos] {
                b']' | b'}' => closed += 1,
                b'[' | b'{' if closed > 0 => closed -= 1,
                b'[' | b'{' => level -= 1,
                b'"' | b'\'' | b'#' => break,
                _ => {}
            }
        }
        let span = if level == target && target > 0 { self.src.at_byte(pos) } else { at };
        self.depth_error(span)
    }
}

fn tab_error(span: Span) -> YamlError {
    YamlError::new(
        "tab character used for indentation",
        span,
        "indent with spaces; YAML does not allow tabs for indentation",
    )
}

fn unsupported_tag(tag: &Tag, span: Span) -> YamlError {
    YamlError::new(
        format!("unsupported tag `{}`", tag_text(tag)),
        span,
        "remove the tag; only !!str, !!int, !!float, !!bool and !!null are supported",
    )
}

const CORE_PREFIX: &str = "tag:yaml.org,2002:";

/// The name of a supported tag (`"str"` for `!!str`, ...), `"!"` for the non-specific tag `!`,
/// or `None` if unsupported.
fn core_tag(tag: &Tag) -> Option<&str> {
    let name = if tag.handle == CORE_PREFIX {
        tag.suffix.as_str()
    } else if tag.handle.is_empty() && tag.suffix == "!" {
        return Some("!");
    } else if tag.handle.is_empty() {
        tag.suffix.strip_prefix(CORE_PREFIX)?
    } else {
        return None;
    };
    matches!(name, "str" | "int" | "float" | "bool" | "null" | "map" | "seq").then_some(name)
}

fn tag_text(tag: &Tag) -> String {
    if tag.handle == CORE_PREFIX {
        format!("!!{}", tag.suffix)
    } else if tag.handle.is_empty() {
        format!("!<{}>", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, span: Span) -> Result<Value, YamlError> {
    let Some(tag) = tag else {
        return Ok(if style == ScalarStyle::Plain { resolve_plain(text) } else { Value::String(text.to_owned()) });
    };
    let name = core_tag(tag).ok_or_else(|| unsupported_tag(tag, span))?;
    let value = match name {
        "str" | "!" => Some(Value::String(text.to_owned())),
        "null" => is_null(text).then_some(Value::Null),
        "bool" => parse_bool(text).map(Value::Bool),
        "int" => match parse_int(text) {
            Int::Fits(i) => Some(Value::Int(i)),
            Int::Overflow | Int::No => None,
        },
        "float" => parse_float(text).map(Value::Float),
        _ => {
            return Err(YamlError::new(
                format!("tag `!!{name}` cannot be used on a single value"),
                span,
                "remove the tag",
            ));
        }
    };
    value.ok_or_else(|| {
        YamlError::new(
            format!("`{}` is not a valid !!{name} value", shorten(text)),
            span,
            format!("fix the value, or remove the `!!{name}` tag"),
        )
    })
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Value {
    if is_null(text) {
        return Value::Null;
    }
    if let Some(b) = parse_bool(text) {
        return Value::Bool(b);
    }
    match parse_int(text) {
        Int::Fits(i) => return Value::Int(i),
        Int::Overflow if is_decimal(text) => {
            if let Ok(f) = text.parse() {
                return Value::Float(f);
            }
        }
        Int::Overflow | Int::No => {}
    }
    match parse_float(text) {
        Some(f) => Value::Float(f),
        None => Value::String(text.to_owned()),
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

enum Int {
    Fits(i64),
    Overflow,
    No,
}

fn all_digits(s: &str, radix: u32) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_digit(radix))
}

fn is_decimal(text: &str) -> bool {
    all_digits(text.strip_prefix(['-', '+']).unwrap_or(text), 10)
}

/// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`.
fn parse_int(text: &str) -> Int {
    let (digits, radix) = if let Some(hex) = text.strip_prefix("0x") {
        (hex, 16)
    } else if let Some(oct) = text.strip_prefix("0o") {
        (oct, 8)
    } else if is_decimal(text) {
        (text, 10)
    } else {
        return Int::No;
    };
    if radix != 10 && !all_digits(digits, radix) {
        return Int::No;
    }
    i64::from_str_radix(digits, radix).map_or(Int::Overflow, Int::Fits)
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, `[-+]?.inf` or `.nan` (any case
/// variant allowed by the core schema).
fn parse_float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Some(if text.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int_part, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let mantissa_ok = match frac {
        None => all_digits(int_part, 10),
        Some(f) => {
            (int_part.is_empty() && all_digits(f, 10))
                || (all_digits(int_part, 10) && (f.is_empty() || all_digits(f, 10)))
        }
    };
    let exponent_ok = exponent.is_none_or(is_decimal);
    if mantissa_ok && exponent_ok { text.parse().ok() } else { None }
}

/// The text of a scalar as a mapping key: the string itself, or how the value is written
/// (`1`, `true`, `null`, `1.5`, `.inf`). `None` for collections.
///
/// Duplicate-key detection and [`PathSeg::Key`] lookups compare keys by this text, so `1` and
/// `"1"` in the same mapping are duplicates, as they would be in the JSON view.
#[must_use]
pub fn key_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_text(*f),
        Value::String(s) => s.clone(),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf" } else { "-.inf" }.to_owned()
    } else {
        format!("{f:?}")
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

impl Node {
    /// JSON view of the tree. Mappings become objects keyed by [`key_text`]; `Int` and finite
    /// `Float` become numbers; NaN and infinities become the strings `.nan`, `.inf`, `-.inf`.
    /// Object key order is not kept.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or_else(|| J::String(float_text(*f)), J::Number),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(pairs) => {
                let mut object = serde_json::Map::new();
                for (k, v) in pairs {
                    let key = key_text(&k.value).unwrap_or_else(|| k.to_json().to_string());
                    object.entry(key).or_insert_with(|| v.to_json());
                }
                J::Object(object)
            }
        }
    }

    /// The entry of a mapping whose key is `key` (compared with [`key_text`]).
    fn entry(&self, key: &str) -> Option<&(Node, Node)> {
        match &self.value {
            Value::Map(pairs) => pairs.iter().find(|(k, _)| key_text(&k.value).is_some_and(|t| t == key)),
            _ => None,
        }
    }

    /// The child at one path step.
    fn child(&self, seg: &PathSeg) -> Option<&Node> {
        match (seg, &self.value) {
            (PathSeg::Key(key), _) => self.entry(key).map(|(_, v)| v),
            (PathSeg::Index(i), Value::Seq(items)) => items.get(*i),
            (PathSeg::Index(_), _) => None,
        }
    }

    /// The node at `path` (the root for an empty path).
    #[must_use]
    pub fn at(&self, path: &[PathSeg]) -> Option<&Node> {
        path.iter().try_fold(self, |node, seg| node.child(seg))
    }

    /// Span of the value at `path` (None if absent).
    #[must_use]
    pub fn span_at(&self, path: &[PathSeg]) -> Option<Span> {
        self.at(path).map(|n| n.span)
    }

    /// Span of the KEY at `path` (for "unknown key" errors), None if absent or path ends in Index.
    #[must_use]
    pub fn key_span_at(&self, path: &[PathSeg]) -> Option<Span> {
        let (PathSeg::Key(key), parent) = path.split_last()? else {
            return None;
        };
        self.at(parent)?.entry(key).map(|(k, _)| k.span)
    }

    /// Best span for a path: the deepest existing prefix's value span.
    #[must_use]
    pub fn nearest_span(&self, path: &[PathSeg]) -> Span {
        let mut node = self;
        for seg in path {
            match node.child(seg) {
                Some(child) => node = child,
                None => break,
            }
        }
        node.span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Node {
        match parse(src.as_bytes(), &Limits::default()) {
            Ok(node) => node,
            Err(e) => panic!("unexpected error for {src:?}: {e} ({:?})", e.help),
        }
    }

    fn err_with(src: &[u8], limits: &Limits) -> YamlError {
        match parse(src, limits) {
            Ok(node) => panic!("expected an error for {src:?}, got {node:?}"),
            Err(e) => {
                assert!(e.help.is_some(), "error without help: {e}");
                assert!(e.span.start <= e.span.end, "bad span {:?}", e.span);
                e
            }
        }
    }

    fn err(src: &str) -> YamlError {
        err_with(src.as_bytes(), &Limits::default())
    }

    /// Asserts the error's line and column and that its message contains `needle`.
    #[track_caller]
    fn assert_err(e: &YamlError, line: usize, col: usize, needle: &str) {
        assert_eq!((e.span.line, e.span.col), (line, col), "wrong position for: {e}");
        assert!(e.message.contains(needle), "{e:?} lacks {needle:?}");
    }

    fn path(segs: &[&str]) -> Vec<PathSeg> {
        segs.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => PathSeg::Index(i),
                Err(_) => PathSeg::from(*s),
            })
            .collect()
    }

    fn json(src: &str) -> serde_json::Value {
        ok(src).to_json()
    }

    #[test]
    fn size_limit_is_checked_first() {
        let limits = Limits { max_bytes: 10, ..Limits::default() };
        let e = err_with(b"a: 1\nb: 22\n", &limits);
        assert_err(&e, 1, 1, "file is 11 bytes, limit is 10");
        // Checked before anything else, even binary content.
        let e = err_with(&[0u8; 11], &limits);
        assert_err(&e, 1, 1, "limit is 10");
    }

    #[test]
    fn binary_input_is_rejected_at_the_byte() {
        let e = err_with(b"a: b\nc: \0d", &Limits::default());
        assert_err(&e, 2, 4, "NUL byte");
        assert_eq!(e.span.start, 8);
        let e = err("a: 1\n\nb: |\n  x\x01y\n");
        assert_err(&e, 4, 4, "U+0001");
        // Tabs, CR and LF are text.
        assert_eq!(json("a:\r\n  b: \"x\ty\"\r\n"), serde_json::json!({"a": {"b": "x\ty"}}));
    }

    #[test]
    fn invalid_utf8_is_located() {
        let e = err_with(b"a: \xc3\xa9\nbb: c\xffd\n", &Limits::default());
        assert_err(&e, 2, 6, "not valid UTF-8 (byte 0xFF)");
        assert_eq!(e.span.start, 11);
        // Multi-byte chars before the bad byte count as one column each.
        let e = err_with(&[&b"x: ok\n"[..], "é€: ".as_bytes(), b"\xc3("].concat(), &Limits::default());
        assert_err(&e, 2, 5, "UTF-8");
        // A control byte before the bad UTF-8 wins, and vice versa.
        let e = err_with(b"\x01\xff", &Limits::default());
        assert_err(&e, 1, 1, "U+0001");
        let e = err_with(b"\xff\x01", &Limits::default());
        assert_err(&e, 1, 1, "UTF-8");
    }

    #[test]
    fn tab_indentation_is_rejected_with_help() {
        let cases = [
            ("a:\n\tb: 1", 2, 1),         // parser rejects
            ("a:\n  b: 1\n\tc: 2", 3, 1), // parser points at the end of line 2
            ("a: b\n\n# note\n\tc", 4, 1),
            ("- a\n\t- b", 2, 1),
            ("\ta: 1", 1, 1),      // parser accepts
            ("a:\n \tb: 1", 2, 2), // parser accepts
            ("x:\n  - 1\n\t- 2", 3, 1),
        ];
        for (src, line, col) in cases {
            let e = err(src);
            assert_err(&e, line, col, "tab character used for indentation");
            assert!(e.help.as_deref().unwrap().contains("indent with spaces"), "{src:?}");
        }
        // The parser also rejects a tab after `:`; point at the tab.
        let e = err("a:\n  b: 1\n  c:\t2");
        assert_err(&e, 3, 5, "unexpected tab character");
        assert!(e.help.unwrap().contains("spaces instead of tabs"));
        // Tabs elsewhere are fine: inside flow collections, quoted strings, after content.
        assert_eq!(json("a: [1,\n\t2]"), serde_json::json!({"a": [1, 2]}));
        assert_eq!(json("a: 'x\ty'  \t# c"), serde_json::json!({"a": "x\ty"}));
        assert_eq!(json("a: |\n  \tx\n"), serde_json::json!({"a": "\tx\n"}));
    }

    #[test]
    fn syntax_errors_are_located() {
        // At the end of the input: just past the last char, never a line
        // that does not exist.
        let e = err("a: [1, 2");
        assert_err(&e, 1, 9, "expected ',' or ']'");
        let e = err("a: b: c");
        assert_err(&e, 1, 5, "mapping values are not allowed");
        let e = err("a:\n  - b\n c: d");
        assert_err(&e, 3, 2, "invalid YAML");
        let e = err("key: \"unterminated");
        assert_err(&e, 1, 6, "quoted scalar");
    }

    #[test]
    fn duplicate_keys_are_rejected_at_the_second() {
        let e = err("a: 1\nb: 2\na: 3\n");
        assert_err(&e, 3, 1, "duplicate key `a` (first defined on line 1)");
        let e = err("x:\n  - {k: 1, j: 2, k: 3}");
        assert_err(&e, 2, 18, "duplicate key `k`");
        // Keys are compared by their text, as in the JSON view.
        let e = err("1: a\n'1': b");
        assert_err(&e, 2, 1, "duplicate key `1`");
        // Same key in different mappings is fine.
        ok("a: {k: 1}\nb: {k: 2}");
    }

    #[test]
    fn one_document_only() {
        let e = err("a: 1\n---\nb: 2\n");
        assert_err(&e, 2, 1, "one YAML document expected");
        let e = err("--- 1\n--- 2\n");
        assert_err(&e, 2, 1, "one YAML document expected");
        for empty in ["", "\n\n", "# just a comment\n", "---\n", "---\n...\n"] {
            assert_eq!(ok(empty).value, Value::Null, "{empty:?}");
        }
        let root = ok("");
        assert_eq!((root.span.line, root.span.col), (1, 1));
        assert_eq!(json("a: 1\n...\n"), serde_json::json!({"a": 1}));
    }

    #[test]
    fn aliases_expand_to_copies() {
        let src = "base: &b\n  x: 1\n  y: [2]\nuse: *b\nname: &n hi\nagain: *n\n";
        let root = ok(src);
        assert_eq!(
            root.to_json(),
            serde_json::json!({"base": {"x": 1, "y": [2]}, "use": {"x": 1, "y": [2]},
                               "name": "hi", "again": "hi"})
        );
        // The alias node is located at the alias; its contents at the anchored original.
        let span = root.span_at(&path(&["use"])).unwrap();
        assert_eq!((span.line, span.col, span.start, span.end), (4, 6, 30, 32));
        let span = root.span_at(&path(&["use", "y", "0"])).unwrap();
        assert_eq!((span.line, span.col), (3, 7));
    }

    #[test]
    fn bad_aliases_are_rejected() {
        let e = err("a: 1\nb: *nope\n");
        assert_err(&e, 2, 4, "unknown alias `*nope`");
        assert!(e.help.unwrap().contains("&nope"));
        let e = err("a: &x [1, *x]");
        assert_err(&e, 1, 11, "`*x` is used inside the value it refers to");
    }

    #[test]
    fn billion_laughs_fails_fast() {
        let mut src = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (prev, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
            let refs = vec![format!("*{prev}"); 9].join(", ");
            src.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let start = std::time::Instant::now();
        let e = err(&src);
        // Fails at `e` (line 5): its expansion plus the copy kept for `*e` cross the budget.
        assert_err(&e, 5, 4, "more than 100000 values");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // The alias is refused before it is copied: 9 nodes so far, `*a` would add 4 to 11.
        let limits = Limits { max_nodes: 12, ..Limits::default() };
        let e = err_with(b"a: &a [1, 2, 3]\nb: [*a, *a]", &limits);
        assert_err(&e, 2, 5, "expanding alias `*a` would exceed the limit of 12 values");
        // A small budget applies to plain documents too.
        let limits = Limits { max_nodes: 5, ..Limits::default() };
        let e = err_with(b"[1, 2, 3, 4, 5, 6]", &limits);
        assert_err(&e, 1, 14, "more than 5 values");
    }

    #[test]
    fn depth_limit_without_stack_overflow() {
        // Flow nesting: the parser stops at 255 levels without events; we locate level 65.
        let e = err(&"[".repeat(100_000));
        assert_err(&e, 1, 65, "nesting is too deep (more than 64 levels)");
        let e = err(&"{".repeat(100_000));
        assert_err(&e, 1, 65, "nesting is too deep");
        let e = err(&format!("a:\n  b: {}", "[".repeat(300)));
        assert_err(&e, 2, 68, "nesting is too deep");
        // Block nesting: the parser is iterative, we stop at the 65th level.
        let e = err(&"- ".repeat(100_000));
        assert_err(&e, 1, 129, "nesting is too deep");
        let mut deep = String::new();
        for level in 0..100 {
            deep.push_str(&format!("{}k:\n", " ".repeat(level)));
        }
        let e = err(&deep);
        assert_err(&e, 65, 65, "nesting is too deep");
        // Small limits, and aliases that would cross them.
        let limits = Limits { max_depth: 3, ..Limits::default() };
        let e = err_with(b"a: [[[[1]]]]", &limits);
        assert_err(&e, 1, 6, "more than 3 levels");
        let e = err_with(b"x: &x [[1]]\ny: [*x]", &limits);
        assert_err(&e, 2, 5, "more than 3 levels");
        // Exactly at the limit is fine.
        assert!(parse(b"a: [[1]]", &limits).is_ok());
        // A limit above the parser's own 255 levels still gives a located error.
        let limits = Limits { max_depth: 1000, ..Limits::default() };
        let e = err_with("[".repeat(300).as_bytes(), &limits);
        assert_err(&e, 1, 256, "nesting is too deep");
    }

    #[test]
    fn depth_limit_on_a_small_stack() {
        // The whole pipeline must not recurse per level of input nesting.
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let unlimited = Limits { max_bytes: usize::MAX, max_depth: usize::MAX, max_nodes: usize::MAX };
                let deep = "- ".repeat(20_000);
                let result = parse(deep.as_bytes(), &unlimited);
                assert!(result.is_ok());
                // Leak the tree: dropping it would recurse (documented on Limits).
                std::mem::forget(result);
                parse("[".repeat(100_000).as_bytes(), &Limits::default()).is_err()
            })
            .unwrap();
        assert!(handle.join().unwrap());
    }

    #[test]
    fn merge_keys() {
        let src = "\
base: &base {a: 1, b: 2}
more: &more {b: 3, c: 4}
one:
  <<: *base
  b: 9
list:
  x: 0
  <<: [*base, *more]
";
        let root = ok(src);
        assert_eq!(root.to_json()["one"], serde_json::json!({"a": 1, "b": 9}));
        assert_eq!(root.to_json()["list"], serde_json::json!({"x": 0, "a": 1, "b": 2, "c": 4}));
        // Merged values keep the span of their definition.
        let span = root.span_at(&path(&["one", "a"])).unwrap();
        assert_eq!((span.line, span.col), (1, 17));
        // The order of entries follows the merge key's position.
        let Value::Map(pairs) = &root.at(&path(&["list"])).unwrap().value else {
            panic!("not a map");
        };
        let keys: Vec<_> = pairs.iter().map(|(k, _)| key_text(&k.value).unwrap()).collect();
        assert_eq!(keys, ["x", "a", "b", "c"]);
        // Quoted `<<` is an ordinary key.
        assert_eq!(json("'<<': {a: 1}"), serde_json::json!({"<<": {"a": 1}}));
        let e = err("a: &a 1\nb:\n  <<: *a\n");
        assert_err(&e, 3, 7, "merge key `<<` expects a mapping");
        let e = err("a: &a {x: 1}\nb:\n  <<: [*a, 2]\n");
        assert_err(&e, 3, 12, "merge key");
    }

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        use Value::{Bool, Float, Int, Null};
        let s = |x: &str| Value::String(x.to_owned());
        let cases = [
            ("null", Null),
            ("Null", Null),
            ("NULL", Null),
            ("~", Null),
            ("", Null),
            ("true", Bool(true)),
            ("True", Bool(true)),
            ("TRUE", Bool(true)),
            ("false", Bool(false)),
            ("False", Bool(false)),
            ("FALSE", Bool(false)),
            ("42", Int(42)),
            ("-17", Int(-17)),
            ("+3", Int(3)),
            ("007", Int(7)),
            ("0x1F", Int(31)),
            ("0o17", Int(15)),
            ("9223372036854775807", Int(i64::MAX)),
            ("-9223372036854775808", Int(i64::MIN)),
            ("99999999999999999999", Float(1e20)),
            ("0xFFFFFFFFFFFFFFFFFF", s("0xFFFFFFFFFFFFFFFFFF")),
            ("1.5", Float(1.5)),
            ("-1.5e3", Float(-1500.0)),
            ("1e3", Float(1000.0)),
            ("1.", Float(1.0)),
            (".5", Float(0.5)),
            (".inf", Float(f64::INFINITY)),
            ("+.INF", Float(f64::INFINITY)),
            ("-.inf", Float(f64::NEG_INFINITY)),
            ("yes", s("yes")),
            ("off", s("off")),
            ("0b101", s("0b101")),
            ("1_000", s("1_000")),
            ("0x", s("0x")),
            ("-0x1", s("-0x1")),
            ("1e", s("1e")),
            (".", s(".")),
            ("nul", s("nul")),
            ("1.2.3", s("1.2.3")),
        ];
        for (text, want) in cases {
            assert_eq!(ok(&format!("v: {text}")).at(&path(&["v"])).unwrap().value, want, "{text}");
        }
        let nan = ok("v: .nan").at(&path(&["v"])).unwrap().value.clone();
        assert!(matches!(nan, Float(f) if f.is_nan()));
        // Quoted and block scalars are always strings.
        assert_eq!(
            json("a: '42'\nb: \"true\"\nc: |\n  42\nd: >-\n  null\ne: ''"),
            serde_json::json!({"a": "42", "b": "true", "c": "42\n", "d": "null", "e": ""})
        );
    }

    #[test]
    fn explicit_tags() {
        assert_eq!(
            json(
                "a: !!str 42\nb: !!int \"42\"\nc: !!float 1\nd: !!bool 'true'\ne: !!null ''\nf: ! 7\ng: !<tag:yaml.org,2002:int> 8\nh: !!map {x: 1}\ni: !!seq [1]"
            ),
            serde_json::json!({"a": "42", "b": 42, "c": 1.0, "d": true, "e": null, "f": "7",
                               "g": 8, "h": {"x": 1}, "i": [1]})
        );
        let e = err("a: !!bool yes");
        assert_err(&e, 1, 4, "`yes` is not a valid !!bool value");
        let e = err("a: !!int 99999999999999999999");
        assert_err(&e, 1, 4, "not a valid !!int");
        let e = err("a:\n  b: !custom x");
        assert_err(&e, 2, 6, "unsupported tag `!custom`");
        let e = err("!!binary aGk=");
        assert_err(&e, 1, 1, "unsupported tag `!!binary`");
        let e = err("a: !!seq {x: 1}");
        assert_err(&e, 1, 4, "tag `!!seq` cannot be used on a mapping");
        let e = err("a: !!map x");
        assert_err(&e, 1, 4, "cannot be used on a single value");
        let e = err("%TAG !! tag:example.com:\n---\na: !!str x");
        assert_err(&e, 3, 4, "unsupported tag");
    }

    #[test]
    fn keys_must_be_scalars() {
        let e = err("? [a]\n: 1");
        assert_err(&e, 1, 3, "mapping key must be a single value, not a list");
        let e = err("x: 1\n{a: 1}: 2");
        assert_err(&e, 2, 1, "not a mapping");
        let e = err("m: &m {a: 1}\n*m : 2");
        assert_err(&e, 2, 1, "not a mapping");
        // Scalar keys of any type are fine and show as text in JSON.
        assert_eq!(
            json("1: a\ntrue: b\n~: c\n1.5: d\nz: &k key\n*k : e"),
            serde_json::json!({"1": "a", "true": "b", "null": "c", "1.5": "d", "key": "e", "z": "key"})
        );
    }

    #[test]
    fn spans_of_nested_values_and_keys() {
        let src = "\
name: demo
services:
  web:
    ports:
      - 80
      - {host: 8080, proto: tcp}
";
        let root = ok(src);
        let at = |p: &[&str]| {
            let s = root.span_at(&path(p)).unwrap();
            (s.line, s.col)
        };
        assert_eq!(at(&[]), (1, 1));
        assert_eq!(at(&["name"]), (1, 7));
        assert_eq!(at(&["services"]), (3, 3));
        assert_eq!(at(&["services", "web", "ports"]), (5, 7));
        assert_eq!(at(&["services", "web", "ports", "0"]), (5, 9));
        assert_eq!(at(&["services", "web", "ports", "1"]), (6, 9));
        assert_eq!(at(&["services", "web", "ports", "1", "proto"]), (6, 29));
        let s = root.span_at(&path(&["name"])).unwrap();
        assert_eq!(&src[s.start..s.end], "demo");
        let s = root.span_at(&path(&["services", "web", "ports", "1"])).unwrap();
        assert_eq!(&src[s.start..s.end], "{host: 8080, proto: tcp}");
        let s = root.span_at(&path(&["services", "web"])).unwrap();
        assert_eq!(&src[s.start..s.end], "ports:\n      - 80\n      - {host: 8080, proto: tcp}");

        let key = root.key_span_at(&path(&["services", "web", "ports"])).unwrap();
        assert_eq!((key.line, key.col, &src[key.start..key.end]), (4, 5, "ports"));
        let key = root.key_span_at(&path(&["services", "web", "ports", "1", "host"])).unwrap();
        assert_eq!((key.line, key.col), (6, 10));
        assert_eq!(root.key_span_at(&path(&["services", "web", "ports", "0"])), None);
        assert_eq!(root.key_span_at(&path(&["services", "nope"])), None);
        assert_eq!(root.key_span_at(&[]), None);

        assert_eq!(root.span_at(&path(&["services", "db"])), None);
        assert_eq!(root.span_at(&path(&["services", "web", "ports", "7"])), None);
        assert_eq!(root.span_at(&path(&["name", "0"])), None);
        let near = root.nearest_span(&path(&["services", "web", "env", "X"]));
        assert_eq!((near.line, near.col), (4, 5));
        assert_eq!(root.nearest_span(&path(&["zzz"])), root.span);
    }

    #[test]
    fn spans_count_chars_and_bytes() {
        let src = "\u{feff}é: ü\nb: [x, 'ÿ']\n";
        let root = ok(src);
        let s = root.span_at(&path(&["é"])).unwrap();
        assert_eq!((s.line, s.col, &src[s.start..s.end]), (1, 4, "ü"));
        let s = root.span_at(&path(&["b", "1"])).unwrap();
        assert_eq!((s.line, s.col, &src[s.start..s.end]), (2, 8, "'ÿ'"));
        let e = err("ä: 1\nä: 2");
        assert_err(&e, 2, 1, "duplicate key `ä`");
        let e = err("ä: [ö, *x]");
        assert_err(&e, 1, 8, "unknown alias `*x`");
        assert_eq!(e.span.start, 9);
    }

    #[test]
    fn json_view() {
        assert_eq!(
            json("a: [1, 2.5, .inf, -.inf, .nan, null, true, s]\nb: {}\nc: []"),
            serde_json::json!({"a": [1, 2.5, ".inf", "-.inf", ".nan", null, true, "s"], "b": {}, "c": []})
        );
        assert_eq!(YamlError::new("boom", Span { start: 0, end: 1, line: 3, col: 7 }, "fix").to_string(), "3:7: boom");
    }

    /// Random and mutated inputs must never panic (called without the `catch_unwind` guard).
    #[test]
    fn fuzz_never_panics() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds: &[&[u8]] = &[
            b"a: 1\nb: [x, {y: z}]\n",
            b"base: &b {a: 1}\nx:\n  <<: *b\n  c: !!int '3'\n",
            b"- &a [1, 2]\n- *a\n- ? complex\n  : value\n",
            b"text: |\n  line\n  \tmore\nfold: >-\n  a\n  b\n",
            b"%YAML 1.2\n---\n\"q\\u00e9\": 'it''s'\n...\n",
            b"\xef\xbb\xbfk: \xc3\xa9\r\n  - 0x1F\r\n",
        ];
        let alphabet = b" \t\n\r-:?,[]{}&*!|>'\"#%@`~.0123456789abcxyz<<\xc3\xa9\xff\x00";
        let small = Limits { max_bytes: 400, max_depth: 6, max_nodes: 40 };
        for round in 0..4000 {
            let mut input: Vec<u8> = if round % 3 == 0 {
                let len = (next() % 80) as usize;
                (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect()
            } else {
                seeds[(next() % seeds.len() as u64) as usize].to_vec()
            };
            for _ in 0..=(next() % 6) {
                let r = next();
                let pos = if input.is_empty() { 0 } else { (r >> 8) as usize % input.len() };
                let byte = alphabet[((r >> 32) % alphabet.len() as u64) as usize];
                match r % 5 {
                    0 => input.insert(pos, byte),
                    1 if !input.is_empty() => input[pos] = byte,
                    2 if !input.is_empty() => {
                        input.remove(pos);
                    }
                    3 => input.truncate(pos),
                    _ => {
                        let copy = input[pos..].to_vec();
                        input.extend_from_slice(&copy);
                    }
                }
            }
            let limits = if round % 2 == 0 { small } else { Limits::default() };
            if let Ok(node) = parse_unguarded(&input, &limits) {
                let _ = node.to_json();
                let _ = node.nearest_span(&path(&["a", "0", "b"]));
            }
        }
    }
}
