//! The one rule that links a declared runner to its config.toml entry: by the GitLab id the
//! ownership record holds, then by name, then by the name it was renamed from. Planning,
//! status and `--wait-online` all use it, so they never disagree about which entry is whose.

use std::collections::HashMap;

use crate::local::expand::Environment;
use crate::local::state::{Managed, State};
use crate::local::{Facts, LocalView};

/// A config.toml entry, typed as far as matching and planning need it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in the file's `[[runners]]` array.
    pub index: usize,
    pub name: String,
    /// GitLab's id; 0 when the entry has none.
    pub id: i64,
    /// The URL as written (may hold `$VAR`).
    pub url: String,
    /// The token as gitlab-runner sees it (`$VAR` expanded). Only ever compared and sent to
    /// GitLab, never shown.
    pub token: String,
    /// The token is a `$VAR` this process does not have: nothing can be concluded about it.
    pub token_unseen: bool,
}

impl Entry {
    pub fn from_facts(index: usize, f: &Facts, env: &Environment) -> Self {
        let raw_token = f.token.as_deref().unwrap_or_default();
        let token = env.expand(raw_token);
        Entry {
            index,
            name: f.name.clone().unwrap_or_default(),
            id: f.id,
            url: f.url.clone().unwrap_or_default(),
            token_unseen: raw_token.contains('$') && token.is_empty(),
            token,
        }
    }
}

/// Every entry of config.toml, in file order.
pub fn entries(local: &LocalView, env: &Environment) -> Vec<Entry> {
    local
        .doc
        .facts()
        .iter()
        .enumerate()
        .map(|(i, f)| Entry::from_facts(i, f, env))
        .collect()
}

/// The ownership record's runners by name, for lookups that would otherwise scan the record
/// once per runner. The first of a name wins, as with [`State::find`].
pub struct Owned<'a>(HashMap<&'a str, &'a Managed>);

impl<'a> Owned<'a> {
    pub fn new(state: &'a State) -> Self {
        let mut by_name = HashMap::with_capacity(state.runners.len());
        for m in &state.runners {
            by_name.entry(m.name.as_str()).or_insert(m);
        }
        Owned(by_name)
    }

    pub fn get(&self, name: &str) -> Option<&'a Managed> {
        self.0.get(name).copied()
    }

    /// A declared runner's record: under its name, else the name it was renamed from.
    pub fn of(&self, name: &str, old_name: Option<&str>) -> Option<&'a Managed> {
        self.get(name)
            .or_else(|| old_name.and_then(|o| self.get(o)))
    }
}

/// Several unmanaged entries share the declared name and none can be told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ambiguous(pub usize);

/// Hands out each entry to at most one declared runner, in declaration order.
pub struct Matcher<'a> {
    entries: &'a [Entry],
    by_id: HashMap<i64, Vec<usize>>,
    by_name: HashMap<&'a str, Vec<usize>>,
    claimed: Vec<bool>,
}

impl<'a> Matcher<'a> {
    pub fn new(entries: &'a [Entry]) -> Self {
        let mut by_id: HashMap<i64, Vec<usize>> = HashMap::new();
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if e.id > 0 {
                by_id.entry(e.id).or_default().push(i);
            }
            by_name.entry(e.name.as_str()).or_default().push(i);
        }
        Matcher {
            entries,
            by_id,
            by_name,
            claimed: vec![false; entries.len()],
        }
    }

    /// The entry of a declared runner (`name`, `renamed_from`, its ownership record), claimed
    /// so that no other runner gets it.
    pub fn claim(
        &mut self,
        managed: Option<&Managed>,
        name: &str,
        old_name: Option<&str>,
    ) -> Result<Option<&'a Entry>, Ambiguous> {
        let found = self.find(managed, name, old_name)?;
        if let Some(i) = found {
            self.claimed[i] = true;
        }
        Ok(found.map(|i| &self.entries[i]))
    }

    /// Claims the entry of a managed runner that is no longer declared: by id, else by name.
    pub fn claim_retired(&mut self, m: &Managed) -> Option<&'a Entry> {
        let free = |i: &&usize| !self.claimed[**i];
        let i = (m.id > 0)
            .then(|| self.by_id.get(&m.id)?.iter().find(free).copied())
            .flatten()
            .or_else(|| {
                self.by_name
                    .get(m.name.as_str())?
                    .iter()
                    .find(free)
                    .copied()
            })?;
        self.claimed[i] = true;
        Some(&self.entries[i])
    }

    /// Entries no runner claimed, in file order.
    pub fn unclaimed(&self) -> impl Iterator<Item = &'a Entry> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.claimed[*i])
            .map(|(_, e)| e)
    }

    fn find(
        &self,
        managed: Option<&Managed>,
        name: &str,
        old_name: Option<&str>,
    ) -> Result<Option<usize>, Ambiguous> {
        let free = |i: &&usize| !self.claimed[**i];
        if let Some(m) = managed.filter(|m| m.id > 0)
            && let Some(i) = self
                .by_id
                .get(&m.id)
                .and_then(|v| v.iter().find(free).copied())
        {
            return Ok(Some(i));
        }
        for n in std::iter::once(name).chain(old_name) {
            let by_name: Vec<usize> = self
                .by_name
                .get(n)
                .map(|v| v.iter().filter(free).copied().collect())
                .unwrap_or_default();
            match by_name.len() {
                0 => continue,
                1 => return Ok(Some(by_name[0])),
                // Entries without a name (`renamed_from ""`) differ in nothing a declaration
                // can name, so they are taken in file order, which is the order import writes
                // them.
                _ if n.is_empty() => return Ok(Some(by_name[0])),
                k => return Err(Ambiguous(k)),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: usize, name: &str, id: i64) -> Entry {
        Entry {
            index,
            name: name.into(),
            id,
            url: String::new(),
            token: String::new(),
            token_unseen: false,
        }
    }

    fn managed(name: &str, id: i64) -> Managed {
        Managed {
            name: name.into(),
            url: String::new(),
            id,
            scope: None,
        }
    }

    #[test]
    fn the_recorded_id_wins_over_the_name() {
        let es = [entry(0, "a", 1), entry(1, "b", 2)];
        let mut m = Matcher::new(&es);
        let got = m.claim(Some(&managed("a", 2)), "a", None).unwrap();
        assert_eq!(got.map(|e| e.index), Some(1));
        // The entry named `a` is still free for another runner.
        let got = m.claim(None, "a", None).unwrap();
        assert_eq!(got.map(|e| e.index), Some(0));
    }

    #[test]
    fn a_rename_finds_the_entry_under_its_old_name_and_each_entry_is_claimed_once() {
        let es = [entry(0, "old", 0)];
        let mut m = Matcher::new(&es);
        assert_eq!(
            m.claim(None, "new", Some("old")).unwrap().map(|e| e.index),
            Some(0)
        );
        assert!(m.claim(None, "old", None).unwrap().is_none());
        assert_eq!(m.unclaimed().count(), 0);
    }

    #[test]
    fn two_unmanaged_entries_with_the_declared_name_are_ambiguous() {
        let es = [entry(0, "a", 0), entry(1, "a", 0)];
        let mut m = Matcher::new(&es);
        assert_eq!(m.claim(None, "a", None).unwrap_err(), Ambiguous(2));
    }

    #[test]
    fn retired_runners_are_found_by_id_then_name() {
        let es = [entry(0, "x", 7), entry(1, "gone", 0)];
        let mut m = Matcher::new(&es);
        assert_eq!(
            m.claim_retired(&managed("renamed-in-file", 7))
                .map(|e| e.index),
            Some(0)
        );
        assert_eq!(
            m.claim_retired(&managed("gone", 0)).map(|e| e.index),
            Some(1)
        );
        assert!(m.claim_retired(&managed("gone", 0)).is_none());
    }
}
