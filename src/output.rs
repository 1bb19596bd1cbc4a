//! The machine-readable documents `validate --json`, `status --json` and `apply --json` print,
//! with their JSON Schemas (`schemas/validate.schema.json`, `schemas/status.schema.json`,
//! `schemas/apply-event.schema.json`).
//!
//! They are kept apart from the types the commands work with, so that a refactoring inside
//! runnerform cannot silently change what a script reads: these types change only on purpose,
//! and a test compares the committed schemas with these definitions.

use schemars::JsonSchema;
use serde::Serialize;

use crate::diag::Problem;

/// The format of `validate --json`; bumped on any incompatible change.
pub const VALIDATE_FORMAT: u32 = 1;

/// What `validate --json` prints: one document, also when the file is invalid.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ValidateReport {
    pub format: u32,
    /// The KDL file given with `-f` (`-` for stdin).
    pub file: String,
    /// No errors (warnings allowed): the exit code is 0.
    pub valid: bool,
    pub errors: usize,
    pub warnings: usize,
    /// The declared runners after `count=` and templates are expanded; empty when invalid.
    pub runners: Vec<String>,
    /// The hosts of a fleet file (`host "NAME"` blocks); empty for a single-host file.
    pub hosts: Vec<String>,
    /// Every problem found, in source order.
    pub problems: Vec<ProblemReport>,
}

/// One problem in the KDL file (or reading it).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProblemReport {
    pub severity: Severity,
    /// A stable identifier of the kind of problem (`unknown_key`, `wrong_type`, `syntax`…).
    pub code: String,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The file it is in, as named in diagnostics; absent when the problem has no place (an
    /// unreadable file).
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
    /// What the diagnostic's label says at that place.
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The file cannot be used as it is.
    Error,
    /// Worth fixing; the file is still valid (an unresolved secret reference, for example).
    Warning,
}

impl From<&Problem> for ProblemReport {
    fn from(p: &Problem) -> Self {
        let position = p.position();
        ProblemReport {
            severity: if p.is_error() {
                Severity::Error
            } else {
                Severity::Warning
            },
            code: p.code.to_string(),
            message: crate::secrets::mask(&p.message),
            hint: p.help.as_deref().map(crate::secrets::mask),
            label: position.as_ref().map(|_| p.label.clone()),
            file: position.as_ref().map(|(f, _, _)| f.clone()),
            line: position.as_ref().map(|(_, l, _)| *l),
            column: position.as_ref().map(|(_, _, c)| *c),
        }
    }
}

/// What `status --json` prints: one row per declared runner, in the file's order.
pub type StatusReport = Vec<StatusRow>;

/// What GitLab says of one declared runner.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusRow {
    pub name: String,
    /// GitLab's runner id, when the runner is registered.
    pub id: Option<i64>,
    /// online, offline, stale, never_contacted or paused, as GitLab says; `not_registered`
    /// when runnerform knows no id for it, `gone` when GitLab has no such runner.
    pub status: String,
    pub paused: Option<bool>,
    /// When the runner last asked GitLab for jobs (ISO 8601), if ever.
    pub contacted_at: Option<String>,
    /// Hosts running it (GitLab's runner managers): "SYSTEM_ID (status)".
    pub managers: Vec<String>,
    /// token_expires_at from config.toml, when the token expires.
    pub token_expires_at: Option<String>,
}

/// The format of `apply --json`; bumped on any incompatible change.
pub const APPLY_FORMAT: u32 = 1;

/// One line of `apply --json`: each event as it happens, then always one `summary` line.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ApplyEvent {
    /// Another runnerform holds the lock on config.toml; this one waits for it.
    WaitingForLock { config_toml: String },
    /// A step is about to run. `index` counts the steps started, from 1 to `total` over the
    /// whole apply (runners run in parallel, each runner's steps in order).
    Started {
        index: usize,
        total: usize,
        runner: String,
        step: String,
    },
    /// A step is done; `index` counts the steps finished; `detail` says what came of it
    /// ("GitLab id 12"), or is empty.
    Finished {
        index: usize,
        total: usize,
        runner: String,
        step: String,
        detail: String,
    },
    /// `--wait-online`: waiting up to `timeout_seconds` for `runners` runners.
    WaitingOnline {
        runners: usize,
        timeout_seconds: u64,
    },
    /// `--wait-online`: this runner is online with a runner manager for this host.
    Online { runner: String },
    /// The last line, also when nothing could be planned or applied.
    Summary(ApplySummary),
}

impl From<crate::engine::Event> for ApplyEvent {
    fn from(e: crate::engine::Event) -> Self {
        use crate::engine::Event;
        match e {
            Event::WaitingForLock { config_toml } => ApplyEvent::WaitingForLock { config_toml },
            Event::Started {
                index,
                total,
                runner,
                step,
            } => ApplyEvent::Started {
                index,
                total,
                runner,
                step,
            },
            Event::Finished {
                index,
                total,
                runner,
                step,
                detail,
            } => ApplyEvent::Finished {
                index,
                total,
                runner,
                step,
                detail: crate::secrets::mask(&detail),
            },
        }
    }
}

/// How an apply ended.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApplySummary {
    pub format: u32,
    /// Everything asked for was done (with `--wait-online`, the runners came online): the
    /// exit code is 0.
    pub ok: bool,
    /// Whether config.toml, the ownership record, GitLab or the service was changed, also by
    /// an apply that then stopped: false means this run changed nothing.
    pub changed: bool,
    /// What was done, counted from the steps carried out.
    pub outcome: OutcomeReport,
    /// Why it failed; empty when `ok`.
    pub problems: Vec<ProblemReport>,
    /// The steps not carried out, in plan order, when apply stopped midway.
    pub not_done: Vec<StepReport>,
    /// `--wait-online`: the runners that did not come online in time.
    pub not_online: Vec<LateRunner>,
}

/// What an apply did.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct OutcomeReport {
    /// Runners registered on GitLab (each also had its claim marker cleared with a `PUT`,
    /// counted here rather than under `updated`).
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
    /// runnerform's ownership record was written.
    pub state_written: bool,
    /// Service steps carried out.
    pub service_steps: usize,
    pub steps_done: usize,
    pub steps_total: usize,
}

impl From<&crate::engine::Outcome> for OutcomeReport {
    fn from(o: &crate::engine::Outcome) -> Self {
        OutcomeReport {
            registered: o.registered,
            tokens_reset: o.tokens_reset,
            updated: o.updated,
            deleted: o.deleted,
            verified: o.verified,
            config_written: o.config_written,
            state_written: o.state_written,
            service_steps: o.service_steps,
            steps_done: o.steps_done,
            steps_total: o.steps_total,
        }
    }
}

/// One step of the plan, by runner.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StepReport {
    pub runner: String,
    pub step: String,
}

/// A runner `--wait-online` waited for in vain.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LateRunner {
    pub runner: String,
    /// What GitLab last said of it.
    pub last_seen: String,
}

fn schema_text(schema: schemars::Schema) -> String {
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

/// The JSON Schema of [`ValidateReport`].
pub fn validate_schema() -> String {
    schema_text(schemars::schema_for!(ValidateReport))
}

/// The JSON Schema of [`StatusReport`].
pub fn status_schema() -> String {
    let mut schema = schemars::schema_for!(StatusReport);
    schema.insert(
        "description".into(),
        "What `runnerform status --json` prints: one row per declared runner.".into(),
    );
    schema_text(schema)
}

/// The JSON Schema of one line of `apply --json` ([`ApplyEvent`]).
pub fn apply_event_schema() -> String {
    let mut schema = schemars::schema_for!(ApplyEvent);
    schema.insert(
        "description".into(),
        "One line of `runnerform apply --json`: each event as it happens, then one summary.".into(),
    );
    schema_text(schema)
}
