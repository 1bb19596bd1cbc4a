//! KDL parsing that scales to fleet-sized files.
//!
//! The `kdl` crate's v2 parser costs about a millisecond per KiB, so a 1,000-runner file
//! would spend a quarter of a second in it. Top-level nodes are independent, so a large
//! document is cut between top-level blocks and the pieces are parsed on all cores by the same
//! parser, with spans moved back to document offsets. The cut is conservative: any construct
//! the scanner does not fully understand (raw or multi-line strings, line continuations)
//! keeps the document whole, and if any piece fails to parse, the whole document is parsed
//! again so that errors and the KDL v1 fallback are exactly the parser's own.

use std::ops::Range;

use kdl::{KdlDocument, KdlError, KdlNode};
use miette::SourceSpan;

/// Below this size the document is parsed in one piece.
const SPLIT_FROM_BYTES: usize = 32 * 1024;

pub fn parse_nodes(text: &str) -> Result<Vec<KdlNode>, KdlError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if text.len() >= SPLIT_FROM_BYTES
        && threads > 1
        && let Some(cuts) = top_level_cuts(text)
        && let Some(nodes) = parse_pieces(text, &pieces(text.len(), &cuts, threads))
    {
        return Ok(nodes);
    }
    KdlDocument::parse(text).map(|mut d| std::mem::take(d.nodes_mut()))
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
                s.spawn(move || {
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
            .map(|h| h.join().ok().flatten())
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
        let whole = KdlDocument::parse(&text).unwrap_err();
        assert_eq!(split, whole);
    }
}
