//! The planned config.toml, and how apply reaches it one runner at a time.
//!
//! The planner edits a copy of the file into its final form, with `(known after apply)` where
//! GitLab will hand out an id or a token. Apply never re-derives an entry: when a runner's
//! steps reach its entry, the planned table is taken as it is, GitLab's credentials are filled
//! in, and the file is written, so that at any moment config.toml holds the finished runners
//! as planned and the others as they were.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use toml_edit::{DocumentMut, Item, Table};

use super::steps::AFTER_APPLY;
use crate::local::edit::set_scalar;
use crate::local::edits::Edits;
use crate::local::layout::{LocalDoc, Part};

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
        let mut filled: BTreeMap<usize, Table> = BTreeMap::new();
        for (&i, t) in &self.edits.edited {
            if let Some(r) = self.owner[i].filter(|r| done[*r]) {
                let mut t = t.clone();
                fill(&mut t, fills[r].as_ref())?;
                filled.insert(i, t);
            }
        }
        let mut appended = Vec::new();
        for (t, &r) in self.edits.appended.iter().zip(&self.appended) {
            if done[r] {
                let mut t = t.clone();
                fill(&mut t, fills[r].as_ref())?;
                appended.push(Cow::Owned(t));
            }
        }
        let part = |i: usize| {
            if !is_done(self.owner[i]) {
                return Part::AsRead;
            }
            match filled.get(&i) {
                Some(t) if !self.edits.removed[i] => Part::Planned(Cow::Borrowed(t)),
                _ => self.edits.part(i),
            }
        };
        Ok(self
            .original
            .render(&self.edits.head, part, appended.into_iter()))
    }

    /// config.toml as planned, with `(known after apply)` where GitLab's answers go.
    pub fn planned_text(&self) -> String {
        self.edits.render(&self.original)
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

/// A unified diff of config.toml with tokens masked. The diff is masked, not the files: a
/// changed token still shows as a changed line, and a large file is not copied twice.
pub fn unified_diff(name: &str, old: &str, new: &str) -> String {
    // Only what lies between the lines both files start and end with is split into lines
    // and diffed: for a large file with a few changes, the line tables would be most of the
    // memory a plan takes. The output is the same as the whole files' diff.
    let (skipped, old_mid, new_mid) = middle(old, new, CONTEXT);
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .diff_lines(old_mid, new_mid);
    let diff = diff
        .unified_diff()
        .context_radius(CONTEXT)
        .header(name, &format!("{name} (planned)"))
        .to_string();
    crate::secrets::mask(&shift_hunks(&diff, skipped))
}

const CONTEXT: usize = 3;

/// The parts of `old` and `new` between their common first and last lines, with `context`
/// lines of each kept, and how many lines come before them.
fn middle<'a>(old: &'a str, new: &'a str, context: usize) -> (usize, &'a str, &'a str) {
    let (o, n) = (old.as_bytes(), new.as_bytes());
    let same = o.iter().zip(n).take_while(|(a, b)| a == b).count();
    // Back to the start of the line the files first differ in, then `context` lines more.
    let mut start = o[..same]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    for _ in 0..context {
        start = match start.checked_sub(1) {
            Some(s) => o[..s]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1),
            None => 0,
        };
    }
    let room = o.len().min(n.len()) - start;
    let tail = o
        .iter()
        .rev()
        .zip(n.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    // Forward to the start of a line within the common end, then `context` lines more.
    let mut end = o.len() - tail;
    if end > start && o[end - 1] != b'\n' {
        end = o[end..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(o.len(), |i| end + i + 1);
    }
    for _ in 0..context {
        end = o[end..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(o.len(), |i| end + i + 1);
    }
    let new_end = n.len() - (o.len() - end);
    let skipped = o[..start].iter().filter(|b| **b == b'\n').count();
    (skipped, &old[start..end], &new[start..new_end])
}

/// Adds `by` to the line numbers of every hunk header (`@@ -a,b +c,d @@`).
fn shift_hunks(diff: &str, by: usize) -> String {
    if by == 0 {
        return diff.to_string();
    }
    let shift = |range: &str| -> String {
        let (sign, rest) = range.split_at(1);
        let (start, len) = match rest.split_once(',') {
            Some((s, l)) => (s, Some(l)),
            None => (rest, None),
        };
        let start = start.parse::<usize>().map_or(0, |s| s + by);
        match len {
            Some(l) => format!("{sign}{start},{l}"),
            None => format!("{sign}{start}"),
        }
    };
    let mut out = String::with_capacity(diff.len() + 64);
    for line in diff.split_inclusive('\n') {
        match line
            .strip_prefix("@@ ")
            .and_then(|r| r.split_once(" @@"))
            .and_then(|(ranges, rest)| ranges.split_once(' ').map(|(a, b)| (a, b, rest)))
        {
            Some((a, b, rest)) if a.starts_with('-') && b.starts_with('+') => {
                out.push_str(&format!("@@ {} {} @@{rest}", shift(a), shift(b)));
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(old: &str, new: &str) -> String {
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(CONTEXT)
            .header("f", "f (planned)")
            .to_string()
    }

    #[test]
    fn diffing_the_middle_gives_the_whole_files_diff() {
        let lines: Vec<String> = (0..40).map(|i| format!("line {i}\n")).collect();
        let base = lines.concat();
        let mut cases = vec![
            (base.clone(), base.replace("line 20\n", "line twenty\n")),
            (base.clone(), base.replace("line 0\n", "")),
            (base.clone(), base.replace("line 39\n", "line 39")),
            (base.clone(), format!("{base}line 40\n")),
            (
                base.clone(),
                base.replace("line 2\n", "x\n").replace("line 37\n", ""),
            ),
            (base.clone(), base.replace("line 1", "line 1x")),
            ("a\nb".to_string(), "a\nc".to_string()),
            (String::new(), "a\n".to_string()),
            ("same\n".to_string(), "same\n".to_string()),
        ];
        cases.push((base.replace("line 9\n", ""), base.clone()));
        for (old, new) in cases {
            let (skipped, o, n) = middle(&old, &new, CONTEXT);
            let got = shift_hunks(
                &similar::TextDiff::from_lines(o, n)
                    .unified_diff()
                    .context_radius(CONTEXT)
                    .header("f", "f (planned)")
                    .to_string(),
                skipped,
            );
            assert_eq!(got, whole(&old, &new), "{old:?} -> {new:?}");
        }
    }
}
