//! Changes to a config.toml, held apart from the file they change: the globals as a document,
//! and only the entries a change touches as tables. The entries nobody touches stay the text
//! they were read as ([`super::layout`]), so the cost of a plan follows what it changes, not
//! the size of the file.

use std::borrow::Cow;
use std::collections::BTreeMap;

use toml_edit::{DocumentMut, Table};

use super::layout::{LocalDoc, Part};

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
    pub fn render(&self, local: &LocalDoc) -> String {
        local.render(
            &self.head,
            |i| self.part(i),
            self.appended.iter().map(Cow::Borrowed),
        )
    }

    /// What takes the place of original entry `i` once every change is made.
    pub fn part(&self, i: usize) -> Part<'_> {
        if self.removed[i] {
            Part::Removed
        } else if let Some(t) = self.edited.get(&i) {
            Part::Planned(Cow::Borrowed(t))
        } else {
            Part::AsRead
        }
    }
}
