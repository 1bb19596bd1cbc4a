//! Making a plan: the declared runners are matched to their entries ([`super::matcher`]),
//! each gets its action and steps ([`super::decide`]), managed runners that are no longer
//! declared are retired ([`super::retire`]), and the result is summed up.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::document::{PlannedDocument, place_new_global_tables};
use super::matcher::{self, Entry, Matcher, Owned};
use super::{Action, Change, Fingerprints, Plan, RunnerPlan, Side, Summary};
use crate::desired::{Desired, Runner};
use crate::diag::Problem;
use crate::keys::inventory;
use crate::local::LocalView;
use crate::local::edit::{Editor, KeyChange};
use crate::local::edits::Edits;
use crate::local::expand::Environment;
use crate::local::state::{Managed, State};
use crate::local::value::Secrets;
use crate::remote::RemoteView;

pub struct Inputs<'a> {
    pub desired: &'a Desired,
    pub local: &'a LocalView,
    pub state: &'a State,
    /// The ownership record's bytes as read, for the fingerprint.
    pub state_text: Option<&'a str>,
    pub secrets: &'a Secrets,
    /// GitLab's answers; `None` plans offline (actions that need GitLab stay pending).
    pub remote: Option<&'a RemoteView>,
    /// Limit the plan to these runners (names, or the base name of `count=` replicas).
    pub targets: &'a [String],
    /// Delete entries runnerform does not manage instead of leaving them alone.
    pub delete_unmanaged: bool,
    /// What `$VAR` in config.toml expands to.
    pub env: &'a Environment,
    /// This host's gitlab-runner system id, sent with a token verification.
    pub system_id: Option<&'a str>,
}

/// Everything a plan is being built from and into.
pub(super) struct Planning<'a> {
    pub inp: &'a Inputs<'a>,
    /// The declared GitLab URL.
    pub url: String,
    pub offline: bool,
    /// config.toml as planned: the globals, and the entries the plan touches.
    pub edits: Edits,
    pub editor: Editor<'a>,
    pub runner_indent: String,
    pub plans: Vec<RunnerPlan>,
    /// Per original entry: the runner whose steps change it.
    pub owner: Vec<Option<usize>>,
    /// For each new entry ([`Edits::appended`]): the runner whose steps write it.
    pub appended: Vec<usize>,
    /// Lookups made once, so that planning N runners takes time in proportion to N.
    pub index: Index<'a>,
}

/// Maps from names to what planning looks up by name, built once per plan.
pub(super) struct Index<'a> {
    managed: Owned<'a>,
    /// Every declared name and every name a declared runner was renamed from.
    declared: HashSet<&'a str>,
}

impl<'a> Index<'a> {
    pub fn new(d: &'a Desired, state: &'a State) -> Self {
        let managed = Owned::new(state);
        let mut declared = HashSet::with_capacity(d.runners.len());
        for r in &d.runners {
            declared.insert(r.name.value.as_str());
            if let Some(o) = &r.body.renamed_from {
                declared.insert(o.value.as_str());
            }
        }
        Index { managed, declared }
    }

    /// The ownership record's entry for a name.
    pub fn managed(&self, name: &str) -> Option<&'a Managed> {
        self.managed.get(name)
    }

    /// Whether a declared runner has this name, or was renamed from it.
    pub fn declared(&self, name: &str) -> bool {
        self.declared.contains(name)
    }
}

impl<'a> Planning<'a> {
    /// The ownership record's entry for a name.
    pub fn managed(&self, name: &str) -> Option<&'a Managed> {
        self.index.managed(name)
    }

    /// The planned table of an original entry.
    pub fn entry_table(&mut self, index: usize) -> &mut toml_edit::Table {
        self.edits.entry_mut(&self.inp.local.doc, index)
    }

    pub fn push(&mut self, p: RunnerPlan) -> usize {
        self.plans.push(p);
        self.plans.len() - 1
    }
}

pub(super) fn targeted(targets: &[String], name: &str, base: Option<&str>) -> bool {
    targets.is_empty()
        || targets
            .iter()
            .any(|t| t == name || base.is_some_and(|b| b == t))
}

pub(super) fn base_name(r: &Runner) -> Option<&str> {
    r.replica
        .and_then(|i| r.name.value.strip_suffix(&format!("-{i}")))
}

pub fn plan(inp: &Inputs) -> Result<Plan, Problem> {
    let d = inp.desired;
    check_targets(inp)?;
    let offline = inp.remote.is_none();
    let inv = inventory();
    let mut edits = Edits::new(&inp.local.doc);
    let mut editor = Editor::for_file(&inp.local.doc, inp.secrets);
    let mut globals = Vec::new();
    if inp.targets.is_empty() {
        editor.apply(
            edits.head.as_table_mut(),
            "",
            &d.config.globals,
            Some(&inv.root),
            "",
        );
        globals = local_changes(editor.take_changes());
        place_new_global_tables(&mut edits.head);
    }
    let entries: Vec<Entry> = matcher::entries(inp.local, inp.env);
    let runner_indent = editor.runner_key_indent().to_string();
    let mut p = Planning {
        inp,
        url: d
            .gitlab
            .as_ref()
            .map(|g| g.url.value.clone())
            .unwrap_or_default(),
        offline,
        edits,
        editor,
        runner_indent,
        plans: Vec::new(),
        owner: vec![None; entries.len()],
        appended: Vec::new(),
        index: Index::new(d, inp.state),
    };
    let mut matcher = Matcher::new(&entries);
    for r in &d.runners {
        p.declared(r, &mut matcher)?;
        p.edits.settle(&inp.local.doc);
    }
    p.retire(&mut matcher);
    finish(p, globals)
}

fn check_targets(inp: &Inputs) -> Result<(), Problem> {
    let d = inp.desired;
    if inp.targets.is_empty() {
        return Ok(());
    }
    let mut known: HashSet<&str> = inp.state.runners.iter().map(|m| m.name.as_str()).collect();
    for r in &d.runners {
        known.insert(r.name.value.as_str());
        known.extend(base_name(r));
    }
    for t in inp.targets {
        if !known.contains(t.as_str()) {
            let names: Vec<&str> = d.runners.iter().map(|r| r.name.value.as_str()).collect();
            return Err(
                Problem::error("unknown_target", format!("--target {t}: no such runner")).help(
                    match crate::desired::suggest_name(t, &names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("declared runners: {}", names.join(", ")),
                    },
                ),
            );
        }
    }
    Ok(())
}

/// Removes retired entries, sums up, fingerprints.
fn finish(mut p: Planning, globals: Vec<Change>) -> Result<Plan, Problem> {
    let inp = p.inp;
    p.editor.check_missing()?;
    let old_text = inp.local.text();
    let (new_text, pairs) = p.edits.render_aligned(&inp.local.doc);
    let new_text = crate::local::write::keep_line_endings(old_text, new_text);
    let config_changes = new_text != old_text || !inp.local.exists() && !new_text.is_empty();
    let diff = if config_changes {
        let name = inp.local.path.display().to_string();
        // The diff is masked, not the files: a changed token still shows as a changed line,
        // and a large file is not copied twice.
        crate::local::write::mode_lines(&inp.local.path, &new_text)
            + &crate::secrets::mask(&super::diff::unified(&name, old_text, &new_text, &pairs))
    } else {
        String::new()
    };
    let mut summary = Summary::default();
    for rp in &p.plans {
        match rp.action {
            Action::Create => summary.create += 1,
            Action::Adopt => summary.adopt += 1,
            Action::Update => summary.update += 1,
            Action::Replace => summary.replace += 1,
            Action::Recreate => summary.recreate += 1,
            Action::Rotate => summary.rotate += 1,
            Action::Delete => summary.delete += 1,
            Action::Unmanaged => summary.unmanaged += 1,
            Action::NoChange => {}
        }
        if rp.pending {
            summary.pending += 1;
        }
    }
    let changes_pending =
        p.plans.iter().any(|r| r.action.is_change()) || !globals.is_empty() || config_changes;
    let document = PlannedDocument {
        original: inp.local.doc.clone(),
        edits: p.edits,
        owner: p.owner,
        appended: p.appended,
    };
    Ok(Plan {
        format: super::FORMAT,
        runnerform_version: env!("CARGO_PKG_VERSION").to_string(),
        offline: p.offline,
        config_toml: inp.local.path.display().to_string(),
        targets: inp.targets.to_vec(),
        rotate_within: inp.remote.map_or(0, |v| v.rotate_within.max(0) as u64),
        delete_unmanaged: inp.delete_unmanaged,
        runners: p.plans,
        globals,
        service: None,
        summary,
        changes_pending,
        diff,
        fingerprints: fingerprints(inp),
        new_config: config_changes.then_some(new_text),
        document: Some(document),
    })
}

pub(super) fn local_changes(changes: Vec<KeyChange>) -> Vec<Change> {
    changes
        .into_iter()
        .map(|key| Change {
            side: Side::Local,
            key,
        })
        .collect()
}

pub fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn fingerprints(inp: &Inputs) -> Fingerprints {
    let mut parts: Vec<&[u8]> = Vec::new();
    for f in inp.desired.sources.files() {
        parts.push(f.text().as_bytes());
    }
    parts.extend(inp.secrets.values.iter().map(|(_, v)| v.as_bytes()));
    Fingerprints {
        desired: digest(&parts),
        config_toml: inp
            .local
            .original()
            .map_or_else(|| "absent".to_string(), super::digest_text),
        state: inp
            .state_text
            .map_or_else(|| "absent".to_string(), super::digest_text),
        gitlab: inp.remote.map_or_else(
            || "offline".to_string(),
            |v| {
                let seen = format!(
                    "{:?}",
                    (
                        &v.namespaces,
                        &v.runners,
                        &v.verified,
                        &v.claims,
                        &v.adopted,
                        &v.rejected
                    )
                );
                digest(&[seen.as_bytes()])
            },
        ),
        service: "none".to_string(),
    }
}

/// Whether two GitLab URLs name the same instance (trailing slash and the legacy `/ci`
/// suffix aside).
pub fn same_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim_end_matches('/')
            .trim_end_matches("/ci")
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_without_trailing_slash_or_legacy_ci_suffix() {
        assert!(same_url("https://gitlab.com/", "https://gitlab.com"));
        assert!(same_url("https://gitlab.com/ci", "https://gitlab.com"));
        assert!(!same_url("https://a.example", "https://b.example"));
    }
}
