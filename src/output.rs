//! The machine-readable documents `validate --json` and `status --json` print, with their JSON
//! Schemas (`schemas/validate.schema.json`, `schemas/status.schema.json`).
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
