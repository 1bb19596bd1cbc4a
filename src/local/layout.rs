//! config.toml as planning holds it: parsed where a plan can change it, text where it cannot.
//!
//! A parsed `toml_edit` document takes about 25 times the file's size, and a plan changes
//! only the entries of declared runners. So a file in gitlab-runner's own layout (the globals,
//! then one `[[runners]]` entry after another) is cut into the globals and one piece of text
//! per entry. Each piece is parsed once, on all cores, for what matching needs ([`Facts`]),
//! and again only when a plan edits that entry; every other entry is written back as the
//! bytes it was read as. Any other layout (a global table after the entries, `runners`
//! written inline...) is parsed whole, as one document: such files are small in practice.
//!
//! A cut in the wrong place (a header-like line inside a multi-line string) always leaves a
//! piece that does not parse on its own, and the file is then parsed whole: the cut is an
//! optimisation that can never change what the file means.

use std::ops::Range;
use std::path::Path;

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table};

use crate::diag::Problem;

/// What matching and planning need of an entry, read once for every entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub name: Option<String>,
    /// GitLab's id; 0 when the entry has none.
    pub id: i64,
    /// As written (may hold `$VAR`).
    pub url: Option<String>,
    /// As written (may be `$VAR`). Only ever compared and sent to GitLab, never shown.
    pub token: Option<String>,
}

impl Facts {
    pub fn of(t: &Table) -> Self {
        let text = |k: &str| t.get(k).and_then(Item::as_str).map(str::to_string);
        Facts {
            name: text("name"),
            id: t.get("id").and_then(Item::as_integer).unwrap_or(0),
            url: text("url"),
            token: text("token"),
        }
    }
}

/// Where the pieces of a file in gitlab-runner's layout lie.
#[derive(Debug, Clone)]
struct Pieces {
    /// Each entry's bytes: from the blank lines and comments before its `[[runners]]`
    /// header (which the header's table owns, as in a whole parse) to the next entry's.
    entries: Vec<Range<usize>>,
    /// Blank lines and comments after the last entry: the document's trailing text, which
    /// stays last whatever entries are appended.
    tail: Range<usize>,
}

/// config.toml as read.
#[derive(Debug, Clone, Default)]
pub struct LocalDoc {
    text: Option<String>,
    /// Cut into pieces: the globals only. Parsed whole: the whole document, entries included.
    head: DocumentMut,
    pieces: Option<Pieces>,
    facts: Vec<Facts>,
    /// One indentation level in this file.
    pub unit: String,
    /// The indentation of the keys of an entry.
    pub runner_indent: String,
}

/// What takes the place of an original entry when the file is written.
pub enum Part<'a> {
    AsRead,
    Removed,
    /// Borrowed mutably only to be written without a copy: it is the same table afterwards.
    Planned(&'a mut Table),
    /// An entry already written out ([`written`]).
    Text(&'a str),
}

impl LocalDoc {
    /// A missing file.
    pub fn empty() -> Self {
        LocalDoc {
            unit: "  ".into(),
            runner_indent: "  ".into(),
            ..LocalDoc::default()
        }
    }

    /// Parses `text`; a file that is not TOML is a located diagnostic.
    pub fn parse(path: &Path, text: String) -> Result<Self, Problem> {
        if let Some(doc) = Self::cut(&text) {
            return Ok(LocalDoc {
                text: Some(text),
                ..doc
            });
        }
        let doc = super::parse(path, &text)?;
        Ok(Self::whole(doc, Some(text)))
    }

    /// The same, always parsed as one document (for tests that compare both ways).
    pub fn parse_whole(path: &Path, text: String) -> Result<Self, Problem> {
        let doc = super::parse(path, &text)?;
        Ok(Self::whole(doc, Some(text)))
    }

    fn whole(doc: DocumentMut, text: Option<String>) -> Self {
        super::remember_secrets(doc.as_table());
        let tables: Vec<&Table> = doc
            .get("runners")
            .and_then(Item::as_array_of_tables)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let facts = tables.iter().map(|t| Facts::of(t)).collect();
        let unit = super::edit::indent_unit(doc.as_table()).unwrap_or_else(|| "  ".into());
        let runner_indent = tables
            .iter()
            .find_map(|t| super::edit::key_indent(t))
            .unwrap_or_else(|| unit.clone());
        LocalDoc {
            text,
            head: doc,
            pieces: None,
            facts,
            unit,
            runner_indent,
        }
    }

    /// The file cut into globals and entries, when it is in gitlab-runner's layout and every
    /// piece parses on its own.
    fn cut(text: &str) -> Option<Self> {
        let starts = entry_starts(text);
        let first = *starts.first()?;
        let head: DocumentMut = text[..first].parse().ok()?;
        if head.contains_key("runners") {
            return None;
        }
        let tail_start = tail_start(text).max(*starts.last()?);
        let mut entries: Vec<Range<usize>> = starts.windows(2).map(|w| w[0]..w[1]).collect();
        entries.push(*starts.last()?..tail_start);
        let facts = read_pieces(text, &entries)?;
        super::remember_secrets(head.as_table());
        let unit = super::edit::indent_unit(head.as_table());
        let mut runner_indent = None;
        let mut first_entry = None;
        // The first entries tell the indentation; looking further would parse them all again.
        for r in entries.iter().take(8) {
            let t = parse_piece(&text[r.clone()])?;
            runner_indent = super::edit::key_indent(&t);
            if first_entry.is_none() {
                first_entry = Some(t);
            }
            if runner_indent.is_some() {
                break;
            }
        }
        let unit = unit
            .or_else(|| {
                let mut d = DocumentMut::new();
                d.insert("runners", Item::ArrayOfTables(one(first_entry?)));
                super::edit::indent_unit(d.as_table())
            })
            .unwrap_or_else(|| "  ".into());
        Some(LocalDoc {
            text: None,
            head,
            pieces: Some(Pieces {
                entries,
                tail: tail_start..text.len(),
            }),
            facts,
            runner_indent: runner_indent.unwrap_or_else(|| unit.clone()),
            unit,
        })
    }

    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// The globals: a document without entries when the file was cut into pieces, the whole
    /// document otherwise. Edit it, and hand it to [`LocalDoc::render`].
    pub fn head(&self) -> &DocumentMut {
        &self.head
    }

    /// The entries, in file order.
    pub fn facts(&self) -> &[Facts] {
        &self.facts
    }

    pub fn len(&self) -> usize {
        self.facts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    /// Whether the entries are kept as text (gitlab-runner's layout).
    pub fn is_cut(&self) -> bool {
        self.pieces.is_some()
    }

    /// Entry `i`, parsed: a copy to edit.
    pub fn entry(&self, i: usize) -> Table {
        match &self.pieces {
            Some(p) => {
                let text = self.text.as_deref().unwrap_or_default();
                parse_piece(&text[p.entries[i].clone()])
                    .expect("the piece parsed when the file was read")
            }
            None => self
                .head
                .get("runners")
                .and_then(Item::as_array_of_tables)
                .and_then(|a| a.get(i))
                .cloned()
                .expect("entry index comes from the same document"),
        }
    }

    /// The file with `head` for the globals, the next of `parts` in place of each entry (as
    /// read when they run out) and `appended` after them, as `toml_edit` writes it (line
    /// endings are restored by the caller).
    pub fn render<'a>(
        &self,
        head: &DocumentMut,
        parts: impl IntoIterator<Item = Part<'a>>,
        appended: impl IntoIterator<Item = &'a mut Table>,
    ) -> String {
        self.render_aligned(head, parts, appended).0
    }

    /// [`Self::render`], and how many lines each piece of the file (the globals, each entry,
    /// the trailing comments) takes before and after, to diff the two piece by piece (empty
    /// when the file was parsed whole).
    pub fn render_aligned<'a>(
        &self,
        head: &DocumentMut,
        parts: impl IntoIterator<Item = Part<'a>>,
        appended: impl IntoIterator<Item = &'a mut Table>,
    ) -> (String, Vec<(usize, usize)>) {
        let mut parts = parts.into_iter();
        let mut part = move || parts.next().unwrap_or(Part::AsRead);
        let Some(pieces) = &self.pieces else {
            let mut doc = head.clone();
            if doc.get("runners").is_some_and(|r| !r.is_array_of_tables()) {
                // Written inline (`runners = [...]`): not entries runnerform reads or writes.
                return (doc.to_string(), Vec::new());
            }
            let originals = self.head.get("runners").and_then(Item::as_array_of_tables);
            let mut out = ArrayOfTables::new();
            for i in 0..self.len() {
                match part() {
                    Part::AsRead => {
                        if let Some(t) = originals.and_then(|a| a.get(i)) {
                            out.push(t.clone());
                        }
                    }
                    Part::Removed => {}
                    Part::Planned(t) => out.push(t.clone()),
                    Part::Text(text) => out.push(parse_piece(text).expect("written as one entry")),
                }
            }
            out.extend(appended.into_iter().map(|t| t.clone()));
            if out.is_empty() {
                doc.remove("runners");
            } else {
                doc.insert("runners", Item::ArrayOfTables(out));
            }
            return (doc.to_string(), Vec::new());
        };
        let text = self.text.as_deref().unwrap_or_default();
        // toml_edit writes LF; the pieces kept as text follow it so that the caller restores
        // each line's ending the same way for every part of the file.
        let crlf = text.contains('\r');
        let push = |out: &mut String, s: &str| {
            if crlf {
                out.push_str(&s.replace("\r\n", "\n"));
            } else {
                out.push_str(s);
            }
        };
        let lines = |s: &str| s.matches('\n').count();
        let mut out = String::with_capacity(text.len() + 4096);
        let mut pairs = Vec::with_capacity(pieces.entries.len() + 2);
        let head_end = pieces.entries.first().unwrap_or(&pieces.tail).start;
        out.push_str(&head.to_string());
        pairs.push((lines(&text[..head_end]), lines(&out)));
        for r in &pieces.entries {
            let before = out.len();
            match part() {
                Part::AsRead => push(&mut out, &text[r.clone()]),
                Part::Removed => {}
                Part::Planned(t) => push_entry(&mut out, t),
                Part::Text(t) => out.push_str(t),
            }
            pairs.push((lines(&text[r.clone()]), lines(&out[before..])));
        }
        for t in appended {
            let before = out.len();
            push_entry(&mut out, t);
            pairs.push((0, lines(&out[before..])));
        }
        push(&mut out, &text[pieces.tail.clone()]);
        let tail = lines(&text[pieces.tail.clone()]);
        pairs.push((tail, tail));
        (out, pairs)
    }
}

fn one(t: Table) -> ArrayOfTables {
    let mut a = ArrayOfTables::new();
    a.push(t);
    a
}

/// Writes an entry as it is written among others. The table is lent to a document for the
/// time of writing, not copied: a plan of thousands of changed entries would otherwise copy
/// each one.
fn push_entry(out: &mut String, t: &mut Table) {
    let mut d = DocumentMut::new();
    d.insert("runners", Item::ArrayOfTables(one(std::mem::take(t))));
    out.push_str(&d.to_string());
    if let Some(back) = d
        .remove("runners")
        .and_then(|i| i.into_array_of_tables().ok())
        .and_then(|a| a.into_iter().next())
    {
        *t = back;
    }
}

/// An entry as it is written among others, as text.
pub fn written(t: &mut Table) -> String {
    let mut out = String::new();
    push_entry(&mut out, t);
    out
}

/// Parses one entry's piece; `None` unless it is exactly one `[[runners]]` table.
pub fn parse_piece(piece: &str) -> Option<Table> {
    let mut doc: DocumentMut = piece.parse().ok()?;
    if doc.len() != 1 || !doc.trailing().as_str().is_some_and(str::is_empty) {
        return None;
    }
    let Item::ArrayOfTables(a) = doc.remove("runners")? else {
        return None;
    };
    if a.len() != 1 {
        return None;
    }
    a.into_iter().next()
}

/// Parses every piece, on all cores: each entry's facts, and its credentials remembered for
/// masking. `None` when a piece is not one entry on its own.
fn read_pieces(text: &str, entries: &[Range<usize>]) -> Option<Vec<Facts>> {
    let read = |rs: &[Range<usize>]| -> Option<Vec<Facts>> {
        rs.iter()
            .map(|r| {
                let t = parse_piece(&text[r.clone()])?;
                super::remember_secrets(&t);
                Some(Facts::of(&t))
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || entries.len() < 256 {
        return read(entries);
    }
    let chunk = entries.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|c| s.spawn(move || read(c)))
            .collect();
        let mut facts = Vec::with_capacity(entries.len());
        for h in handles {
            facts.extend(h.join().ok()??);
        }
        Some(facts)
    })
}

/// Lines with their byte offsets.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 0;
    text.split_inclusive('\n').map(move |l| {
        let start = at;
        at += l.len();
        (start, l)
    })
}

fn is_blank_or_comment(line: &str) -> bool {
    let body = line.trim();
    body.is_empty() || body.starts_with('#')
}

/// `[[runners]]`, alone on its line but for a comment.
fn is_entry_header(line: &str) -> bool {
    let Some(rest) = line.trim().strip_prefix("[[") else {
        return false;
    };
    let Some((key, after)) = rest.split_once("]]") else {
        return false;
    };
    let after = after.trim();
    key.trim() == "runners" && (after.is_empty() || after.starts_with('#'))
}

/// Where each entry's piece starts: at the blank lines and comments before its header.
fn entry_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut block: Option<usize> = None;
    for (at, line) in lines(text) {
        if is_entry_header(line) {
            starts.push(block.unwrap_or(at));
            block = None;
        } else if is_blank_or_comment(line) {
            block.get_or_insert(at);
        } else {
            block = None;
        }
    }
    starts
}

/// Where the blank lines and comments that end the file start.
fn tail_start(text: &str) -> usize {
    let mut start = text.len();
    for (at, line) in lines(text) {
        if is_blank_or_comment(line) {
            start = start.min(at);
        } else {
            start = text.len();
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "concurrent = 4\n\n[session_server]\n  session_timeout = 1800\n\n\
        # the build pool\n[[runners]]\n  name = \"a\"\n  url = \"https://gitlab.example.com\"\n  \
        id = 7\n  token = \"glrt-aaaaaaaaaaaa\"\n  [runners.docker]\n    image = \"x\"\n\n\
        [[runners]] # second\n  name = \"b\"\n  limit = 2 # why\n\n# the end\n";

    fn both(text: &str) -> (LocalDoc, LocalDoc) {
        let p = Path::new("config.toml");
        (
            LocalDoc::parse(p, text.to_string()).unwrap(),
            LocalDoc::parse_whole(p, text.to_string()).unwrap(),
        )
    }

    #[test]
    fn a_file_in_gitlab_runners_layout_is_cut_and_written_back_byte_for_byte() {
        let (cut, whole) = both(FILE);
        assert!(cut.is_cut());
        assert_eq!(cut.facts(), whole.facts());
        assert_eq!(cut.facts()[0].id, 7);
        assert_eq!(
            (cut.unit.as_str(), cut.runner_indent.as_str()),
            ("  ", "  ")
        );
        let as_read = |d: &LocalDoc| d.render(d.head(), [], []);
        assert_eq!(as_read(&cut), FILE);
        assert_eq!(as_read(&whole), FILE);
    }

    #[test]
    fn edits_render_the_same_cut_or_whole() {
        let (cut, whole) = both(FILE);
        let render = |d: &LocalDoc| {
            let mut t = d.entry(0);
            crate::local::edit::set_scalar(&mut t, "limit", 9.into());
            let mut head = d.head().clone();
            head["concurrent"] = toml_edit::value(8);
            let mut new = d.entry(1);
            crate::local::edit::set_scalar(&mut new, "name", "c".into());
            let out = d.render(
                &head,
                [Part::Planned(&mut t), Part::Removed],
                std::iter::once(&mut new),
            );
            // Lent to be written, the tables come back as they were.
            assert_eq!(t.get("limit").and_then(|v| v.as_integer()), Some(9));
            assert_eq!(new.get("name").and_then(|v| v.as_str()), Some("c"));
            out
        };
        let out = render(&cut);
        assert_eq!(out, render(&whole));
        assert!(out.contains("  limit = 9\n") && out.contains("name = \"c\""));
        assert!(out.ends_with("# the end\n"), "{out}");
    }

    #[test]
    fn other_layouts_are_parsed_whole() {
        for text in [
            // A global table after the entries.
            "[[runners]]\n  name = \"a\"\n[session_server]\n  listen_address = \"x\"\n",
            // A header-like line inside a multi-line string.
            "[[runners]]\n  name = \"a\"\n  pre_build_script = \"\"\"\n[[runners]]\n\"\"\"\n",
            // Entries written inline.
            "runners = [{ name = \"a\" }]\n",
        ] {
            let (cut, whole) = both(text);
            assert!(!cut.is_cut(), "{text}");
            assert_eq!(cut.facts(), whole.facts());
            assert_eq!(cut.render(cut.head(), [], []), text);
        }
    }
}
