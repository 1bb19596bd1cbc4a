//! Carrying out a plan: a loop over its steps, in order, and nothing else.
//!
//! Under the lock, config.toml and the ownership record are first compared with what the plan
//! was made from (gitlab-runner or a person may have changed them in between). Then each step
//! runs; whenever a runner's entry step is reached, config.toml is written from the planned
//! document with GitLab's credentials filled in, atomically, before the next request (so no
//! token is ever only in memory). Nothing is written when nothing changes, so the file's
//! bytes and mtime stay as they were.

mod gitlab;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::desired::{Desired, Runner};
use crate::diag::Problem;
use crate::local::expand::Environment;
use crate::local::state::{self, Intent, State};
use crate::local::write;
use crate::plan::document::Fill;
use crate::plan::{Plan, RunnerPlan, Step};
use crate::remote::Client;

/// What apply needs besides the plan.
pub struct Context<'a> {
    pub desired: &'a Desired,
    /// GitLab, for an online plan.
    pub gitlab: Option<(&'a Client, &'a tokio::runtime::Runtime)>,
    pub env: &'a Environment,
    /// How long to wait for another runnerform's lock.
    pub lock_wait: Duration,
    pub system_id: Option<String>,
}

/// What happened, as it happens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Another runnerform holds the lock on config.toml.
    WaitingForLock { config_toml: String },
    /// A step is about to run (`index` counts from 1 to `total` over the whole apply).
    Started {
        index: usize,
        total: usize,
        runner: String,
        step: String,
    },
    /// A step is done; `detail` says what came of it ("GitLab id 12").
    Finished {
        index: usize,
        total: usize,
        runner: String,
        step: String,
        detail: String,
    },
}

/// What apply did, counted from the steps carried out.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Runners registered on GitLab.
    pub registered: usize,
    /// Tokens reset (rotations, take-overs).
    pub tokens_reset: usize,
    /// Runners whose GitLab attributes were updated.
    pub updated: usize,
    /// Runners deleted on GitLab.
    pub deleted: usize,
    /// Runner tokens verified.
    pub verified: usize,
    pub config_written: bool,
    pub state_written: bool,
    /// Service steps carried out.
    pub service_steps: usize,
    pub steps_done: usize,
    pub steps_total: usize,
}

impl Outcome {
    /// Requests that changed something on GitLab.
    pub fn gitlab_writes(&self) -> usize {
        self.registered + self.tokens_reset + self.updated + self.deleted
    }

    /// Whether anything was changed anywhere.
    pub fn changed(&self) -> bool {
        self.gitlab_writes() > 0
            || self.config_written
            || self.state_written
            || self.service_steps > 0
    }
}

/// An apply that stopped: why, what was done, and the steps that were not.
#[derive(Debug)]
pub struct Failure {
    pub problem: Problem,
    pub outcome: Outcome,
    /// (runner, step) not carried out, in plan order.
    pub not_done: Vec<(String, String)>,
}

impl From<Problem> for Failure {
    fn from(problem: Problem) -> Self {
        Failure {
            problem,
            outcome: Outcome::default(),
            not_done: Vec::new(),
        }
    }
}

/// Carries out the runner steps of `plan` (the service is the engine's last step).
pub fn execute(
    plan: &Plan,
    cx: &Context,
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, Failure> {
    let total: usize = plan.runners.iter().map(|r| r.steps.len()).sum();
    let outcome = Outcome {
        steps_total: total,
        ..Outcome::default()
    };
    let Some(document) = &plan.document else {
        return Ok(outcome);
    };
    if total == 0 && plan.new_config.is_none() {
        return Ok(outcome);
    }
    let path = Path::new(&plan.config_toml);
    let _lock = write::lock(path, cx.lock_wait, || {
        on_event(Event::WaitingForLock {
            config_toml: plan.config_toml.clone(),
        })
    })?;
    check_unchanged(plan)?;
    let (state, _) = state::read(path)?;
    let mut run = Run {
        cx,
        path,
        document,
        done: vec![false; plan.runners.len()],
        fills: vec![None; plan.runners.len()],
        written_text: plan_original_text(plan)?,
        written_state: state.clone(),
        state,
        outcome,
        runners: cx
            .desired
            .runners
            .iter()
            .map(|r| (r.name.value.as_str(), r))
            .collect(),
    };
    // Global keys and entries whose runner has no entry step are final from the start.
    for (i, rp) in plan.runners.iter().enumerate() {
        if !rp.steps.iter().any(is_entry_step) {
            run.done[i] = true;
        }
    }
    let mut index = 0;
    for (ri, rp) in plan.runners.iter().enumerate() {
        for (si, step) in rp.steps.iter().enumerate() {
            index += 1;
            on_event(Event::Started {
                index,
                total,
                runner: rp.name.clone(),
                step: step.word().to_string(),
            });
            match run.step(ri, rp, step) {
                Ok(detail) => {
                    run.outcome.steps_done += 1;
                    on_event(Event::Finished {
                        index,
                        total,
                        runner: rp.name.clone(),
                        step: step.word().to_string(),
                        detail,
                    });
                }
                Err(problem) => {
                    // What was done is on disk; say what was not.
                    let _ = run.flush();
                    let mut not_done: Vec<(String, String)> = rp.steps[si..]
                        .iter()
                        .map(|s| (rp.name.clone(), s.word().to_string()))
                        .collect();
                    for later in &plan.runners[ri + 1..] {
                        not_done.extend(
                            later
                                .steps
                                .iter()
                                .map(|s| (later.name.clone(), s.word().to_string())),
                        );
                    }
                    return Err(Failure {
                        problem,
                        outcome: run.outcome,
                        not_done,
                    });
                }
            }
        }
    }
    run.flush().map_err(|problem| Failure {
        problem,
        outcome: run.outcome.clone(),
        not_done: Vec::new(),
    })?;
    Ok(run.outcome)
}

fn is_entry_step(s: &Step) -> bool {
    matches!(
        s,
        Step::WriteEntry { .. } | Step::EditEntry { .. } | Step::RemoveEntry
    )
}

fn plan_original_text(plan: &Plan) -> Result<String, Problem> {
    Ok(crate::local::read(Path::new(&plan.config_toml))?
        .original
        .unwrap_or_default())
}

struct Run<'a> {
    cx: &'a Context<'a>,
    path: &'a Path,
    document: &'a crate::plan::document::PlannedDocument,
    /// Runners whose entry step has run (their planned entry is what gets written).
    done: Vec<bool>,
    /// Credentials GitLab handed out, by runner.
    fills: Vec<Option<Fill>>,
    written_text: String,
    written_state: State,
    state: State,
    outcome: Outcome,
    runners: HashMap<&'a str, &'a Runner>,
}

impl Run<'_> {
    /// Writes config.toml and the ownership record where they differ from what is on disk.
    fn flush(&mut self) -> Result<(), Problem> {
        let doc = self
            .document
            .assemble(&self.done, &self.fills)
            .map_err(|e| Problem::error("internal", format!("cannot write config.toml: {e}")))?;
        let text = doc.to_string();
        if text != self.written_text {
            write::replace(self.path, text.as_bytes(), 0o600)?;
            self.written_text = text;
            self.outcome.config_written = true;
        }
        if self.state != self.written_state {
            write::replace(
                &state::path_for(self.path),
                self.state.to_json().as_bytes(),
                0o600,
            )?;
            self.written_state = self.state.clone();
            self.outcome.state_written = true;
        }
        Ok(())
    }

    fn runner(&self, rp: &RunnerPlan) -> Result<&Runner, Problem> {
        self.runners.get(rp.name.as_str()).copied().ok_or_else(|| {
            Problem::error(
                "internal",
                format!(
                    "the plan names {}, which the file does not declare",
                    rp.name
                ),
            )
        })
    }

    /// Runs one step; returns what came of it, for the user.
    fn step(&mut self, ri: usize, rp: &RunnerPlan, step: &Step) -> Result<String, Problem> {
        match step {
            Step::Register { request } => {
                let body = request.body.clone().unwrap_or_default();
                self.state.pending_creates.retain(|i| i.name != rp.name);
                self.state.pending_creates.push(Intent {
                    name: rp.name.clone(),
                    url: self.url(),
                    list_path: gitlab::list_path(&body),
                    runner_type: body["runner_type"].as_str().unwrap_or_default().to_string(),
                    description: body["description"].as_str().unwrap_or_default().to_string(),
                });
                // The intent is on disk before the request, so a lost answer is found again.
                self.flush()?;
                let r = self.runner(rp)?;
                let creds = gitlab::register(self.cx, r, &body)?;
                self.outcome.registered += 1;
                Ok(self.filled(ri, creds))
            }
            Step::RegisterLegacy { request } => {
                let r = self.runner(rp)?;
                let creds = gitlab::register_legacy(self.cx, r, request)?;
                self.outcome.registered += 1;
                Ok(self.filled(ri, creds))
            }
            Step::TakeOver { id, .. } | Step::ResetToken { id, .. } => {
                let creds = gitlab::reset_token(self.cx, &rp.name, *id)?;
                self.outcome.tokens_reset += 1;
                Ok(self.filled(ri, creds))
            }
            Step::VerifyToken { .. } => {
                let r = self.runner(rp)?;
                let (id, token) =
                    gitlab::verify_declared(self.cx, r, self.cx.system_id.as_deref())?;
                self.outcome.verified += 1;
                self.fills[ri] = Some(Fill {
                    id: Some(id),
                    token: Some(token),
                    obtained_at: Some(crate::time::rfc3339(crate::time::now_unix())),
                    expires_at: None,
                });
                Ok(format!("GitLab id {id}"))
            }
            Step::UpdateAttributes { id, request } => {
                let id = id
                    .or_else(|| self.fills[ri].as_ref().and_then(|f| f.id))
                    .ok_or_else(|| {
                        Problem::error("internal", format!("runner {} has no GitLab id", rp.name))
                    })?;
                gitlab::update(self.cx, &rp.name, id, request)?;
                self.outcome.updated += 1;
                Ok(format!("GitLab id {id}"))
            }
            Step::DeleteRunner { id, .. } => {
                gitlab::delete(self.cx, *id)?;
                self.outcome.deleted += 1;
                Ok(format!("GitLab id {id}"))
            }
            Step::DeleteByToken { .. } => {
                let token = self.entry_token(ri).ok_or_else(|| {
                    Problem::error(
                        "internal",
                        format!("the entry of {} has no token to delete it by", rp.name),
                    )
                })?;
                gitlab::delete_by_token(self.cx, &rp.name, &token)?;
                self.outcome.deleted += 1;
                Ok("by its token".into())
            }
            Step::WriteEntry { .. } | Step::EditEntry { .. } | Step::RemoveEntry => {
                if matches!(step, Step::WriteEntry { .. }) {
                    self.declared_token(ri, rp)?;
                }
                self.done[ri] = true;
                self.flush()?;
                Ok(String::new())
            }
            Step::Own { .. } | Step::Disown | Step::DeferDelete { .. } => {
                let learned = self.fills[ri].as_ref().and_then(|f| f.id);
                crate::plan::steps::record(&mut self.state, rp, step, learned);
                Ok(String::new())
            }
        }
    }

    fn url(&self) -> String {
        self.cx
            .desired
            .gitlab
            .as_ref()
            .map(|g| g.url.value.clone())
            .unwrap_or_default()
    }

    fn filled(&mut self, ri: usize, creds: crate::remote::Credentials) -> String {
        let detail = format!("GitLab id {}", creds.id);
        self.fills[ri] = Some(Fill {
            id: Some(creds.id),
            token: Some(creds.token),
            obtained_at: Some(crate::time::rfc3339(crate::time::now_unix())),
            expires_at: creds.expires_at,
        });
        detail
    }

    /// A runner adopted by its declared token writes that token.
    fn declared_token(&mut self, ri: usize, rp: &RunnerPlan) -> Result<(), Problem> {
        let r = self.runner(rp)?;
        let Some(t) = &r.body.token else {
            return Ok(());
        };
        if self.fills[ri].as_ref().is_some_and(|f| f.token.is_some()) {
            return Ok(());
        }
        let token = crate::views::resolve(self.cx.desired, t)?;
        self.fills[ri] = Some(Fill {
            id: rp.id,
            token: Some(token),
            obtained_at: Some(crate::time::rfc3339(crate::time::now_unix())),
            expires_at: None,
        });
        Ok(())
    }

    /// The token of the original entry a runner's steps remove.
    fn entry_token(&self, ri: usize) -> Option<String> {
        let i = self.document.owner.iter().position(|o| *o == Some(ri))?;
        let t = self
            .document
            .original
            .get("runners")?
            .as_array_of_tables()?
            .get(i)?;
        let token = self
            .cx
            .env
            .expand(t.get("token").and_then(toml_edit::Item::as_str)?);
        (!token.is_empty()).then_some(token)
    }
}

/// Refuses when config.toml or the ownership record changed since the plan was made.
pub fn check_unchanged(plan: &Plan) -> Result<(), Problem> {
    let path = Path::new(&plan.config_toml);
    let now = crate::local::read(path)?;
    let (_, state_text) = state::read(path)?;
    let config_now = now
        .original
        .as_deref()
        .map_or_else(|| "absent".to_string(), crate::plan::digest_text);
    let state_now = state_text
        .as_deref()
        .map_or_else(|| "absent".to_string(), crate::plan::digest_text);
    if config_now != plan.fingerprints.config_toml {
        return Err(Problem::error(
            "stale_plan",
            format!("{} changed since the plan was made", plan.config_toml),
        )
        .help(
            "gitlab-runner or a person wrote it in between; plan again and review the new plan",
        ));
    }
    if state_now != plan.fingerprints.state {
        return Err(Problem::error(
            "stale_plan",
            format!(
                "{} changed since the plan was made",
                state::path_for(path).display()
            ),
        )
        .help("another runnerform applied in between; plan again"));
    }
    Ok(())
}
