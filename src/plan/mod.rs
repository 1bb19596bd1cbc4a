//! The plan: every difference between the declared and the actual state, as one action per
//! runner with a reason a person can read.
//!
//! Planning is a pure function of the views ([`plan`]): it reads nothing and writes nothing,
//! so the same views always give the same plan, which is what lets a saved plan be checked
//! for staleness by comparing fingerprints. Every effect apply will have is a [`Step`] of the
//! plan: apply carries out the steps and nothing else.

mod decide;
pub mod diff;
pub mod document;
pub mod gitlab;
mod make;
pub mod matcher;
pub mod questions;
pub mod reason;
mod retire;
pub mod service;
pub mod steps;

pub use make::{Inputs, digest, plan, same_url};
pub use reason::Reason;
pub use steps::{Request, Step};

use serde::Serialize;

use crate::local::edit::KeyChange;

/// The JSON format of `plan --json`; bumped on any incompatible change.
pub const FORMAT: u32 = 2;

/// What happens to one runner.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Declared, exists nowhere: register it on GitLab, then write its entry.
    Create,
    /// Exists but runnerform does not manage it yet: take ownership, never re-register.
    Adopt,
    /// Change in place.
    Update,
    /// What cannot change in place (scope, GitLab URL): create anew, then delete the old.
    Replace,
    /// GitLab rejects the entry's token: the runner is gone or orphaned.
    Recreate,
    /// The token expires soon: reset it.
    Rotate,
    /// Managed by runnerform and no longer declared.
    Delete,
    /// In config.toml, not declared, not managed: reported and left alone.
    Unmanaged,
    /// Nothing to do.
    NoChange,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Adopt => ">",
            Action::Update | Action::Rotate => "~",
            Action::Replace | Action::Recreate => "-/+",
            Action::Delete => "-",
            Action::Unmanaged => "?",
            Action::NoChange => " ",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Adopt => "adopt",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Recreate => "recreate",
            Action::Rotate => "rotate",
            Action::Delete => "delete",
            Action::Unmanaged => "unmanaged",
            Action::NoChange => "no change",
        }
    }

    /// Whether the action changes anything (unmanaged entries and no-ops do not).
    pub fn is_change(self) -> bool {
        !matches!(self, Action::Unmanaged | Action::NoChange)
    }
}

/// Which view a change is made in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// config.toml
    Local,
    /// GitLab's runner attributes
    Gitlab,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Change {
    pub side: Side,
    #[serde(flatten)]
    pub key: KeyChange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RunnerPlan {
    /// The declared name (for deletes and unmanaged entries, the name in config.toml).
    pub name: String,
    pub action: Action,
    /// Why, as a stable code to match on.
    pub reason_code: Reason,
    /// Why, in a sentence.
    pub reason: String,
    /// The action needs GitLab and the plan was made with `--offline`: shown, not applied.
    pub pending: bool,
    /// For a rename, the name the runner had.
    pub previous_name: Option<String>,
    /// GitLab's runner id, when known.
    pub id: Option<i64>,
    /// What differs, key by key; for a create, every key and attribute it will get.
    pub changes: Vec<Change>,
    /// What apply will do, in order.
    pub steps: Vec<Step>,
}

impl RunnerPlan {
    pub fn new(name: &str, action: Action, reason_code: Reason, reason: &str) -> Self {
        RunnerPlan {
            name: name.to_string(),
            action,
            reason_code,
            reason: reason.to_string(),
            pending: false,
            previous_name: None,
            id: None,
            changes: Vec::new(),
            steps: Vec::new(),
        }
    }
}

#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Summary {
    pub create: usize,
    pub adopt: usize,
    pub update: usize,
    pub replace: usize,
    pub recreate: usize,
    pub rotate: usize,
    pub delete: usize,
    pub unmanaged: usize,
    /// Actions that need GitLab and were left out of an offline plan.
    pub pending: usize,
}

/// Digests of every view the plan was made from, to refuse a stale saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Fingerprints {
    /// The KDL files and the secret values they reference (SHA-256, hex).
    pub desired: String,
    /// config.toml as read, or `absent`.
    pub config_toml: String,
    /// runnerform's ownership record, or `absent`.
    pub state: String,
    /// What GitLab said of every runner the plan is about, or `offline`.
    pub gitlab: String,
    /// The OS service as observed, or `none` when the file declares no service.
    #[serde(default = "none")]
    pub service: String,
}

fn none() -> String {
    "none".into()
}

/// The whole plan. Serialised, it is the document `plan --json` prints (see
/// `schemas/plan.schema.json`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Plan {
    pub format: u32,
    pub runnerform_version: String,
    /// Planned against config.toml and the service only, without GitLab.
    pub offline: bool,
    /// The config.toml this plan is for.
    pub config_toml: String,
    /// `--target` names the plan was limited to; empty for the whole file.
    pub targets: Vec<String>,
    /// Tokens expiring within this many seconds are rotated (0 offline).
    pub rotate_within: u64,
    /// Entries runnerform does not manage are deleted (`--delete-unmanaged`).
    pub delete_unmanaged: bool,
    pub runners: Vec<RunnerPlan>,
    /// Changes to config.toml's global keys.
    pub globals: Vec<Change>,
    /// The OS service, when the file declares one (and the plan is not limited by
    /// `--target`).
    pub service: Option<service::ServicePlan>,
    pub summary: Summary,
    /// Whether applying the plan would change anything (pending actions count).
    pub changes_pending: bool,
    /// Unified diff of config.toml, tokens masked; empty when config.toml does not change.
    pub diff: String,
    pub fingerprints: Fingerprints,
    /// config.toml as planned, `(known after apply)` where GitLab hands out credentials
    /// (holds tokens: never serialised).
    #[serde(skip)]
    #[schemars(skip)]
    pub new_config: Option<String>,
    /// The planned document apply writes from.
    #[serde(skip)]
    #[schemars(skip)]
    pub document: Option<document::PlannedDocument>,
}

impl Plan {
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        let mut line = format!(
            "Plan: {} to create, {} to adopt, {} to update, {} to delete",
            s.create, s.adopt, s.update, s.delete
        );
        for (n, word) in [
            (s.replace, "to replace"),
            (s.recreate, "to recreate"),
            (s.rotate, "to rotate"),
        ] {
            if n > 0 {
                line.push_str(&format!(", {n} {word}"));
            }
        }
        line.push('.');
        if let Some(sp) = self.service.as_ref().filter(|sp| sp.is_change()) {
            let steps: Vec<&str> = sp.steps.iter().map(|s| s.word()).collect();
            line.push_str(&format!(" Service {}: {}.", sp.name, steps.join(", ")));
        }
        if s.pending > 0 {
            line.push_str(&format!(
                " {} need GitLab and are left for an online apply.",
                s.pending
            ));
        }
        line
    }

    /// Whether applying would do anything (pending actions are not applied offline).
    pub fn writes_anything(&self) -> bool {
        self.new_config.is_some()
            || self.runners.iter().any(|r| !r.steps.is_empty())
            || self.service_changes()
    }

    /// The ownership record once every step of the plan is carried out, for a plan that
    /// needs nothing from GitLab (an offline plan).
    pub fn state_after(&self, before: &crate::local::state::State) -> crate::local::state::State {
        let mut st = before.clone();
        for rp in &self.runners {
            for step in &rp.steps {
                steps::record(&mut st, rp, step, None);
            }
        }
        st
    }

    pub fn service_changes(&self) -> bool {
        self.service.as_ref().is_some_and(|s| s.is_change())
    }

    /// Adds the service's plan.
    pub fn set_service(&mut self, sp: service::ServicePlan) {
        self.changes_pending |= sp.is_change();
        self.fingerprints.service = sp.fingerprint.clone();
        self.service = Some(sp);
    }
}

/// SHA-256 of a file's text, as the fingerprints record it.
pub fn digest_text(text: &str) -> String {
    digest(&[text.as_bytes()])
}

pub fn schema() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}
