//! Applying a plan with GitLab: runner by runner, in an order that never loses a token.
//!
//! Under the lock, for every action that talks to GitLab: the call, then at once the local
//! consequence written atomically (a new token is on disk before the next request), then the
//! ownership record. When every GitLab action is done, the local edits that remain (settings,
//! globals, renames) are planned again against the files as they now are and written.

use std::path::Path;

use toml_edit::{DocumentMut, Item};

use super::{Applied, check_unchanged, write_planned};
use crate::desired::{Desired, Runner};
use crate::diag::Problem;
use crate::keys::inventory;
use crate::local::edit::{Editor, set_scalar};
use crate::local::state::{self, Intent, Managed, State};
use crate::local::value::Secrets;
use crate::local::{self, write};
use crate::plan::{Action, Plan, RunnerPlan, Side, gitlab};
use crate::remote::{Client, Credentials, RemoteError, RemoteView};

pub struct Context<'a> {
    pub desired: &'a Desired,
    pub client: &'a Client,
    pub remote: &'a RemoteView,
    pub runtime: &'a tokio::runtime::Runtime,
    pub secrets: &'a Secrets,
}

/// What each step did, for the user.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

pub fn apply_online(
    plan: &Plan,
    cx: &Context,
    lock_wait: std::time::Duration,
    on_wait: impl FnOnce(),
    progress: Progress,
) -> Result<Applied, Problem> {
    let path = Path::new(&plan.config_toml);
    let _lock = write::lock(path, lock_wait, on_wait)?;
    check_unchanged(plan)?;
    let url = cx
        .desired
        .gitlab
        .as_ref()
        .map(|g| g.url.value.clone())
        .unwrap_or_default();
    let mut applied = Applied::default();
    for rp in &plan.runners {
        let runner = cx.desired.runners.iter().find(|r| r.name.value == rp.name);
        match (rp.action, runner) {
            (Action::Create, Some(r)) => {
                let creds = create(cx, path, r, &url)?;
                write_new_entry(cx, path, r, &url, &creds, &mut applied)?;
                progress(&format!(
                    "created {} (GitLab id {})",
                    r.name.value, creds.id
                ));
            }
            (Action::Recreate | Action::Replace, Some(r)) => {
                let creds = create(cx, path, r, &url)?;
                let mut doc = current(path)?;
                let entry = find_entry(&mut doc, rp)
                    .ok_or_else(|| gone_entry(&rp.name, &plan.config_toml))?;
                for (k, v) in identity(&r.name.value, &url, &creds).into_iter().skip(1) {
                    if let Item::Value(v) = v {
                        set_scalar(entry, k, v);
                    }
                }
                save(path, &doc, &mut applied)?;
                record(path, r, &url, creds.id, &mut applied)?;
                if rp.action == Action::Replace
                    && let Some(old) = rp.id
                {
                    delete(cx, old)?;
                }
                applied.gitlab_writes += 1;
                progress(&format!(
                    "{} {} (new GitLab id {})",
                    rp.action.word().trim_end_matches('e').to_string() + "ed",
                    r.name.value,
                    creds.id
                ));
            }
            (Action::Adopt, Some(r))
                if r.body.token.is_some() && entry_index(&current(path)?, rp).is_none() =>
            {
                let token_ref = r.body.token.as_ref().expect("guarded");
                let token = crate::views::resolve(cx.desired, token_ref)?;
                let id = rp.id.ok_or_else(|| {
                    Problem::error(
                        "gitlab",
                        format!("the token of {} was not verified", rp.name),
                    )
                })?;
                let creds = Credentials {
                    id,
                    token,
                    expires_at: None,
                };
                write_new_entry(cx, path, r, &url, &creds, &mut applied)?;
                if rp.changes.iter().any(|c| c.side == Side::Gitlab) {
                    update_attributes(cx, r, id)?;
                    applied.gitlab_writes += 1;
                }
                progress(&format!("adopted {} (GitLab id {id})", rp.name));
            }
            (Action::Update | Action::Adopt, Some(r))
                if rp.changes.iter().any(|c| c.side == Side::Gitlab) =>
            {
                let id = rp.id.ok_or_else(|| {
                    Problem::error("gitlab", format!("runner {} has no GitLab id", rp.name))
                })?;
                update_attributes(cx, r, id)?;
                applied.gitlab_writes += 1;
                progress(&format!("updated {} on GitLab", rp.name));
            }
            (Action::Rotate, Some(r)) => {
                let id = rp.id.ok_or_else(|| {
                    Problem::error("gitlab", format!("runner {} has no GitLab id", rp.name))
                })?;
                let creds = cx
                    .runtime
                    .block_on(cx.client.reset_token(id))
                    .map_err(|e| {
                        remote_problem(&format!("rotating the token of {}", rp.name), e)
                    })?;
                let mut doc = current(path)?;
                let entry = find_entry(&mut doc, rp)
                    .ok_or_else(|| gone_entry(&rp.name, &plan.config_toml))?;
                for (k, v) in identity(&r.name.value, &url, &creds).into_iter().skip(3) {
                    if let Item::Value(v) = v {
                        set_scalar(entry, k, v);
                    }
                }
                save(path, &doc, &mut applied)?;
                applied.gitlab_writes += 1;
                progress(&format!("rotated the token of {}", rp.name));
            }
            (Action::Delete, _) => {
                if let Some(id) = rp.id {
                    delete(cx, id)?;
                } else if let Some(token) = entry_token(&current(path)?, rp) {
                    // An entry without id (registered with an old gitlab-runner): its token is
                    // the only handle GitLab offers.
                    match cx.runtime.block_on(cx.client.delete_by_token(&token)) {
                        Ok(()) | Err(RemoteError::Definite { status: 403, .. }) => {}
                        Err(e) => return Err(remote_problem(&format!("deleting {}", rp.name), e)),
                    }
                }
                let mut doc = current(path)?;
                if remove_entry(&mut doc, rp) {
                    save(path, &doc, &mut applied)?;
                }
                forget(path, &rp.name, rp.id, &mut applied)?;
                applied.gitlab_writes += usize::from(rp.id.is_some());
                progress(&format!("deleted {}", rp.name));
            }
            _ => {}
        }
    }
    // What is left is local: settings, globals, renames, ownership of adopted entries.
    let local_now = local::read(path)?;
    let (st, st_text) = state::read(path)?;
    let rest = crate::plan::local::plan(&crate::plan::local::Inputs {
        desired: cx.desired,
        local: &local_now,
        state: &st,
        state_text: st_text.as_deref(),
        secrets: cx.secrets,
        remote: None,
        targets: &plan.targets,
        delete_unmanaged: false,
    })?;
    let last = write_planned(&rest)?;
    applied.config_written |= last.config_written;
    applied.state_written |= last.state_written;
    Ok(applied)
}

/// Appends the entry of a runner GitLab just gave credentials for, then records ownership.
fn write_new_entry(
    cx: &Context,
    path: &Path,
    r: &Runner,
    url: &str,
    creds: &Credentials,
    applied: &mut Applied,
) -> Result<(), Problem> {
    let mut doc = current(path)?;
    let mut ed = Editor::new(&doc, cx.secrets);
    ed.append_runner(
        &mut doc,
        &identity(&r.name.value, url, creds),
        &r.body.settings,
        inventory().runner(),
    );
    ed.check_missing()?;
    save(path, &doc, applied)?;
    record(path, r, url, creds.id, applied)
}

fn update_attributes(cx: &Context, r: &Runner, id: i64) -> Result<(), Problem> {
    let body = serde_json::Value::Object(gitlab::attributes(r));
    cx.runtime
        .block_on(cx.client.update_runner(id, &body))
        .map_err(|e| remote_problem(&format!("updating {}", r.name.value), e))
}

fn remote_problem(what: &str, e: RemoteError) -> Problem {
    let help = match &e {
        RemoteError::Transient { .. } => {
            "GitLab did not answer definitely; what was done so far is on disk, and running apply \
             again continues from there without duplicating anything"
        }
        _ => "what was done so far is on disk; fix the cause and run apply again",
    };
    Problem::error("gitlab", format!("{what}: {e}")).help(help)
}

/// Registers a runner, or takes over the one an interrupted apply registered. The intent is
/// on disk before the request, so a registration whose answer is lost is found again.
fn create(cx: &Context, path: &Path, r: &Runner, url: &str) -> Result<Credentials, Problem> {
    let name = &r.name.value;
    if let Some(id) = cx.remote.unclaimed_for(name) {
        return cx
            .runtime
            .block_on(cx.client.reset_token(id))
            .map_err(|e| remote_problem(&format!("taking over runner {id} for {name}"), e));
    }
    if let Some(reg) = &r.body.registration_token {
        let mut body = gitlab::attributes(r);
        body.insert(
            "token".into(),
            crate::views::resolve(cx.desired, reg)?.into(),
        );
        return cx
            .runtime
            .block_on(cx.client.register_legacy(&serde_json::Value::Object(body)))
            .map_err(|e| match e.status() {
                Some(410) => Problem::error(
                    "legacy_registration_disabled",
                    format!("GitLab refuses registration tokens (410 Gone) for {name}"),
                )
                .help(
                    "GitLab 17.0 and later disable the legacy workflow by default: remove \
                     registration_token and give the gitlab node an access token with the \
                     create_runner scope, so runnerform registers with POST /user/runners",
                ),
                Some(403) => Problem::error(
                    "legacy_registration",
                    format!("GitLab rejects the registration token of {name} (403)"),
                )
                .help("check the token under the scope's CI/CD settings, Runners"),
                _ => remote_problem(&format!("registering {name}"), e),
            });
    }
    let body = gitlab::create_body(r, cx.remote).ok_or_else(|| {
        Problem::error(
            "gitlab",
            format!("runner {name} has no scope to register it in"),
        )
    })?;
    let intent = Intent {
        name: name.clone(),
        url: url.to_string(),
        list_path: list_path(&body),
        runner_type: body["runner_type"].as_str().unwrap_or_default().to_string(),
        description: gitlab::description(r),
    };
    let mut ignored = Applied::default();
    update_state(path, &mut ignored, |st| {
        st.pending_creates.retain(|i| i.name != intent.name);
        st.pending_creates.push(intent);
    })?;
    cx.runtime
        .block_on(cx.client.create_runner(&body))
        .map_err(|e| match e.status() {
            Some(403) => Problem::error(
                "gitlab_role",
                format!("GitLab does not let this token register {name}: {e}"),
            )
            .help(match r.body.scope.as_ref().map(|s| &s.value) {
                Some(crate::desired::Scope::Instance) => {
                    "instance runners need an administrator's token"
                }
                Some(crate::desired::Scope::Group(_)) => {
                    "group runners need the Owner role in the group"
                }
                _ => "project runners need the Maintainer role (or higher) in the project",
            }),
            _ => remote_problem(&format!("registering {name}"), e),
        })
}

fn list_path(body: &serde_json::Value) -> String {
    if let Some(id) = body.get("project_id").and_then(serde_json::Value::as_i64) {
        format!("/projects/{id}/runners")
    } else if let Some(id) = body.get("group_id").and_then(serde_json::Value::as_i64) {
        format!("/groups/{id}/runners")
    } else {
        "/runners/all".to_string()
    }
}

fn delete(cx: &Context, id: i64) -> Result<(), Problem> {
    match cx.runtime.block_on(cx.client.delete_runner(id)) {
        Ok(()) => Ok(()),
        // Already gone is what a delete wants.
        Err(RemoteError::Definite { status: 404, .. }) => Ok(()),
        Err(e) => Err(remote_problem(&format!("deleting runner {id}"), e)),
    }
}

/// name, url, id, token, token_obtained_at, token_expires_at, as gitlab-runner writes them.
fn identity(name: &str, url: &str, c: &Credentials) -> Vec<(&'static str, Item)> {
    let expires = c
        .expires_at
        .as_deref()
        .and_then(|e| e.parse::<toml_edit::Datetime>().ok())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".parse().expect("a valid datetime"));
    let obtained: toml_edit::Datetime = utc_now().parse().expect("a valid datetime");
    vec![
        ("name", toml_edit::value(name)),
        ("url", toml_edit::value(url)),
        ("id", toml_edit::value(c.id)),
        ("token", toml_edit::value(c.token.as_str())),
        ("token_obtained_at", toml_edit::value(obtained)),
        ("token_expires_at", toml_edit::value(expires)),
    ]
}

fn current(path: &Path) -> Result<DocumentMut, Problem> {
    Ok(local::read(path)?.doc)
}

fn save(path: &Path, doc: &DocumentMut, applied: &mut Applied) -> Result<(), Problem> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let text = write::keep_line_endings(&old, &doc.to_string());
    write::replace(path, text.as_bytes(), 0o600)?;
    applied.config_written = true;
    Ok(())
}

fn update_state(
    path: &Path,
    applied: &mut Applied,
    f: impl FnOnce(&mut State),
) -> Result<(), Problem> {
    let (mut st, _) = state::read(path)?;
    f(&mut st);
    write::replace(&state::path_for(path), st.to_json().as_bytes(), 0o600)?;
    applied.state_written = true;
    Ok(())
}

fn record(
    path: &Path,
    r: &Runner,
    url: &str,
    id: i64,
    applied: &mut Applied,
) -> Result<(), Problem> {
    let m = Managed {
        name: r.name.value.clone(),
        url: url.to_string(),
        id,
        scope: r.body.scope.as_ref().map(|s| s.value.to_string()),
    };
    update_state(path, applied, |st| {
        st.runners.retain(|x| x.name != m.name);
        st.pending_creates.retain(|i| i.name != m.name);
        st.runners.push(m);
    })
}

fn forget(path: &Path, name: &str, id: Option<i64>, applied: &mut Applied) -> Result<(), Problem> {
    update_state(path, applied, |st| {
        st.runners.retain(|x| x.name != name);
        st.pending_deletes
            .retain(|x| x.name != name && Some(x.id) != id);
    })
}

fn entry_index(doc: &DocumentMut, rp: &RunnerPlan) -> Option<usize> {
    let runners = doc.get("runners")?.as_array_of_tables()?;
    let names: Vec<&str> = std::iter::once(rp.name.as_str())
        .chain(rp.previous_name.as_deref())
        .collect();
    runners
        .iter()
        .position(|t| rp.id.is_some() && t.get("id").and_then(Item::as_integer) == rp.id)
        .or_else(|| {
            // An entry without a name is the one `renamed_from ""` adopts.
            runners.iter().position(|t| {
                names.contains(&t.get("name").and_then(Item::as_str).unwrap_or_default())
            })
        })
}

fn entry_token(doc: &DocumentMut, rp: &RunnerPlan) -> Option<String> {
    let i = entry_index(doc, rp)?;
    let t = doc.get("runners")?.as_array_of_tables()?.get(i)?;
    t.get("token")
        .and_then(Item::as_str)
        .filter(|t| !t.is_empty() && !t.contains('$'))
        .map(str::to_string)
}

fn find_entry<'d>(doc: &'d mut DocumentMut, rp: &RunnerPlan) -> Option<&'d mut toml_edit::Table> {
    let i = entry_index(doc, rp)?;
    doc.get_mut("runners")?.as_array_of_tables_mut()?.get_mut(i)
}

fn remove_entry(doc: &mut DocumentMut, rp: &RunnerPlan) -> bool {
    let Some(i) = entry_index(doc, rp) else {
        return false;
    };
    if let Some(Item::ArrayOfTables(a)) = doc.get_mut("runners") {
        a.remove(i);
        if a.is_empty() {
            doc.remove("runners");
        }
    }
    true
}

fn gone_entry(name: &str, path: &str) -> Problem {
    Problem::error(
        "stale_plan",
        format!("the entry of {name} disappeared from {path} during apply"),
    )
    .help("plan again")
}

/// Now in UTC, RFC 3339 with whole seconds, as gitlab-runner writes token_obtained_at.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_now_is_an_rfc3339_datetime() {
        let now = utc_now();
        assert!(now.parse::<toml_edit::Datetime>().is_ok(), "{now}");
        assert!(now.starts_with("20"), "{now}");
        assert!(now.ends_with('Z'));
    }
}
