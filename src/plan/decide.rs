//! Deciding what happens to each declared runner, and the steps that make it happen.
//!
//! A runner without an entry is registered (or adopted by its token); a runner with one is
//! adopted, updated, rotated, recreated or replaced depending on what GitLab says of it. The
//! steps name every effect: a create registers, then writes the whole entry, then records
//! ownership; a replace registers anew before the old runner is deleted.

use toml_edit::Item;

use super::document::{CREDENTIAL_KEYS, await_credentials};
use super::make::{Planning, base_name, local_changes, same_url, targeted};
use super::matcher::{Entry, Matcher};
use super::reason::Reason;
use super::steps::{
    AFTER_APPLY, CLAIM_MARKER, EntryKey, Request, Step, delete_runner, reset_token,
    update_attributes, verify,
};
use super::{Action, Change, RunnerPlan, Side, gitlab};
use crate::desired::Runner;
use crate::diag::Problem;
use crate::keys::inventory;
use crate::local::edit::{KeyChange, set_scalar, shown};
use crate::local::state::Managed;
use crate::remote::{Claim, RemoteState};

impl Planning<'_> {
    /// Plans one declared runner.
    pub fn declared(&mut self, r: &Runner, matcher: &mut Matcher) -> Result<(), Problem> {
        let name = &r.name.value;
        let old_name = r.body.renamed_from.as_ref().map(|o| o.value.as_str());
        let managed = self
            .managed(name)
            .or_else(|| old_name.and_then(|o| self.managed(o)));
        if !targeted(self.inp.targets, name, base_name(r)) {
            return Ok(());
        }
        let entry = matcher.claim(managed, name, old_name).map_err(|n| {
            Problem::error(
                "ambiguous_entry",
                format!("config.toml has {} entries named `{name}`", n.0),
            )
            .help(
                "runnerform cannot tell which one is the declared runner: remove the \
                 duplicates (gitlab-runner register appends a new entry on every run)",
            )
        })?;
        match entry {
            Some(e) => self.with_entry(r, e, managed),
            None => self.without_entry(r, managed),
        }
    }

    /// The ownership record's entry for a declared runner.
    fn own(&self, r: &Runner, id: Option<i64>, managed: Option<&Managed>) -> Step {
        Step::Own {
            url: self.url.clone(),
            id,
            scope: r
                .body
                .scope
                .as_ref()
                .map(|s| s.value.to_string())
                .or_else(|| managed.and_then(|m| m.scope.clone())),
        }
    }

    /// A declared runner that config.toml has no entry for.
    fn without_entry(&mut self, r: &Runner, managed: Option<&Managed>) -> Result<(), Problem> {
        let name = r.name.value.clone();
        let view = self.inp.remote;
        // A new entry cannot be written without its secret settings.
        self.inp.secrets.check_resolved(&r.body.settings)?;
        let mut plan = RunnerPlan::new(&name, Action::Create, Reason::NotRegistered, "");
        plan.pending = self.offline;
        let mut known_id = None;
        let mut register = true;
        if let Some(t) = &r.body.token {
            plan.action = Action::Adopt;
            plan.reason_code = Reason::AdoptByToken;
            plan.reason = format!(
                "not in config.toml; the existing runner with the token from {} is verified and \
                 written, never registered again",
                t.source
            );
            register = false;
            match view.and_then(|v| v.adopted.get(&name)) {
                Some(Ok(id)) => {
                    known_id = Some(*id);
                    plan.id = Some(*id);
                    plan.reason = format!(
                        "not in config.toml; GitLab knows its token as runner {id}: the entry is \
                         written, nothing is registered"
                    );
                }
                Some(Err((status, message))) => {
                    return Err(Problem::error(
                        "token_rejected",
                        format!(
                            "GitLab rejects the token declared for runner {name} ({status}: \
                             {message})"
                        ),
                    )
                    .at(&self.inp.desired.sources, t.loc, "this token")
                    .help(
                        "a token for adoption must be a live runner authentication token \
                         (glrt-…); remove the token line to register a new runner instead",
                    ));
                }
                None => {}
            }
        } else if let Some(m) = managed.filter(|m| m.id > 0) {
            plan.action = Action::Recreate;
            plan.reason_code = Reason::EntryRemoved;
            plan.reason = format!(
                "managed runner {} (id {}) is missing from config.toml and its token is lost: a \
                 new runner is registered and written",
                m.name, m.id
            );
            plan.id = Some(m.id);
        } else if r.body.registration_token.is_some() {
            plan.reason_code = Reason::LegacyRegistration;
            plan.reason = "declared, not in config.toml: registered with its registration token \
                           (the legacy workflow)"
                .into();
        } else {
            plan.reason = "declared, not in config.toml and not registered by runnerform".into();
        }
        let takeover = if register {
            self.proven_claim(r)?
        } else {
            None
        };
        if let Some(id) = takeover {
            plan.reason_code = Reason::InterruptedRegistration;
            plan.reason = format!(
                "an earlier apply registered it as runner {id} but stopped before writing its \
                 token: that runner's token is reset and written, nothing is registered twice"
            );
        }

        // The whole entry, as it will be written.
        let mut identity: Vec<(&str, Item)> = vec![
            ("name", toml_edit::value(name.as_str())),
            ("url", toml_edit::value(self.url.as_str())),
        ];
        for k in CREDENTIAL_KEYS {
            let v = match (k, known_id) {
                ("id", Some(id)) => toml_edit::value(id),
                _ => toml_edit::value(AFTER_APPLY),
            };
            identity.push((k, v));
        }
        let entry = self
            .editor
            .new_runner(&identity, &r.body.settings, inventory().runner());
        let settings = self.editor.take_changes();
        let mut keys: Vec<EntryKey> = identity
            .iter()
            .map(|(k, v)| EntryKey {
                key: (*k).to_string(),
                value: match (*k, v.as_str()) {
                    ("token", _) if r.body.token.is_some() => format!(
                        "(secret from {})",
                        r.body
                            .token
                            .as_ref()
                            .map(|t| t.source.to_string())
                            .unwrap_or_default()
                    ),
                    (_, Some(AFTER_APPLY)) => AFTER_APPLY.to_string(),
                    _ => shown(v.as_value().expect("identity keys are values")),
                },
            })
            .collect();
        keys.extend(settings.iter().map(|c| EntryKey {
            key: c.path.clone(),
            value: c.new.clone().unwrap_or_default(),
        }));
        plan.changes = gitlab::declared_attributes(r, view);
        plan.changes.extend(local_changes(settings));

        if !self.offline {
            let view = view.expect("online");
            let mut steps = Vec::new();
            let mut claims_marker = false;
            if let Some(t) = &r.body.token {
                if known_id.is_none() {
                    steps.push(verify(
                        &format!("(secret from {})", t.source),
                        self.inp.system_id,
                    ));
                }
            } else if let Some(reg) = &r.body.registration_token {
                let mut body = gitlab::attributes(r);
                body.insert(
                    "token".into(),
                    format!("(secret from {})", reg.source).into(),
                );
                steps.push(Step::RegisterLegacy {
                    request: Request::new("POST", "/runners", Some(body.into())),
                });
            } else {
                steps.push(self.register(r, view, takeover)?);
                claims_marker = true;
            }
            steps.push(Step::WriteEntry { keys });
            if r.body.token.is_some() {
                // The runner exists already: its declared attributes are set once it is known.
                let attrs = match known_id.and_then(|id| view.runner(id)) {
                    Some(RemoteState::Exists(rr)) => !gitlab::attr_changes(r, rr).is_empty(),
                    _ => true,
                };
                if attrs {
                    steps.push(update_attributes(known_id, gitlab::attributes(r)));
                }
            }
            steps.push(self.own(r, known_id, managed));
            if claims_marker {
                steps.push(clear_marker(r, takeover));
            }
            // The old registration of a managed runner whose entry was removed by hand.
            if let Some(m) = managed.filter(|m| m.id > 0 && r.body.token.is_none())
                && same_url(&m.url, &self.url)
                && matches!(view.runner(m.id), Some(RemoteState::Exists(_)))
            {
                plan.reason.push_str(&format!(
                    ", then the old runner {} is deleted on GitLab",
                    m.id
                ));
                steps.push(delete_runner(m.id));
            }
            plan.steps = steps;
            // Offline, the entry is only shown: it needs GitLab's credentials to be written.
            self.edits.appended.push(entry);
            self.appended.push(self.plans.len());
        }
        self.push(plan);
        Ok(())
    }

    /// A declared runner with its entry in config.toml.
    fn with_entry(
        &mut self,
        r: &Runner,
        e: &Entry,
        managed: Option<&Managed>,
    ) -> Result<(), Problem> {
        let name = r.name.value.clone();
        let idx = self.plans.len();
        let url = self.url.clone();
        let mut changes: Vec<Change> = Vec::new();
        let entry_url = self.inp.env.expand(&e.url);
        let moved = !e.url.is_empty()
            && !url.is_empty()
            && !entry_url.is_empty()
            && !same_url(&entry_url, &url);
        let indent = self.runner_indent.clone();
        let table = self.edits.entry_mut(&self.inp.local.doc, e.index);
        if e.name != name {
            set_scalar(table, "name", name.as_str().into());
            changes.push(local("name", Some(&e.name), &name));
        }
        if e.url.is_empty() && !url.is_empty() && !crate::import::is_placeholder_url(&url) {
            // gitlab-runner cannot use an entry without a URL; the declared one is the answer.
            set_scalar(table, "url", url.as_str().into());
            changes.push(local("url", None, &url));
        }
        if moved {
            set_scalar(table, "url", url.as_str().into());
            changes.push(local("url", Some(&e.url), &url));
        }
        self.editor.apply(
            table,
            &indent,
            &r.body.settings,
            Some(inventory().runner()),
            "",
        );
        changes.extend(local_changes(self.editor.take_changes()));

        let mut plan = RunnerPlan::new(&name, Action::NoChange, Reason::UpToDate, "");
        plan.previous_name = (e.name != name).then(|| e.name.clone());
        let mut id = e.id;
        // What GitLab's answers call for: (action, reason code, reason, steps before the entry
        // is written, credential keys GitLab hands out, the old runner to delete after).
        let mut remote: Option<(Action, Reason, String)> = None;
        let mut old_to_delete = None;
        if moved {
            remote = Some((
                Action::Replace,
                Reason::UrlChanged,
                format!(
                    "registered with {}, declared for {url}: a runner cannot move between GitLab \
                     instances, so a new one is registered on {url}; the old one stays on {} \
                     until you delete it there",
                    e.url, e.url
                ),
            ));
            // The old id belongs to another GitLab: it is never sent to this one.
            id = 0;
        } else if let Some(view) = self.inp.remote {
            if id <= 0 && !e.token_unseen {
                match view.verified.get(&e.token) {
                    Some(Ok(v)) => id = *v,
                    Some(Err((status, msg))) => {
                        remote = Some((
                            Action::Recreate,
                            Reason::TokenRejected,
                            format!(
                                "GitLab rejects the entry's token ({status}: {msg}): a new runner \
                                 is registered and its token written"
                            ),
                        ))
                    }
                    None if e.token.is_empty() => {
                        remote = Some((
                            Action::Recreate,
                            Reason::NoCredentials,
                            "the entry has neither a GitLab id nor a token: a new runner is \
                             registered and its token written"
                                .to_string(),
                        ))
                    }
                    // Not verified (that takes --verify-tokens): nothing is concluded.
                    None => {}
                }
            }
            if remote.is_none() {
                match view.runner(id) {
                    Some(RemoteState::Gone { status, message }) => {
                        remote = Some((
                            Action::Recreate,
                            Reason::DeletedInGitlab,
                            format!(
                                "GitLab answered {status} for runner {id} ({message}): it was \
                                 deleted or its owner is gone, so a new one is registered"
                            ),
                        ))
                    }
                    Some(RemoteState::Exists(rr)) => {
                        if gitlab::scope_matches(r, rr, view) == Some(false) {
                            remote = Some((
                                Action::Replace,
                                Reason::ScopeChanged,
                                format!(
                                    "declared as a {} runner, registered as {} {id}: the owner \
                                     cannot change in place, so a new one is registered and the \
                                     old one deleted",
                                    r.body
                                        .scope
                                        .as_ref()
                                        .map_or(String::new(), |s| s.value.to_string()),
                                    rr.runner_type
                                ),
                            ));
                            old_to_delete = Some(id);
                        } else {
                            changes.extend(gitlab::attr_changes(r, rr));
                            let expires = self
                                .entry_table(e.index)
                                .get("token_expires_at")
                                .and_then(Item::as_datetime)
                                .and_then(crate::time::toml_unix);
                            if let Some((status, message)) = view.rejected.get(&id) {
                                remote = Some((
                                    Action::Rotate,
                                    Reason::TokenResetElsewhere,
                                    format!(
                                        "runner {id} exists but GitLab rejects the entry's token \
                                         ({status}: {message}); it was reset elsewhere, so a new \
                                         token is issued for the same runner"
                                    ),
                                ));
                            } else if let Some(expires) = expires
                                && expires - view.now < view.rotate_within
                            {
                                remote = Some((
                                    Action::Rotate,
                                    Reason::TokenExpiring,
                                    format!(
                                        "its token expires {}: it is reset now and the new one \
                                         written",
                                        if expires <= view.now {
                                            "has expired".to_string()
                                        } else {
                                            format!(
                                                "in {}",
                                                crate::time::human_secs(expires - view.now)
                                            )
                                        }
                                    ),
                                ));
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        let gitlab_changes = changes.iter().any(|c| c.side == Side::Gitlab);
        let local_changed = changes.iter().any(|c| c.side == Side::Local);
        let (action, code, reason) = remote.unwrap_or_else(|| match managed {
            None => (
                Action::Adopt,
                Reason::FoundInConfig,
                format!(
                    "found in config.toml as `{}`; runnerform takes ownership without \
                     registering anything",
                    e.name
                ),
            ),
            Some(_) if e.name != name => (
                Action::Update,
                Reason::Renamed,
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
                let (code, what) = match (local_changed, gitlab_changes) {
                    (true, true) => (
                        Reason::ConfigAndGitlabDiffer,
                        "config.toml and GitLab differ",
                    ),
                    (false, true) => (Reason::GitlabDiffers, "GitLab differs"),
                    _ => (Reason::ConfigDiffers, "config.toml differs"),
                };
                (Action::Update, code, format!("{what} from the declaration"))
            }
            Some(_) => (
                Action::NoChange,
                Reason::UpToDate,
                "matches the declaration".to_string(),
            ),
        });
        plan.action = action;
        plan.reason_code = code;
        plan.reason = self.editor.reason_with_kept(reason);
        plan.pending = self.offline && matches!(action, Action::Replace);

        // Steps.
        let mut steps = Vec::new();
        let new_registration = matches!(action, Action::Recreate | Action::Replace);
        let credential_keys: &[&str] = match action {
            Action::Recreate | Action::Replace => &CREDENTIAL_KEYS,
            Action::Rotate => &CREDENTIAL_KEYS[1..],
            _ => &[],
        };
        if self.offline && new_registration {
            // Nothing of it can happen without GitLab: the entry stays as it is.
            self.edits.restore(e.index);
            changes.clear();
        } else {
            let mut takeover = None;
            if new_registration {
                let view = self.inp.remote.expect("decided online");
                takeover = self.proven_claim(r)?;
                steps.push(self.register(r, view, takeover)?);
            } else if action == Action::Rotate {
                steps.push(Step::ResetToken {
                    id,
                    request: reset_token(id),
                });
            }
            if !credential_keys.is_empty() {
                let table = self.entry_table(e.index);
                for k in credential_keys {
                    let old = table.get(k).and_then(Item::as_value).map(|v| {
                        if *k == "token" {
                            "(secret)".to_string()
                        } else {
                            shown(v)
                        }
                    });
                    changes.push(Change {
                        side: Side::Local,
                        key: KeyChange {
                            path: (*k).to_string(),
                            old,
                            new: Some(AFTER_APPLY.to_string()),
                        },
                    });
                }
                await_credentials(table, credential_keys);
            }
            let entry_changes: Vec<KeyChange> = changes
                .iter()
                .filter(|c| c.side == Side::Local)
                .map(|c| c.key.clone())
                .collect();
            if entry_changes.is_empty() {
                // Nothing in the entry changes: it is written as the text it was read as, and
                // its parsed copy is not kept (a plan of 10,000 runners held them all).
                self.edits.restore(e.index);
            } else {
                steps.push(Step::EditEntry {
                    changes: entry_changes,
                });
                self.owner[e.index] = Some(idx);
            }
            if gitlab_changes && !new_registration && id > 0 {
                let mut body = gitlab::attributes(r);
                // A claim marker left behind is cleared even when no note is declared.
                if changes
                    .iter()
                    .any(|c| c.side == Side::Gitlab && c.key.path == "maintenance_note")
                {
                    body.entry("maintenance_note").or_insert_with(|| "".into());
                }
                steps.push(update_attributes(Some(id), body));
            }
            let record_id = if new_registration {
                None
            } else if id > 0 {
                Some(id)
            } else {
                managed.map(|m| m.id).filter(|id| *id > 0)
            };
            let record = Managed {
                name: name.clone(),
                url: url.clone(),
                id: record_id.unwrap_or(0),
                scope: r
                    .body
                    .scope
                    .as_ref()
                    .map(|s| s.value.to_string())
                    .or_else(|| managed.and_then(|m| m.scope.clone())),
            };
            if new_registration || managed != Some(&record) {
                steps.push(self.own(r, record_id, managed));
            }
            if new_registration {
                steps.push(clear_marker(r, takeover));
            }
            if let Some(old) = old_to_delete {
                steps.push(delete_runner(old));
            }
        }
        plan.id = (id > 0).then_some(id);
        plan.changes = changes;
        plan.steps = steps;
        self.push(plan);
        Ok(())
    }
}

impl Planning<'_> {
    /// The runner an interrupted registration of `r` made, when GitLab proves it is that one
    /// (it carries the registration's marker). A registration whose marker cannot be checked
    /// stops the plan: taking over a look-alike would take a colleague's runner.
    fn proven_claim(&self, r: &Runner) -> Result<Option<i64>, Problem> {
        let name = &r.name.value;
        match self.inp.remote.and_then(|v| v.claim_for(name)) {
            Some(Claim::Proven(id)) => Ok(Some(*id)),
            Some(Claim::Unreadable {
                id,
                status,
                message,
            }) => Err(Problem::error(
                "unproven_claim",
                format!(
                    "an interrupted apply registered {name}, and runner {id} may be that \
                     registration, but GitLab answered {status} ({message}) when asked for it"
                ),
            )
            .at(&self.inp.desired.sources, r.name.loc, "this runner")
            .help(
                "runnerform takes a runner over only when it carries the marker its \
                 registration set: check that the access token can read this scope's runners \
                 (api or read_api, and the role), or, if that registration is known to have \
                 failed, remove its entry from pending_creates in runnerform-state.json",
            )),
            _ => Ok(None),
        }
    }

    /// Registers `r` anew with a claim marker, or takes over the runner an interrupted
    /// registration proved to have made.
    fn register(
        &self,
        r: &Runner,
        view: &crate::remote::RemoteView,
        takeover: Option<i64>,
    ) -> Result<Step, Problem> {
        if let Some(id) = takeover {
            return Ok(Step::TakeOver {
                id,
                request: reset_token(id),
            });
        }
        let name = &r.name.value;
        let mut body = gitlab::create_body(r, view).ok_or_else(|| {
            Problem::error(
                "no_scope",
                format!("runner {name} has no scope to register it in"),
            )
            .at(&self.inp.desired.sources, r.name.loc, "this runner")
            .help("declare instance, group \"PATH\" or project \"PATH\"")
        })?;
        body["maintenance_note"] = CLAIM_MARKER.into();
        Ok(Step::Register {
            request: Request::new("POST", "/user/runners", Some(body)),
        })
    }
}

/// Puts the declared maintenance note back in place of the claim marker.
fn clear_marker(r: &Runner, id: Option<i64>) -> Step {
    let note = r
        .body
        .maintenance_note
        .as_ref()
        .map_or(String::new(), |n| n.value.clone());
    let mut body = serde_json::Map::new();
    body.insert("maintenance_note".into(), note.into());
    let shown = id.map_or_else(|| AFTER_APPLY.to_string(), |i| i.to_string());
    Step::ClearMarker {
        id,
        request: Request::new("PUT", format!("/runners/{shown}"), Some(body.into())),
    }
}

fn local(path: &str, old: Option<&str>, new: &str) -> Change {
    Change {
        side: Side::Local,
        key: KeyChange {
            path: path.into(),
            old: old.map(|o| shown(&o.into())),
            new: Some(shown(&new.into())),
        },
    }
}
