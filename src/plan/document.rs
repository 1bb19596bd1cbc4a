//! The planned config.toml, and how apply reaches it one runner at a time.
//!
//! The planner edits a copy of the file into its final form, with `(known after apply)` where
//! GitLab will hand out an id or a token. Apply never re-derives an entry: when a runner's
//! steps reach its entry, the planned table is taken as it is, GitLab's credentials are filled
//! in, and the file is written, so that at any moment config.toml holds the finished runners
//! as planned and the others as they were.

use std::collections::BTreeMap;
use std::sync::Arc;

use toml_edit::{DocumentMut, Item, Table};

use super::steps::AFTER_APPLY;
use crate::local::edit::set_scalar;
use crate::local::edits::{Edited, Edits, parts};
use crate::local::layout::LocalDoc;

/// Keys GitLab's answer fills in, in the order gitlab-runner writes them.
pub const CREDENTIAL_KEYS: [&str; 4] = ["id", "token", "token_obtained_at", "token_expires_at"];

/// The final document, and for each entry whose runner's steps write it.
#[derive(Debug, Clone)]
pub struct PlannedDocument {
    /// config.toml as read: the local view's own copy, not another one.
    pub original: Arc<LocalDoc>,
    /// The changes the plan makes to it.
    pub edits: Edits,
    /// For each original entry: the runner (index in the plan) whose steps change it.
    pub owner: Vec<Option<usize>>,
    /// For each new entry ([`Edits::appended`]): the runner whose steps write it.
    pub appended: Vec<usize>,
}

/// Credentials GitLab handed out during apply, to fill into a planned entry.
#[derive(Debug, Clone, Default)]
pub struct Fill {
    pub id: Option<i64>,
    pub token: Option<String>,
    pub obtained_at: Option<String>,
    pub expires_at: Option<String>,
}

impl PlannedDocument {
    /// config.toml once the runners marked in `done` have carried out their entry step,
    /// with their credentials filled in (line endings as `toml_edit` writes them). `Err`
    /// names a key still unknown.
    pub fn assemble(&self, done: &[bool], fills: &[Option<Fill>]) -> Result<String, String> {
        let is_done = |r: Option<usize>| r.is_none_or(|r| done[r]);
        let mut planned: BTreeMap<usize, Edited> = BTreeMap::new();
        for (&i, e) in &self.edits.edited {
            if !is_done(self.owner[i]) || self.edits.removed[i] {
                continue;
            }
            let e = match (e, self.owner[i]) {
                // Written out with nothing left to fill in: as it is.
                (Edited::Text(text), r) if r.is_none() || !text.contains(AFTER_APPLY) => {
                    Edited::Text(text.clone())
                }
                (_, r) => {
                    let mut t = self.edits.edited_table(i).expect("edited").into_owned();
                    if let Some(r) = r {
                        fill(&mut t, fills[r].as_ref())?;
                    }
                    Edited::Table(t)
                }
            };
            planned.insert(i, e);
        }
        let mut appended = Vec::new();
        for (t, &r) in self.edits.appended.iter().zip(&self.appended) {
            if done[r] {
                let mut t = t.clone();
                fill(&mut t, fills[r].as_ref())?;
                appended.push(t);
            }
        }
        // An entry whose runner has not got this far stays as read, even if it goes.
        let removed = |i: usize| is_done(self.owner[i]) && self.edits.removed[i];
        let parts = parts(self.original.len(), removed, &mut planned);
        Ok(self.original.render(&self.edits.head, parts, &mut appended))
    }
}

/// Marks the credential keys of a planned entry as known only after apply.
pub fn await_credentials(t: &mut Table, keys: &[&str]) {
    for k in keys {
        set_scalar(t, k, AFTER_APPLY.into());
    }
}

fn fill(t: &mut Table, f: Option<&Fill>) -> Result<(), String> {
    for k in CREDENTIAL_KEYS {
        if t.get(k).and_then(Item::as_str) != Some(AFTER_APPLY) {
            continue;
        }
        let f = f.ok_or_else(|| format!("`{k}` is not known yet"))?;
        let value: toml_edit::Value = match k {
            "id" => f.id.ok_or("the id is not known yet")?.into(),
            "token" => f.token.clone().ok_or("the token is not known yet")?.into(),
            "token_obtained_at" => datetime(f.obtained_at.as_deref())?.into(),
            _ => datetime(f.expires_at.as_deref())?.into(),
        };
        set_scalar(t, k, value);
    }
    Ok(())
}

/// gitlab-runner writes "never expires" as year 1.
fn datetime(s: Option<&str>) -> Result<toml_edit::Datetime, String> {
    s.unwrap_or("0001-01-01T00:00:00Z")
        .parse()
        .map_err(|e| format!("GitLab sent a timestamp that is not RFC 3339: {e}"))
}

/// gitlab-runner writes global tables (`[session_server]`…) before `[[runners]]`, each after
/// a blank line; new ones go there too instead of after the last runner.
pub fn place_new_global_tables(doc: &mut DocumentMut) {
    let first_runner = doc
        .get("runners")
        .and_then(Item::as_array_of_tables)
        .and_then(|a| a.iter().filter_map(Table::position).min());
    for (_, item) in doc.as_table_mut().iter_mut() {
        if let Item::Table(t) = item
            && t.position().is_none()
        {
            t.decor_mut().set_prefix("\n");
            if let Some(pos) = first_runner {
                t.set_position(Some(pos - 1));
            }
        }
    }
}
