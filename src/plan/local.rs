//! Planning against config.toml and the ownership record.
//!
//! Declared runners are matched to config.toml entries by the GitLab id runnerform recorded,
//! then by name, then by the name they were renamed from. Each match becomes an adopt, an
//! update or nothing; a declared runner without an entry needs GitLab (create, or adopt by
//! token); a managed entry that is no longer declared is deleted; anything else is left alone.

use sha2::{Digest, Sha256};
use toml_edit::{DocumentMut, Item, Table};

use super::{Action, Change, Fingerprints, Plan, RunnerPlan, Side, Summary, gitlab};
use crate::desired::{Desired, Runner};
use crate::diag::Problem;
use crate::keys::inventory;
use crate::local::LocalView;
use crate::local::edit::{Editor, KeyChange, set_scalar, shown};
use crate::local::state::{Managed, State};
use crate::local::value::Secrets;
use crate::remote::{Questions, RemoteState, RemoteView};

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
}

/// A config.toml entry, as far as matching needs it.
struct EntryInfo {
    name: String,
    id: i64,
    url: String,
    /// Only ever compared and sent to GitLab, never shown. gitlab-runner expands `$VAR` in
    /// it, so this is the expanded value.
    token: String,
    /// The token is a `$VAR` reference to a variable this process does not have: nothing can
    /// be concluded about it.
    token_unseen: bool,
}

fn entry_info(t: &Table) -> EntryInfo {
    let raw_token = t.get("token").and_then(Item::as_str).unwrap_or_default();
    EntryInfo {
        name: t
            .get("name")
            .and_then(Item::as_str)
            .unwrap_or_default()
            .to_string(),
        id: t.get("id").and_then(Item::as_integer).unwrap_or(0),
        url: t
            .get("url")
            .and_then(Item::as_str)
            .unwrap_or_default()
            .to_string(),
        token: expand_env(raw_token),
        token_unseen: raw_token.contains('$') && expand_env(raw_token).is_empty(),
    }
}

fn targeted(targets: &[String], name: &str, base: Option<&str>) -> bool {
    targets.is_empty()
        || targets
            .iter()
            .any(|t| t == name || base.is_some_and(|b| b == t))
}

fn base_name(r: &Runner) -> Option<&str> {
    r.replica
        .and_then(|i| r.name.value.strip_suffix(&format!("-{i}")))
}

pub fn plan(inp: &Inputs) -> Result<Plan, Problem> {
    let d = inp.desired;
    let offline = inp.remote.is_none();
    let inv = inventory();
    for t in inp.targets {
        let known = d
            .runners
            .iter()
            .any(|r| &r.name.value == t || base_name(r) == Some(t.as_str()))
            || inp.state.find(t).is_some();
        if !known {
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
    let url = d
        .gitlab
        .as_ref()
        .map(|g| g.url.value.clone())
        .unwrap_or_default();
    let mut doc: DocumentMut = inp.local.doc.clone();
    let mut editor = Editor::new(&doc, inp.secrets);

    let mut globals = Vec::new();
    if inp.targets.is_empty() {
        editor.apply(
            doc.as_table_mut(),
            "",
            &d.config.globals,
            Some(&inv.root),
            "",
        );
        globals = local_changes(editor.take_changes());
        place_new_global_tables(&mut doc);
    }

    let entries: Vec<EntryInfo> = inp.local.runners().into_iter().map(entry_info).collect();
    let mut claimed = vec![false; entries.len()];
    let mut new_state = State {
        format: inp.state.format,
        runners: Vec::new(),
        pending_deletes: inp.state.pending_deletes.clone(),
        pending_creates: inp.state.pending_creates.clone(),
    };
    let mut plans = Vec::new();
    let runner_indent = editor.runner_key_indent(&doc);

    for r in &d.runners {
        let name = &r.name.value;
        let old_name = r.body.renamed_from.as_ref().map(|o| o.value.as_str());
        let managed = inp
            .state
            .find(name)
            .or_else(|| old_name.and_then(|o| inp.state.find(o)));
        if !targeted(inp.targets, name, base_name(r)) {
            if let Some(m) = managed {
                new_state.runners.push(m.clone());
            }
            continue;
        }
        let found = match find_entry(&entries, &claimed, managed, name, old_name) {
            Ok(f) => f,
            Err(n) => {
                return Err(Problem::error(
                    "ambiguous_entry",
                    format!("config.toml has {n} entries named `{name}`"),
                )
                .help(
                    "runnerform cannot tell which one is the declared runner: remove the \
                     duplicates (gitlab-runner register appends a new entry on every run)",
                ));
            }
        };
        let Some(i) = found else {
            inp.secrets.check_resolved(&r.body.settings)?;
            let mut p = missing_runner(r, managed, offline);
            if let Some(view) = inp.remote
                && r.body.token.is_some()
            {
                match view.adopted.get(name) {
                    Some(Ok(id)) => {
                        p.id = Some(*id);
                        p.reason = format!(
                            "not in config.toml; GitLab knows its token as runner {id}: the \
                             entry is written, nothing is registered"
                        );
                        if let Some(RemoteState::Exists(rr)) = view.runner(*id) {
                            p.changes = gitlab::attr_changes(r, rr);
                        }
                    }
                    Some(Err((status, message))) => {
                        return Err(Problem::error(
                            "token_rejected",
                            format!(
                                "GitLab rejects the token declared for runner {name} ({status}: \
                                 {message})"
                            ),
                        )
                        .at(&d.sources, r.body.token.as_ref().map_or(r.name.loc, |t| t.loc), "this token")
                        .help("a token for adoption must be a live runner authentication token (glrt-…); remove the token line to register a new runner instead"));
                    }
                    None => {}
                }
            }
            if let Some(id) = inp.remote.and_then(|v| v.unclaimed_for(name)) {
                p.reason = format!(
                    "an earlier apply registered it as runner {id} but stopped before writing \
                     its token: that runner's token is reset and written, nothing is registered \
                     twice"
                );
                p.id = Some(id);
            }
            plans.push(p);
            if let Some(m) = managed {
                new_state.runners.push(m.clone());
            }
            continue;
        };
        claimed[i] = true;
        let e = &entries[i];
        let mut changes = Vec::new();
        let table = runner_table(&mut doc, i);
        if e.name != *name {
            set_scalar(table, "name", name.as_str().into());
            changes.push(Change {
                side: Side::Local,
                key: KeyChange {
                    path: "name".into(),
                    old: Some(shown(&e.name.as_str().into())),
                    new: Some(shown(&name.as_str().into())),
                },
            });
        }
        // An entry URL that expands to nothing names a variable this process lacks: that is
        // no reason to replace anything.
        let entry_url = expand_env(&e.url);
        if e.url.is_empty() && !url.is_empty() && !crate::import::is_placeholder_url(&url) {
            // gitlab-runner cannot use an entry without a URL; the declared one is the answer.
            set_scalar(table, "url", url.as_str().into());
            changes.push(Change {
                side: Side::Local,
                key: KeyChange {
                    path: "url".into(),
                    old: None,
                    new: Some(shown(&url.as_str().into())),
                },
            });
        } else if !url.is_empty() && !entry_url.is_empty() && !same_url(&entry_url, &url) {
            plans.push(RunnerPlan {
                name: name.clone(),
                action: Action::Replace,
                reason: format!(
                    "registered with {}, declared for {url}: a runner cannot move between GitLab \
                     instances, so a new one is registered on {url}; the old one stays on {} \
                     until you delete it there",
                    e.url, e.url
                ),
                pending: offline,
                previous_name: old_name.map(str::to_string),
                // The old id belongs to another GitLab: it must never be sent to this one.
                id: None,
                changes: Vec::new(),
            });
            if let Some(m) = managed {
                new_state.runners.push(m.clone());
            }
            continue;
        }
        editor.apply(
            table,
            &runner_indent,
            &r.body.settings,
            Some(inv.runner()),
            "",
        );
        changes.extend(local_changes(editor.take_changes()));
        let mut id = e.id;
        let mut remote_action = None;
        if let Some(view) = inp.remote {
            if id <= 0 && !e.token_unseen {
                match view.verified.get(&e.token) {
                    Some(Ok(v)) => id = *v,
                    Some(Err((status, msg))) => {
                        remote_action = Some((
                            Action::Recreate,
                            format!(
                                "GitLab rejects the entry's token ({status}: {msg}): a new runner \
                                 is registered and its token written"
                            ),
                        ))
                    }
                    None => {
                        remote_action = Some((
                            Action::Recreate,
                            "the entry has neither a GitLab id nor a token: a new runner is \
                             registered and its token written"
                                .to_string(),
                        ))
                    }
                }
            }
            match (remote_action.is_none(), view.runner(id)) {
                (false, _) => {}
                (true, Some(RemoteState::Gone { status, message })) => {
                    remote_action = Some((
                        Action::Recreate,
                        format!(
                            "GitLab answered {status} for runner {id} ({message}): it was \
                             deleted or its owner is gone, so a new one is registered"
                        ),
                    ))
                }
                (true, Some(RemoteState::Exists(rr))) => {
                    if gitlab::scope_matches(r, rr, view) == Some(false) {
                        remote_action = Some((
                            Action::Replace,
                            format!(
                                "declared as a {} runner, registered as {} {id}: the owner \
                                 cannot change in place, so a new one is registered and the old \
                                 one deleted",
                                r.body
                                    .scope
                                    .as_ref()
                                    .map_or(String::new(), |s| s.value.to_string()),
                                rr.runner_type
                            ),
                        ));
                    } else {
                        changes.extend(gitlab::attr_changes(r, rr));
                        if let Some((status, message)) = view.rejected.get(&id) {
                            remote_action = Some((
                                Action::Rotate,
                                format!(
                                    "runner {id} exists but GitLab rejects the entry's token \
                                     ({status}: {message}); it was reset elsewhere, so a new \
                                     token is issued for the same runner"
                                ),
                            ));
                        } else if let Some(expires) = token_expiry(runner_table(&mut doc, i))
                            && expires - view.now < view.rotate_within
                        {
                            remote_action = Some((
                                Action::Rotate,
                                format!(
                                    "its token expires {}: it is reset now and the new one \
                                     written",
                                    if expires <= view.now {
                                        "has expired".to_string()
                                    } else {
                                        format!("in {}", human_secs(expires - view.now))
                                    }
                                ),
                            ));
                        }
                    }
                }
                (true, None) => {}
            }
        }
        let (action, reason) = remote_action.unwrap_or_else(|| match managed {
            None => (
                Action::Adopt,
                format!(
                    "found in config.toml as `{}`; runnerform takes ownership without \
                     registering anything",
                    e.name
                ),
            ),
            Some(_) if e.name != *name => (
                Action::Update,
                if changes.len() == 1 {
                    format!("renamed from `{}`; the registration is kept", e.name)
                } else {
                    format!(
                        "renamed from `{}` (the registration is kept), and config.toml differs \
                         from the declaration",
                        e.name
                    )
                },
            ),
            Some(_) if !changes.is_empty() => {
                let local = changes.iter().any(|c| c.side == Side::Local);
                let remote = changes.iter().any(|c| c.side == Side::Gitlab);
                let what = match (local, remote) {
                    (true, true) => "config.toml and GitLab differ",
                    (false, true) => "GitLab differs",
                    _ => "config.toml differs",
                };
                (Action::Update, format!("{what} from the declaration"))
            }
            Some(_) => (Action::NoChange, "matches the declaration".to_string()),
        });
        new_state.runners.push(Managed {
            name: name.clone(),
            url: url.clone(),
            id: if id > 0 {
                id
            } else {
                managed.map_or(0, |m| m.id)
            },
            scope: r
                .body
                .scope
                .as_ref()
                .map(|s| s.value.to_string())
                .or_else(|| managed.and_then(|m| m.scope.clone())),
        });
        plans.push(RunnerPlan {
            name: name.clone(),
            action,
            reason: editor.reason_with_kept(reason),
            pending: false,
            previous_name: (e.name != *name).then(|| e.name.clone()),
            id: (id > 0).then_some(id),
            changes,
        });
    }

    // Managed runners that are no longer declared.
    let mut remove = Vec::new();
    for m in &inp.state.runners {
        let declared = d.runners.iter().any(|r| {
            r.name.value == m.name
                || r.body
                    .renamed_from
                    .as_ref()
                    .is_some_and(|o| o.value == m.name)
        });
        if declared {
            continue;
        }
        if !targeted(inp.targets, &m.name, None) {
            new_state.runners.push(m.clone());
            continue;
        }
        let idx = entries
            .iter()
            .enumerate()
            .position(|(i, e)| !claimed[i] && ((m.id > 0 && e.id == m.id) || e.name == m.name));
        if let Some(i) = idx {
            claimed[i] = true;
            remove.push(i);
        }
        if offline && m.id > 0 {
            new_state.pending_deletes.push(m.clone());
        }
        let gone = if offline {
            " Offline, only its config.toml entry is removed; the next online apply deletes it \
             on GitLab."
        } else {
            ""
        };
        plans.push(RunnerPlan {
            name: m.name.clone(),
            action: Action::Delete,
            reason: format!("managed by runnerform and no longer declared.{gone}"),
            pending: false,
            previous_name: None,
            id: (m.id > 0).then_some(m.id),
            changes: Vec::new(),
        });
    }
    // Deletes that an offline apply left for GitLab.
    if !offline {
        for m in std::mem::take(&mut new_state.pending_deletes) {
            plans.push(RunnerPlan {
                name: m.name.clone(),
                action: Action::Delete,
                reason: "removed from config.toml by an offline apply; now deleted on GitLab"
                    .into(),
                pending: false,
                previous_name: None,
                id: Some(m.id),
                changes: Vec::new(),
            });
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if claimed[i] || !inp.targets.is_empty() {
            continue;
        }
        if inp.delete_unmanaged {
            remove.push(i);
            if offline && e.id > 0 {
                new_state.pending_deletes.push(Managed {
                    name: e.name.clone(),
                    url: e.url.clone(),
                    id: e.id,
                    scope: None,
                });
            }
            plans.push(RunnerPlan {
                name: e.name.clone(),
                action: Action::Delete,
                reason: "not declared and not managed by runnerform; deleted because of \
                         --delete-unmanaged"
                    .into(),
                pending: false,
                previous_name: None,
                id: (e.id > 0).then_some(e.id),
                changes: Vec::new(),
            });
            continue;
        }
        plans.push(RunnerPlan {
            name: e.name.clone(),
            action: Action::Unmanaged,
            reason: "in config.toml but neither declared nor managed by runnerform; left alone"
                .into(),
            pending: false,
            previous_name: None,
            id: (e.id > 0).then_some(e.id),
            changes: Vec::new(),
        });
    }
    remove.sort_unstable();
    if let Some(Item::ArrayOfTables(a)) = doc.get_mut("runners") {
        for i in remove.iter().rev() {
            a.remove(*i);
        }
        if a.is_empty() {
            doc.remove("runners");
        }
    }

    editor.check_missing()?;
    let old_text = inp.local.text();
    let new_text = crate::local::write::keep_line_endings(old_text, &doc.to_string());
    let new_config = (new_text != old_text || !inp.local.exists() && !new_text.is_empty())
        .then(|| new_text.clone());
    let state_changed = new_state.runners != inp.state.runners
        || new_state.pending_deletes != inp.state.pending_deletes
        || (inp.state_text.is_none() && !new_state.runners.is_empty());
    let diff = if new_config.is_some() {
        crate::local::write::mode_lines(&inp.local.path, &new_text)
            + &unified_diff(&inp.local.path.display().to_string(), old_text, &new_text)
    } else {
        String::new()
    };
    let mut summary = Summary::default();
    for p in &plans {
        match p.action {
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
        if p.pending {
            summary.pending += 1;
        }
    }
    let changes_pending =
        plans.iter().any(|p| p.action.is_change()) || !globals.is_empty() || new_config.is_some();
    Ok(Plan {
        format: super::FORMAT,
        runnerform_version: env!("CARGO_PKG_VERSION").to_string(),
        offline,
        config_toml: inp.local.path.display().to_string(),
        targets: inp.targets.to_vec(),
        rotate_within: inp.remote.map_or(0, |v| v.rotate_within.max(0) as u64),
        delete_unmanaged: inp.delete_unmanaged,
        runners: plans,
        globals,
        service: None,
        summary,
        changes_pending,
        diff,
        fingerprints: fingerprints(inp),
        new_config,
        new_state: state_changed.then_some(new_state),
    })
}

/// gitlab-runner writes global tables (`[session_server]`…) before `[[runners]]`, each after
/// a blank line; new ones go there too instead of after the last runner.
fn place_new_global_tables(doc: &mut DocumentMut) {
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

/// What a plan needs to ask GitLab: declared groups and projects, the runners in config.toml
/// and in the ownership record, and the tokens of entries that have no id.
pub fn questions(d: &Desired, local: &LocalView, state: &State) -> Questions {
    let mut q = Questions::default();
    for r in &d.runners {
        match r.body.scope.as_ref().map(|s| &s.value) {
            Some(crate::desired::Scope::Group(crate::desired::Target::Path(p))) => {
                q.namespaces.push(("groups".into(), p.clone()))
            }
            Some(crate::desired::Scope::Project(crate::desired::Target::Path(p))) => {
                q.namespaces.push(("projects".into(), p.clone()))
            }
            _ => {}
        }
    }
    q.namespaces.sort();
    q.namespaces.dedup();
    let declared = |n: &str| {
        d.runners.iter().any(|r| {
            r.name.value == n || r.body.renamed_from.as_ref().is_some_and(|o| o.value == n)
        }) || state.find(n).is_some()
    };
    for e in local.runners().into_iter().map(entry_info) {
        if !declared(&e.name) {
            continue;
        }
        if e.id > 0 {
            q.runner_ids.push(e.id);
        } else if !e.token.is_empty() {
            q.tokens.push(e.token);
        }
    }
    q.runner_ids.extend(
        state
            .runners
            .iter()
            .chain(&state.pending_deletes)
            .map(|m| m.id),
    );
    q.intents = state
        .pending_creates
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.list_path.clone(),
                i.runner_type.clone(),
                i.description.clone(),
            )
        })
        .collect();
    q
}

/// `token_expires_at` of an entry in Unix seconds; `None` when the token never expires.
fn token_expiry(t: &Table) -> Option<i64> {
    let dt = t.get("token_expires_at")?.as_datetime()?;
    let date = dt.date?;
    let (hour, minute, second) = dt.time.map_or((0, 0, 0), |t| {
        (
            i64::from(t.hour),
            i64::from(t.minute),
            i64::from(t.second.unwrap_or(0)),
        )
    });
    if date.year <= 1 {
        return None;
    }
    let (y, m, d) = (
        i64::from(date.year),
        i64::from(date.month),
        i64::from(date.day),
    );
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let offset = match dt.offset {
        Some(toml_edit::Offset::Custom { minutes }) => i64::from(minutes) * 60,
        _ => 0,
    };
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn human_secs(s: i64) -> String {
    match s {
        s if s >= 86_400 => format!("{} days", s / 86_400),
        s if s >= 3600 => format!("{} hours", s / 3600),
        s => format!("{} minutes", (s / 60).max(1)),
    }
}

fn local_changes(changes: Vec<KeyChange>) -> Vec<Change> {
    changes
        .into_iter()
        .map(|key| Change {
            side: Side::Local,
            key,
        })
        .collect()
}

fn runner_table(doc: &mut DocumentMut, i: usize) -> &mut Table {
    doc.get_mut("runners")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|a| a.get_mut(i))
        .expect("entry index comes from the same document")
}

/// The entry for a declared runner: by recorded id, by name, by previous name. `Err(n)` when
/// `n` unmanaged entries share the name and none can be told apart.
fn find_entry(
    entries: &[EntryInfo],
    claimed: &[bool],
    managed: Option<&Managed>,
    name: &str,
    old_name: Option<&str>,
) -> Result<Option<usize>, usize> {
    let free = |i: &usize| !claimed[*i];
    if let Some(m) = managed.filter(|m| m.id > 0)
        && let Some(i) = (0..entries.len())
            .filter(free)
            .find(|&i| entries[i].id == m.id)
    {
        return Ok(Some(i));
    }
    for n in std::iter::once(name).chain(old_name) {
        let by_name: Vec<usize> = (0..entries.len())
            .filter(free)
            .filter(|&i| entries[i].name == n)
            .collect();
        match by_name.len() {
            0 => continue,
            1 => return Ok(Some(by_name[0])),
            // Entries without a name (`renamed_from ""`) differ in nothing a declaration can
            // name, so they are taken in file order, which is the order import writes them.
            _ if n.is_empty() => return Ok(Some(by_name[0])),
            k => return Err(k),
        }
    }
    Ok(None)
}

fn missing_runner(r: &Runner, managed: Option<&Managed>, offline: bool) -> RunnerPlan {
    let (action, reason) = match (&r.body.token, managed) {
        (Some(t), _) => (
            Action::Adopt,
            format!(
                "not in config.toml; the existing runner with the token from {} is verified and \
                 written, never registered again",
                t.source
            ),
        ),
        (None, Some(m)) if m.id > 0 => (
            Action::Recreate,
            format!(
                "managed runner {} (id {}) is missing from config.toml and its token is lost: a \
                 new runner is registered and the old one deleted",
                m.name, m.id
            ),
        ),
        (None, _) if r.body.registration_token.is_some() => (
            Action::Create,
            "declared, not in config.toml: registered with its registration token (the legacy \
             workflow)"
                .to_string(),
        ),
        (None, _) => (
            Action::Create,
            "declared, not in config.toml and not registered by runnerform".to_string(),
        ),
    };
    RunnerPlan {
        name: r.name.value.clone(),
        action,
        reason,
        pending: offline,
        previous_name: None,
        id: managed.filter(|m| m.id > 0).map(|m| m.id),
        changes: Vec::new(),
    }
}

/// gitlab-runner expands `$VAR` and `${VAR}` in `url` when it loads config.toml.
pub(crate) fn expand_env(s: &str) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let (name, after) = if let Some(r) = rest.strip_prefix('{') {
            match r.find('}') {
                Some(j) => (&r[..j], &r[j + 1..]),
                None => (r, ""),
            }
        } else {
            let j = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..j], &rest[j..])
        };
        out.push_str(&std::env::var(name).unwrap_or_default());
        rest = after;
    }
    out.push_str(rest);
    out
}

fn same_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim_end_matches('/')
            .trim_end_matches("/ci")
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

pub(super) fn digest(parts: &[&[u8]]) -> String {
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
    let secret_values: Vec<&[u8]> = inp
        .secrets
        .values
        .iter()
        .map(|(_, v)| v.as_bytes())
        .collect();
    parts.extend(secret_values);
    Fingerprints {
        desired: digest(&parts),
        config_toml: inp
            .local
            .original
            .as_deref()
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
                        &v.unclaimed,
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

/// A unified diff of config.toml with tokens masked on both sides.
pub fn unified_diff(name: &str, old: &str, new: &str) -> String {
    let old = crate::secrets::mask(old);
    let new = crate::secrets::mask(new);
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(name, &format!("{name} (planned)"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion_as_gitlab_runner_does_it() {
        // SAFETY: test-local variable name; no other thread reads it.
        unsafe { std::env::set_var("RF_TEST_URL_HOST", "gitlab.test") };
        assert_eq!(
            expand_env("https://$RF_TEST_URL_HOST/"),
            "https://gitlab.test/"
        );
        assert_eq!(
            expand_env("https://${RF_TEST_URL_HOST}"),
            "https://gitlab.test"
        );
        assert_eq!(expand_env("plain"), "plain");
    }

    #[test]
    fn urls_compare_without_trailing_slash_or_legacy_ci_suffix() {
        assert!(same_url("https://gitlab.com/", "https://gitlab.com"));
        assert!(same_url("https://gitlab.com/ci", "https://gitlab.com"));
        assert!(!same_url("https://a.example", "https://b.example"));
    }
}
