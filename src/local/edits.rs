//! Changes to a config.toml, held apart from the file they change: the globals as a document,
//! and only the entries a change touches as tables. The entries nobody touches stay the text
//! they were read as ([`super::layout`]), so the cost of a plan follows what it changes, not
//! the size of the file.

use std::collections::BTreeMap;

use toml_edit::{DocumentMut, Table};

use super::layout::{LocalDoc, Part};
use crate::plan::diff::Pair;

#[derive(Debug, Clone)]
pub struct Edits {
    /// The globals as they will be written.
    pub head: DocumentMut,
    /// Original entries as they will be written, by index: only those a change touched.
    pub edited: BTreeMap<usize, Table>,
    /// Original entries that will be removed.
    pub removed: Vec<bool>,
    /// New entries, after the original ones.
    pub appended: Vec<Table>,
}

impl Edits {
    /// No change yet.
    pub fn new(local: &LocalDoc) -> Self {
        Edits {
            head: local.head().clone(),
            edited: BTreeMap::new(),
            removed: vec![false; local.len()],
            appended: Vec::new(),
        }
    }

    /// Entry `i` as it will be written, to change it further.
    pub fn entry_mut(&mut self, local: &LocalDoc, i: usize) -> &mut Table {
        self.edited.entry(i).or_insert_with(|| local.entry(i))
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
    pub fn render_aligned(&mut self, local: &LocalDoc) -> (String, Vec<Pair>) {
        let removed = &self.removed;
        local.render_aligned(
            &self.head,
            parts(local.len(), |i| removed[i], &mut self.edited),
            &mut self.appended,
        )
    }
}

/// The part for each original entry in turn: removed where `removed` says so, else the table
/// in `planned` if there is one, else as read.
pub fn parts<'a>(
    len: usize,
    removed: impl Fn(usize) -> bool + 'a,
    planned: &'a mut BTreeMap<usize, Table>,
) -> impl Iterator<Item = Part<'a>> + 'a {
    let mut planned = planned.iter_mut().peekable();
    (0..len).map(move |i| {
        let t = planned.next_if(|(k, _)| **k == i).map(|(_, t)| t);
        match t {
            _ if removed(i) => Part::Removed,
            Some(t) => Part::Planned(t),
            None => Part::AsRead,
        }
    })
}
