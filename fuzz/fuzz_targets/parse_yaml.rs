//! Fuzzes the `stack.yaml` loader (`src/stack/yaml.rs`) with arbitrary bytes.
//!
//! The loader promises: any input gives a tree or a located error, never a
//! panic, a hang or unbounded memory; every span lies inside the input; an
//! error always carries a help line. libFuzzer's panic hook aborts even on a
//! panic the loader catches, so a panic inside saphyr-parser is found too.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/stack/yaml.rs"]
#[allow(dead_code)]
mod yaml;

/// Every span must lie inside the input, on a line that exists.
fn check_span(s: &yaml::Span, data: &[u8]) {
    // Line breaks as the loader counts them: \n, \r\n, or a lone \r.
    let lines = 1 + data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count();
    assert!(s.start <= s.end && s.end <= data.len(), "{s:?} in {} bytes", data.len());
    assert!(s.line >= 1 && s.line <= lines && s.col >= 1, "{s:?}");
}

fuzz_target!(|data: &[u8]| {
    let limits = yaml::Limits {
        max_bytes: 64 * 1024,
        max_depth: 32,
        max_nodes: 10_000,
    };
    match yaml::parse(data, &limits) {
        Ok(node) => {
            check_span(&node.span, data);
            // What validation reads next: the tree as JSON.
            let _ = node.to_json();
        }
        Err(e) => {
            assert!(e.help.is_some(), "an error without help: {}", e.message);
            check_span(&e.span, data);
        }
    }
});
