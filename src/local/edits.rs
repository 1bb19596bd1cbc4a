//! Changes to a config.toml, held apart from the file they change: the globals as a document,
//! and only the entries a change touches as tables. The entries nobody touches stay the text
//! they were read as ([`super::layout`]), so the cost of a plan follows what it changes, not
//! the size of the file. An entry a runner has finished changing is written out at once
//! ([`Edits::settle`]): held as text, it takes a fraction of the memory of a parsed table,
//! and it is written while it is still in the processor's caches.

use std::borrow::Cow;
use std::collections::BTreeMap;

use toml_edit::{DocumentMut, Table};

use super::layout::{LocalDoc, Part, parse_piece, written};

#[derive(Debug, Clone)]
pub struct Edits {
    /// The globals as they will be written.
    pub head: DocumentMut,
    /// Original entries as they will be written, by index: only those a change touched.
    pub edited: BTreeMap<usize, Edited>,
    /// Original entries that will be removed.
    pub removed: Vec<bool>,
    /// New entries, after the original ones.
    pub appended: Vec<Table>,
    /// Original entries changed since the last [`Edits::settle`].
    touched: Vec<usize>,
}

/// An original entry as it will be written.
#[derive(Debug, Clone)]
pub enum Edited {
    Table(Table),
    /// Written out, in a file cut into entries: the text that takes the entry's place.
    Text(String),
}

impl Edits {
    /// No change yet.
    pub fn new(local: &LocalDoc) -> Self {
        Edits {
            head: local.head().clone(),
            edited: BTreeMap::new(),
            removed: vec![false; local.len()],
            appended: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Entry `i` as it will be written, to change it further.
    pub fn entry_mut(&mut self, local: &LocalDoc, i: usize) -> &mut Table {
        self.touched.push(i);
        let e = self
            .edited
            .entry(i)
            .or_insert_with(|| Edited::Table(local.entry(i)));
        if let Edited::Text(text) = e {
            *e = Edited::Table(parse_piece(text).expect("written as one entry"));
        }
        match e {
            Edited::Table(t) => t,
            Edited::Text(_) => unreachable!("made a table above"),
        }
    }

    /// Entry `i` as it will be written, if a change touched it.
    pub fn edited_table(&self, i: usize) -> Option<Cow<'_, Table>> {
        match self.edited.get(&i)? {
            Edited::Table(t) => Some(Cow::Borrowed(t)),
            Edited::Text(text) => parse_piece(text).map(Cow::Owned),
        }
    }

    /// Writes out the entries changed since the last call: their changes are complete.
    pub fn settle(&mut self, local: &LocalDoc) {
        // A file parsed whole is written as one document, from tables.
        if !local.is_cut() {
            self.touched.clear();
            return;
        }
        for i in self.touched.drain(..) {
            if let Some(e) = self.edited.get_mut(&i)
                && let Edited::Table(t) = e
            {
                *e = Edited::Text(written(t));
            }
        }
    }

    /// Entry `i` back as it was read.
    pub fn restore(&mut self, i: usize) {
        self.edited.remove(&i);
    }

    /// The whole file with every change made.
    pub fn render(&mut self, local: &LocalDoc) -> String {
        self.render_aligned(local).0
    }

    /// The whole file with every change made, and its pieces' lines before and after
    /// ([`LocalDoc::render_aligned`]).
    pub fn render_aligned(&mut self, local: &LocalDoc) -> (String, Vec<(usize, usize)>) {
        let removed = &self.removed;
        local.render_aligned(
            &self.head,
            parts(local.len(), |i| removed[i], &mut self.edited),
            &mut self.appended,
        )
    }
}

/// The part for each original entry in turn: removed where `removed` says so, else the entry
/// in `planned` if there is one, else as read.
pub fn parts<'a>(
    len: usize,
    removed: impl Fn(usize) -> bool + 'a,
    planned: &'a mut BTreeMap<usize, Edited>,
) -> impl Iterator<Item = Part<'a>> + 'a {
    let mut planned = planned.iter_mut().peekable();
    (0..len).map(move |i| {
        let e = planned.next_if(|(k, _)| **k == i).map(|(_, e)| e);
        match e {
            _ if removed(i) => Part::Removed,
            Some(Edited::Table(t)) => Part::Planned(t),
            Some(Edited::Text(text)) => Part::Text(text),
            None => Part::AsRead,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::edit::set_scalar;

    const FILE: &str = "concurrent = 4\n\n# first\n[[runners]]\n  name = \"a\"\n  limit = 1\n  \
        [runners.docker]\n    image = \"x\"\n\n[[runners]]\n  name = \"b\"\n  limit = 2\n";

    #[test]
    fn a_settled_entry_is_written_the_same_and_can_be_changed_again() {
        let local = LocalDoc::parse(std::path::Path::new("config.toml"), FILE.into()).unwrap();
        assert!(local.is_cut());
        let mut kept = Edits::new(&local);
        let mut settled = Edits::new(&local);
        for e in [&mut kept, &mut settled] {
            set_scalar(e.entry_mut(&local, 0), "limit", 5.into());
        }
        settled.settle(&local);
        assert!(matches!(settled.edited[&0], Edited::Text(_)));
        assert_eq!(settled.render(&local), kept.render(&local));
        // Changed again after it was written out: read back, changed, and written again.
        for e in [&mut kept, &mut settled] {
            set_scalar(e.entry_mut(&local, 0), "limit", 6.into());
        }
        settled.settle(&local);
        let out = settled.render(&local);
        assert_eq!(out, kept.render(&local));
        assert!(
            out.contains("# first\n[[runners]]\n  name = \"a\"\n  limit = 6\n"),
            "{out}"
        );
        assert!(
            out.contains("  [runners.docker]\n    image = \"x\"\n"),
            "{out}"
        );
        let table = settled.edited_table(0).unwrap();
        assert_eq!(table.get("limit").and_then(|v| v.as_integer()), Some(6));
    }
}
