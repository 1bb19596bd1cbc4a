//! KDL parsing that scales to fleet-sized files.
//!
//! The `kdl` crate's v2 parser costs about a millisecond per KiB, so a 1,000-runner file
//! would spend a quarter of a second in it. Top-level nodes are independent, so a large
//! document is cut between top-level blocks and the pieces are parsed on all cores by the same
//! parser, with spans moved back to document offsets. The cut is conservative: any construct
//! the scanner does not fully understand (raw or multi-line strings, line continuations)
//! keeps the document whole, and if any piece fails to parse, the whole document is parsed
//! again so that errors and the KDL v1 fallback are exactly the parser's own.
//!
//! The parser recurses, and some inputs (deep nesting, runs of type annotations) would
//! overflow the stack and abort the process: [`too_complex`] refuses the shapes known to do
//! that before the parser sees them, and the parser runs on threads with a large stack as a
//! second line of defence. KDL v1 is read only from files that are v1: a v2 file with a
//! mistake gets the v2 parser's error, with a hint for v1 habits (`false` for `#false`).

use std::ops::Range;

use kdl::{KdlDocument, KdlError, KdlNode};
use miette::SourceSpan;

/// Below this size the document is parsed in one piece.
const SPLIT_FROM_BYTES: usize = 32 * 1024;

/// Deepest nesting of `{ }` blocks accepted. The language itself nests four or five levels.
pub const MAX_DEPTH: usize = 32;

/// Stack of a parsing thread. Only the pages used are ever touched.
const PARSER_STACK: usize = 256 << 20;

pub fn parse_nodes(text: &str) -> Result<Vec<KdlNode>, KdlError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if text.len() >= SPLIT_FROM_BYTES
        && threads > 1
        && let Some(cuts) = top_level_cuts(text)
        && let Some(nodes) = parse_pieces(text, &pieces(text.len(), &cuts, threads))
    {
        return Ok(nodes);
    }
    on_big_stack(|| parse_whole(text)).map(|mut d| std::mem::take(d.nodes_mut()))
}

fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .stack_size(PARSER_STACK)
            .spawn_scoped(s, f);
        match h {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            // No thread to be had: a small machine; parse here.
            Err(_) => unreachable_thread(),
        }
    })
}

#[cold]
fn unreachable_thread<T>() -> T {
    panic!("cannot start a thread to parse KDL")
}

/// KDL v2; KDL v1 only for a file that is v1: it parses as v1, or says it is.
fn parse_whole(text: &str) -> Result<KdlDocument, KdlError> {
    let v2 = match KdlDocument::parse_v2(text) {
        Ok(d) => return Ok(d),
        Err(e) => e,
    };
    match KdlDocument::parse_v1(text) {
        Ok(d) => Ok(d),
        Err(v1) if declares_v1(text) => Err(v1),
        Err(_) => Err(v2),
    }
}

/// A `kdl-version 1` marker on the first line, or v1's raw strings and none of v2's
/// `#keywords`.
fn declares_v1(text: &str) -> bool {
    let marked = text
        .lines()
        .next()
        .is_some_and(|l| l.contains("kdl-version 1"));
    let v2 = ["#true", "#false", "#null", "#inf", "#nan", "#\"", "\"\"\""]
        .iter()
        .any(|m| text.contains(m));
    marked || (!v2 && (text.contains(" r\"") || text.contains(" r#")))
}

/// A hint for a v2 syntax error on a v1 habit, from the text under the error.
pub fn hint(text: &str, span: SourceSpan) -> Option<String> {
    let start = span.offset().min(text.len());
    let rest = text.get(start..)?;
    let word: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    match word.as_str() {
        "true" | "false" | "null" | "inf" | "nan" => Some(format!(
            "KDL v2 writes keywords with `#`: `{word}` -> `#{word}` (runnerform reads KDL v2, \
             and KDL v1 only for whole files written in v1)"
        )),
        _ => None,
    }
}

/// The first shape the parser cannot take without risk to the stack: a block nested deeper
/// than [`MAX_DEPTH`], or type annotations in a row (KDL allows one).
pub fn too_complex(text: &str) -> Option<(SourceSpan, String, String)> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    // Just after a `)` that closed an annotation, while only whitespace followed it.
    let mut after_annotation = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                after_annotation = false;
                i = skip_quoted(b, i);
                continue;
            }
            b'#' if matches!(b.get(i + 1), Some(b'"' | b'#')) => {
                after_annotation = false;
                i = skip_raw(b, i);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(b, i);
                continue;
            }
            b'\\' => i += 1,
            b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some((
                        SourceSpan::new(i.into(), 1),
                        format!("blocks are nested more than {MAX_DEPTH} deep"),
                        "runnerform's language nests a few levels; look for a `{` without \
                         its `}`"
                            .into(),
                    ));
                }
            }
            b'}' => depth = depth.saturating_sub(1),
            b'(' => {
                let start = i;
                while i < b.len() && !matches!(b[i], b')' | b'\n') {
                    i = if b[i] == b'"' {
                        skip_quoted(b, i)
                    } else {
                        i + 1
                    };
                }
                if after_annotation {
                    return Some((
                        SourceSpan::new(start.into(), (i + 1).min(b.len()) - start),
                        "two type annotations in a row".into(),
                        "a node or value takes one type annotation, as in (type)value".into(),
                    ));
                }
                after_annotation = b.get(i) == Some(&b')');
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => after_annotation = false,
        }
        i += 1;
    }
    None
}

/// The offset after a `"…"` or `"""…"""` string starting at `i`.
fn skip_quoted(b: &[u8], i: usize) -> usize {
    if b[i..].starts_with(b"\"\"\"") {
        let mut j = i + 3;
        while j < b.len() && !b[j..].starts_with(b"\"\"\"") {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        return (j + 3).min(b.len());
    }
    let mut j = i + 1;
    while j < b.len() && b[j] != b'"' {
        j += if b[j] == b'\\' { 2 } else { 1 };
    }
    (j + 1).min(b.len())
}

/// The offset after a raw string `#"…"#` (any number of `#`) starting at `i`.
fn skip_raw(b: &[u8], i: usize) -> usize {
    let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let mut j = i + hashes + 1;
    while j < b.len() && !b[j..].starts_with(&close) {
        j += 1;
    }
    (j + close.len()).min(b.len())
}

/// The offset after a (nested) block comment starting at `i`.
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut nest = 0usize;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            nest += 1;
            i += 2;
        } else if b[i..].starts_with(b"*/") {
            nest -= 1;
            i += 2;
            if nest == 0 {
                break;
            }
        } else {
            i += 1;
        }
    }
    i.min(b.len())
}

/// Groups the cut points into at most `n` contiguous pieces of similar size.
fn pieces(len: usize, cuts: &[usize], n: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..n {
        let target = len * i / n;
        if let Some(&cut) = cuts.iter().find(|&&c| c >= target && c > start) {
            out.push(start..cut);
            start = cut;
        }
    }
    out.push(start..len);
    out
}

fn parse_pieces(text: &str, pieces: &[Range<usize>]) -> Option<Vec<KdlNode>> {
    let results: Vec<Option<Vec<KdlNode>>> = std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .map(|r| {
                let piece = &text[r.clone()];
                let offset = r.start;
                let builder = std::thread::Builder::new().stack_size(PARSER_STACK / 4);
                builder.spawn_scoped(s, move || {
                    let mut doc = KdlDocument::parse_v2(piece).ok()?;
                    let mut nodes = std::mem::take(doc.nodes_mut());
                    for n in &mut nodes {
                        shift_node(n, offset);
                    }
                    Some(nodes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.ok().and_then(|h| h.join().ok()).flatten())
            .collect()
    });
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Some(out)
}

fn shift(span: SourceSpan, by: usize) -> SourceSpan {
    SourceSpan::new((span.offset() + by).into(), span.len())
}

fn shift_node(node: &mut KdlNode, by: usize) {
    node.set_span(shift(node.span(), by));
    let name = node.name_mut();
    name.set_span(shift(name.span(), by));
    if let Some(ty) = node.ty_mut() {
        ty.set_span(shift(ty.span(), by));
    }
    for e in node.entries_mut() {
        e.set_span(shift(e.span(), by));
        if let Some(n) = e.name_mut() {
            n.set_span(shift(n.span(), by));
        }
        if let Some(t) = e.ty_mut() {
            t.set_span(shift(t.span(), by));
        }
    }
    if let Some(children) = node.children_mut() {
        children.set_span(shift(children.span(), by));
        for c in children.nodes_mut() {
            shift_node(c, by);
        }
    }
}

/// Offsets just after each line that closes a top-level block (a line that is only `}` at
/// depth zero). `None` when the document holds something the scanner does not understand.
fn top_level_cuts(text: &str) -> Option<Vec<usize>> {
    let b = text.as_bytes();
    let mut cuts = Vec::new();
    let mut depth: i64 = 0;
    let mut i = 0;
    let mut line_start = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                if b[i..].starts_with(b"\"\"\"") {
                    return None;
                }
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    match b[i] {
                        b'\\' => i += 2,
                        b'\n' | b'\r' => return None,
                        _ => i += 1,
                    }
                }
                i += 1;
                continue;
            }
            b'#' if matches!(b.get(i + 1), Some(b'"' | b'#')) => return None,
            b'\\' => return None,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut nest = 0;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        nest += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        nest -= 1;
                        i += 2;
                        if nest == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                if nest != 0 {
                    return None;
                }
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            b'\n' => {
                if depth == 0 && text[line_start..i].trim() == "}" {
                    cuts.push(i + 1);
                }
                line_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    (depth == 0).then_some(cuts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(unit: &str) -> String {
        unit.repeat(SPLIT_FROM_BYTES / unit.len() + 10)
    }

    #[test]
    fn split_parse_gives_the_same_nodes_and_spans_as_a_whole_parse() {
        let text = big(
            "runner \"a\" {\n    // a } comment\n    tags \"}\" \"x\" /* } */\n    docker {\n        image \"a\\\"}\"\n    }\n}\nconfig { concurrent 2; }\n",
        );
        let split = parse_nodes(&text).unwrap();
        let whole = KdlDocument::parse_v2(&text).unwrap();
        assert_eq!(split.len(), whole.nodes().len());
        for (a, b) in split.iter().zip(whole.nodes()) {
            assert_eq!(a.to_string(), b.to_string());
            assert_eq!(a.span(), b.span());
            let (ca, cb) = (a.children().unwrap(), b.children().unwrap());
            for (x, y) in ca.nodes().iter().zip(cb.nodes()) {
                assert_eq!(x.span(), y.span());
                assert_eq!(x.name().span(), y.name().span());
                for (e, f) in x.entries().iter().zip(y.entries()) {
                    assert_eq!(e.span(), f.span());
                }
            }
        }
    }

    #[test]
    fn constructs_the_scanner_does_not_know_keep_the_document_whole() {
        assert!(top_level_cuts("a #\"raw\"#\n").is_none());
        assert!(top_level_cuts("a \"\"\"\nx\n\"\"\"\n").is_none());
        assert!(top_level_cuts("a \\\n 1\n").is_none());
        assert_eq!(top_level_cuts("a {\n}\nb {\n  c\n}\n"), Some(vec![6, 16]));
    }

    #[test]
    fn an_error_in_a_piece_is_reported_as_the_whole_parser_reports_it() {
        let mut text = big("runner \"a\" {\n    limit 1\n}\n");
        text.push_str("runner \"b\" {\n    limit 1.\n}\n");
        let split = parse_nodes(&text).unwrap_err();
        let whole = parse_whole(&text).unwrap_err();
        assert_eq!(split, whole);
    }
}
