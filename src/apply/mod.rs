//! Carrying out a plan: its steps, and nothing else.
//!
//! Under the lock, config.toml and the ownership record are first compared with what the plan
//! was made from (gitlab-runner or a person may have changed them in between). Then each
//! runner's steps run in order, several runners at a time. Every effect on GitLab (an intent
//! with its claim marker before a registration, the credentials GitLab hands out, a delete)
//! is appended to the journal and synced before the runner's next step, so no token is ever
//! only in memory; config.toml (the planned document with GitLab's credentials filled in) and
//! the ownership record are written once at the end, atomically, and the journal removed.
//! Nothing is written when nothing changes, so the file's bytes and mtime stay as they were.

mod gitlab;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures_util::StreamExt;

use crate::desired::{Desired, Runner};
use crate::diag::Problem;
use crate::local::expand::Environment;
use crate::local::state::{self, Intent, State};
use crate::local::{journal, write};
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
    /// Runners whose steps run at the same time (each runner's steps run in order).
    pub concurrency: usize,
    /// Set (by a signal handler, say) to stop starting steps: the steps in flight finish and
    /// are recorded, the rest are reported as not done.
    pub interrupt: Option<&'a AtomicBool>,
}

/// What happened, as it happens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Another runnerform holds the lock on config.toml.
    WaitingForLock { config_toml: String },
    /// A step is about to run (`index` counts the steps started, from 1 to `total`).
    Started {
        index: usize,
        total: usize,
        runner: String,
        step: String,
    },
    /// A step is done (`index` counts the steps finished); `detail` says what came of it
    /// ("GitLab id 12").
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
    /// Runners registered on GitLab (each registration's claim marker is cleared with one
    /// more `PUT`, counted here, not under `updated`).
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
    /// Bytes written to config.toml, the ownership record and the journal.
    pub bytes_written: u64,
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

/// Carries out the runner steps of `plan` (the service is the engine's last step). Runners
/// are applied `cx.concurrency` at a time, each runner's steps in order; every effect on
/// GitLab is in the journal before the runner's next step, and config.toml and the ownership
/// record are written once, at the end.
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
    // Under the lock, no other runnerform is writing: a temporary file is a crash's leftover.
    journal::clean_temporary_files(path);
    if journal::path_for(path).exists() {
        return Err(Problem::error(
            "stale_plan",
            "an apply stopped after this plan was made (its journal is there)",
        )
        .help("plan again: the next run finishes what that apply recorded")
        .into());
    }
    let (state, _) = state::read(path)?;
    let talks_to_gitlab = plan
        .runners
        .iter()
        .any(|r| r.steps.iter().any(|s| s.request().is_some()));
    let journal = if talks_to_gitlab {
        Some(journal::Journal::create(path)?)
    } else {
        None
    };
    let own_runtime;
    let runtime = match cx.gitlab {
        Some((_, rt)) => rt,
        None => {
            own_runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Problem::error("runtime", e.to_string()))?;
            &own_runtime
        }
    };
    let mut done = vec![false; plan.runners.len()];
    // Global keys and entries whose runner has no entry step are final from the start.
    for (i, rp) in plan.runners.iter().enumerate() {
        if !rp.steps.iter().any(is_entry_step) {
            done[i] = true;
        }
    }
    let run = Run {
        cx,
        plan,
        path,
        document,
        journal: journal.as_ref(),
        abort_after: std::env::var("RUNNERFORM_TEST_ABORT_AFTER")
            .ok()
            .and_then(|v| v.parse().ok()),
        entry_of: document
            .owner
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.map(|r| (r, i)))
            .collect(),
        runners: cx
            .desired
            .runners
            .iter()
            .map(|r| (r.name.value.as_str(), r))
            .collect(),
        shared: RefCell::new(Shared {
            done,
            fills: vec![None; plan.runners.len()],
            state,
            outcome,
            started: 0,
            effects: 0,
            stop: None,
            not_done: Vec::new(),
        }),
        on_event: RefCell::new(on_event),
    };
    runtime.block_on(async {
        futures_util::stream::iter(0..plan.runners.len())
            .map(|ri| run.runner(ri))
            .buffer_unordered(cx.concurrency.max(1))
            .collect::<Vec<()>>()
            .await
    });
    // Whatever happened, what was done is written now.
    let written = run.write_all();
    let mut shared = run.shared.into_inner();
    if let Some(j) = &journal {
        shared.outcome.bytes_written += j.bytes.load(std::sync::atomic::Ordering::Relaxed);
    }
    if let Err(problem) = written {
        return Err(Failure {
            problem,
            outcome: shared.outcome,
            not_done: shared.not_done,
        });
    }
    if let Some(j) = journal
        && let Err(problem) = j.finish()
    {
        return Err(Failure {
            problem,
            outcome: shared.outcome,
            not_done: shared.not_done,
        });
    }
    match shared.stop {
        None => Ok(shared.outcome),
        Some(problem) => {
            // Plan order, whatever order the runners stopped in.
            let order: HashMap<&str, usize> = plan
                .runners
                .iter()
                .enumerate()
                .map(|(i, r)| (r.name.as_str(), i))
                .collect();
            shared
                .not_done
                .sort_by_key(|(runner, _)| order.get(runner.as_str()).copied());
            Err(Failure {
                problem,
                outcome: shared.outcome,
                not_done: shared.not_done,
            })
        }
    }
}

fn is_entry_step(s: &Step) -> bool {
    matches!(
        s,
        Step::WriteEntry { .. } | Step::EditEntry { .. } | Step::RemoveEntry
    )
}

/// What the runners applied in parallel share; borrowed only between awaits.
struct Shared {
    /// Runners whose entry step has run (their planned entry is what gets written).
    done: Vec<bool>,
    /// Credentials GitLab handed out, by runner.
    fills: Vec<Option<Fill>>,
    state: State,
    outcome: Outcome,
    started: usize,
    /// Effects on GitLab completed (for the test fail-point).
    effects: usize,
    /// Why no further step starts: a failure, or an interruption.
    stop: Option<Problem>,
    not_done: Vec<(String, String)>,
}

struct Run<'a> {
    cx: &'a Context<'a>,
    plan: &'a Plan,
    path: &'a Path,
    document: &'a crate::plan::document::PlannedDocument,
    journal: Option<&'a journal::Journal>,
    /// `RUNNERFORM_TEST_ABORT_AFTER=k`: the process aborts right after its k-th effect, so
    /// that tests can prove a crash at any point loses and repeats nothing.
    abort_after: Option<usize>,
    runners: HashMap<&'a str, &'a Runner>,
    /// The original entry each runner's steps change, by runner index.
    entry_of: HashMap<usize, usize>,
    shared: RefCell<Shared>,
    on_event: RefCell<&'a mut dyn FnMut(Event)>,
}

impl Run<'_> {
    fn emit(&self, e: Event) {
        (self.on_event.borrow_mut())(e);
    }

    /// Carries out one runner's steps in order, until done or told to stop.
    async fn runner(&self, ri: usize) {
        let rp = &self.plan.runners[ri];
        let total = self.shared.borrow().outcome.steps_total;
        for (si, step) in rp.steps.iter().enumerate() {
            let interrupted = self
                .cx
                .interrupt
                .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst));
            let index = {
                let mut sh = self.shared.borrow_mut();
                if interrupted && sh.stop.is_none() {
                    let done = sh.outcome.steps_done;
                    sh.stop = Some(
                        Problem::error(
                            "interrupted",
                            format!("interrupted: {done} of {total} steps done"),
                        )
                        .help(
                            "the steps that were running finished and are recorded; apply \
                             again to do the rest",
                        ),
                    );
                }
                // A runner that has begun finishes the local consequences of what it did (the
                // entry of a token it got, the record of a delete) but sends nothing more.
                let finishing = si > 0 && step.request().is_none();
                if sh.stop.is_some() && !finishing {
                    sh.not_done.extend(
                        rp.steps[si..]
                            .iter()
                            .map(|s| (rp.name.clone(), s.word().to_string())),
                    );
                    return;
                }
                sh.started += 1;
                sh.started
            };
            self.emit(Event::Started {
                index,
                total,
                runner: rp.name.clone(),
                step: step.word().to_string(),
            });
            match self.step(ri, rp, step).await {
                Ok(detail) => {
                    let index = {
                        let mut sh = self.shared.borrow_mut();
                        sh.outcome.steps_done += 1;
                        sh.outcome.steps_done
                    };
                    self.emit(Event::Finished {
                        index,
                        total,
                        runner: rp.name.clone(),
                        step: step.word().to_string(),
                        detail,
                    });
                }
                Err(problem) => {
                    let mut sh = self.shared.borrow_mut();
                    sh.not_done.extend(
                        rp.steps[si..]
                            .iter()
                            .map(|s| (rp.name.clone(), s.word().to_string())),
                    );
                    if sh.stop.is_none() {
                        sh.stop = Some(problem);
                    }
                    return;
                }
            }
        }
    }

    /// Writes config.toml and the ownership record as far as the runners got.
    fn write_all(&self) -> Result<(), Problem> {
        let mut sh = self.shared.borrow_mut();
        let assembled = self
            .document
            .assemble(&sh.done, &sh.fills)
            .map_err(|e| Problem::error("internal", format!("cannot write config.toml: {e}")))?;
        // The file as the plan read it: apply checked under the lock that it is unchanged.
        let before = self.document.original.text().unwrap_or_default();
        let text = write::keep_line_endings(before, assembled);
        if text != before {
            write::replace(self.path, text.as_bytes(), 0o600)?;
            sh.outcome.config_written = true;
            sh.outcome.bytes_written += text.len() as u64;
        }
        if self.abort_after == Some(sh.effects + 2) {
            // Between config.toml and the ownership record.
            std::process::abort();
        }
        let (on_disk, _) = state::read(self.path)?;
        if sh.state != on_disk || (!sh.state.runners.is_empty() && !state_exists(self.path)) {
            let json = sh.state.to_json();
            write::replace(&state::path_for(self.path), json.as_bytes(), 0o600)?;
            sh.outcome.state_written = true;
            sh.outcome.bytes_written += json.len() as u64;
        }
        if self.abort_after == Some(sh.effects + 1) {
            // The fail-point's last position: after both files, before the journal goes.
            std::process::abort();
        }
        Ok(())
    }

    /// Counts an effect GitLab carried out; the test fail-point aborts right after the k-th,
    /// before anything about it is recorded (the worst moment to die).
    fn effect(&self) {
        let n = {
            let mut sh = self.shared.borrow_mut();
            sh.effects += 1;
            sh.effects
        };
        if self.abort_after == Some(n) {
            std::process::abort();
        }
    }

    fn runner_decl(&self, rp: &RunnerPlan) -> Result<&Runner, Problem> {
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

    async fn journal(&self, record: &journal::Record) -> Result<(), Problem> {
        match self.journal {
            Some(j) => j.append(record).await,
            None => Ok(()),
        }
    }

    /// The original entry a runner's steps change: its GitLab id and name.
    fn original_entry(&self, ri: usize) -> (i64, Option<String>, Option<String>) {
        let Some(&i) = self.entry_of.get(&ri) else {
            return (0, None, None);
        };
        let f = &self.document.original.facts()[i];
        (
            f.id,
            f.name.clone(),
            f.token.as_deref().map(|tok| self.cx.env.expand(tok)),
        )
    }

    /// Records credentials GitLab handed out: in the journal (on disk before the runner's
    /// next step), then for the entry.
    async fn credentials(&self, ri: usize, rp: &RunnerPlan, fill: Fill) -> Result<String, Problem> {
        let (entry_id, entry_name, _) = self.original_entry(ri);
        let replaces = rp.steps.iter().find_map(|s| match s {
            Step::DeleteRunner { id, .. } => Some(*id),
            _ => None,
        });
        let scope = rp.steps.iter().find_map(|s| match s {
            Step::Own { scope, .. } => scope.clone(),
            _ => None,
        });
        let id = fill.id.unwrap_or(0);
        self.journal(&journal::Record::Credentials {
            name: rp.name.clone(),
            entry_id,
            entry_name,
            url: self.url(),
            id,
            token: fill.token.clone().unwrap_or_default(),
            obtained_at: fill.obtained_at.clone().unwrap_or_default(),
            expires_at: fill.expires_at.clone(),
            scope,
            replaces,
        })
        .await?;
        self.shared.borrow_mut().fills[ri] = Some(fill);
        Ok(format!("GitLab id {id}"))
    }

    fn fill_of(creds: crate::remote::Credentials) -> Fill {
        Fill {
            id: Some(creds.id),
            token: Some(creds.token),
            obtained_at: Some(crate::time::rfc3339(crate::time::now_unix())),
            expires_at: creds.expires_at,
        }
    }

    fn learned_id(&self, ri: usize) -> Option<i64> {
        self.shared.borrow().fills[ri].as_ref().and_then(|f| f.id)
    }

    /// Runs one step; returns what came of it, for the user.
    async fn step(&self, ri: usize, rp: &RunnerPlan, step: &Step) -> Result<String, Problem> {
        let cx = self.cx;
        match step {
            Step::Register { request } => {
                let mut body = request.body.clone().unwrap_or_default();
                let marker = new_marker();
                body["maintenance_note"] = marker.clone().into();
                let intent = Intent {
                    name: rp.name.clone(),
                    url: self.url(),
                    list_path: gitlab::list_path(&body),
                    runner_type: body["runner_type"].as_str().unwrap_or_default().to_string(),
                    description: body["description"].as_str().unwrap_or_default().to_string(),
                    marker,
                };
                {
                    let mut sh = self.shared.borrow_mut();
                    sh.state.pending_creates.retain(|i| i.name != rp.name);
                    sh.state.pending_creates.push(intent.clone());
                }
                // The intent and its marker are on disk before the request, so a lost answer
                // is found again, and proven to be this registration.
                self.journal(&journal::Record::Intent { intent }).await?;
                let r = self.runner_decl(rp)?;
                let creds = gitlab::register(cx, r, &body).await?;
                self.effect();
                self.shared.borrow_mut().outcome.registered += 1;
                self.credentials(ri, rp, Self::fill_of(creds)).await
            }
            Step::RegisterLegacy { request } => {
                let r = self.runner_decl(rp)?;
                let creds = gitlab::register_legacy(cx, r, request).await?;
                self.effect();
                self.shared.borrow_mut().outcome.registered += 1;
                self.credentials(ri, rp, Self::fill_of(creds)).await
            }
            Step::TakeOver { id, .. } | Step::ResetToken { id, .. } => {
                let creds = gitlab::reset_token(cx, &rp.name, *id).await?;
                self.effect();
                self.shared.borrow_mut().outcome.tokens_reset += 1;
                self.credentials(ri, rp, Self::fill_of(creds)).await
            }
            Step::VerifyToken { .. } => {
                let r = self.runner_decl(rp)?;
                let (id, token) = gitlab::verify_declared(cx, r, cx.system_id.as_deref()).await?;
                self.effect();
                self.shared.borrow_mut().outcome.verified += 1;
                let fill = Fill {
                    id: Some(id),
                    token: Some(token),
                    obtained_at: Some(crate::time::rfc3339(crate::time::now_unix())),
                    expires_at: None,
                };
                self.credentials(ri, rp, fill).await
            }
            Step::UpdateAttributes { id, request } | Step::ClearMarker { id, request } => {
                let id = id.or_else(|| self.learned_id(ri)).ok_or_else(|| {
                    Problem::error("internal", format!("runner {} has no GitLab id", rp.name))
                })?;
                gitlab::update(cx, &rp.name, id, request).await?;
                self.effect();
                let mut sh = self.shared.borrow_mut();
                if matches!(step, Step::UpdateAttributes { .. }) {
                    sh.outcome.updated += 1;
                }
                Ok(format!("GitLab id {id}"))
            }
            Step::DeleteRunner { id, .. } => {
                gitlab::delete(cx, *id).await?;
                self.effect();
                self.shared.borrow_mut().outcome.deleted += 1;
                self.journal(&journal::Record::Deleted {
                    name: rp.name.clone(),
                    id: Some(*id),
                })
                .await?;
                Ok(format!("GitLab id {id}"))
            }
            Step::DeleteByToken { .. } => {
                let (_, _, token) = self.original_entry(ri);
                let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
                    Problem::error(
                        "internal",
                        format!("the entry of {} has no token to delete it by", rp.name),
                    )
                })?;
                gitlab::delete_by_token(cx, &rp.name, &token).await?;
                self.effect();
                self.shared.borrow_mut().outcome.deleted += 1;
                self.journal(&journal::Record::Deleted {
                    name: rp.name.clone(),
                    id: None,
                })
                .await?;
                Ok("by its token".into())
            }
            Step::WriteEntry { .. } | Step::EditEntry { .. } | Step::RemoveEntry => {
                if matches!(step, Step::WriteEntry { .. }) {
                    self.declared_token(ri, rp)?;
                }
                self.shared.borrow_mut().done[ri] = true;
                Ok(String::new())
            }
            Step::Own { .. } | Step::Disown | Step::DeferDelete { .. } => {
                let learned = self.learned_id(ri);
                crate::plan::steps::record(&mut self.shared.borrow_mut().state, rp, step, learned);
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

    /// A runner adopted by its declared token writes that token.
    fn declared_token(&self, ri: usize, rp: &RunnerPlan) -> Result<(), Problem> {
        let r = self.runner_decl(rp)?;
        let Some(t) = &r.body.token else {
            return Ok(());
        };
        if self.shared.borrow().fills[ri]
            .as_ref()
            .is_some_and(|f| f.token.is_some())
        {
            return Ok(());
        }
        let token = crate::views::resolve(self.cx.desired, t)?;
        self.shared.borrow_mut().fills[ri] = Some(Fill {
            id: rp.id,
            token: Some(token),
            obtained_at: Some(crate::time::rfc3339(crate::time::now_unix())),
            expires_at: None,
        });
        Ok(())
    }
}

fn state_exists(config_toml: &Path) -> bool {
    state::path_for(config_toml).exists()
}

/// A claim marker only this apply can have set: 128 bits from the time, the process, a
/// counter and the address space, hashed.
fn new_marker() -> String {
    use sha2::{Digest, Sha256};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let local = 0u8;
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(n.to_le_bytes());
    h.update((&local as *const u8 as usize).to_le_bytes());
    if let Ok(host) = std::fs::read("/proc/sys/kernel/random/boot_id") {
        h.update(host);
    }
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}{hex}", crate::plan::steps::MARKER_PREFIX)
}

/// Refuses when config.toml or the ownership record changed since the plan was made.
pub fn check_unchanged(plan: &Plan) -> Result<(), Problem> {
    let path = Path::new(&plan.config_toml);
    let now = crate::local::read_text(path)?;
    let (_, state_text) = state::read(path)?;
    let config_now = now
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
