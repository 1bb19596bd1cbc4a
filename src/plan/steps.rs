//! The steps of a plan: every effect apply will have, in the order it will have them.
//!
//! A plan is a contract (design invariant 10): each GitLab request with its method, path and
//! body (secrets masked), each config.toml entry written key by key, each change to the
//! ownership record. Apply is a loop over these steps and does nothing else; a saved plan is
//! refused when the steps a fresh plan would take differ from the saved ones.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::RunnerPlan;
use crate::local::edit::KeyChange;
use crate::local::state::{Managed, State};

/// What a value shows before apply has it (GitLab hands out ids and tokens), as Terraform
/// says it.
pub const AFTER_APPLY: &str = "(known after apply)";

/// What a registration's `maintenance_note` shows in a plan: apply sets a marker only it
/// knows, so that after a lost answer the runner is proven to be its own, and clears it in the
/// same apply (a [`Step::ClearMarker`]).
pub const CLAIM_MARKER: &str = "(claim marker, known after apply)";

/// How every claim marker starts, so that one left behind is recognised and cleared.
pub const MARKER_PREFIX: &str = "runnerform-claim:";

/// One request to GitLab, as the plan shows it and apply sends it (secrets masked here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Request {
    pub method: String,
    /// Below GitLab's API root (`/api/v4`).
    pub path: String,
    /// The JSON body, secrets shown as `(secret from …)`; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl Request {
    pub fn new(method: &str, path: impl Into<String>, body: Option<Value>) -> Self {
        Request {
            method: method.to_string(),
            path: path.into(),
            body,
        }
    }
}

/// One key of a config.toml entry a step writes, in TOML syntax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EntryKey {
    /// Dotted path below the entry (`docker.image`).
    pub key: String,
    /// The value in TOML syntax, secrets masked, or `(known after apply)`.
    pub value: String,
}

/// One effect, in the order apply carries it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Register a new runner (`POST /user/runners`); GitLab answers with its id and token.
    /// Before the request, the intent is recorded in the ownership record.
    Register { request: Request },
    /// Register with a registration token, the legacy workflow (`POST /runners`).
    RegisterLegacy { request: Request },
    /// Take over the runner an interrupted apply registered: reset its token.
    TakeOver { id: i64, request: Request },
    /// Check a declared runner token and learn the runner's id (`POST /runners/verify`).
    VerifyToken { request: Request },
    /// Issue a new token for the same runner.
    ResetToken { id: i64, request: Request },
    /// Set GitLab's attributes (`PUT /runners/:id`); `id` is absent when it is known only
    /// after an earlier step of the same runner.
    UpdateAttributes { id: Option<i64>, request: Request },
    /// Delete a runner by id (`DELETE /runners/:id`); already gone counts as done.
    DeleteRunner { id: i64, request: Request },
    /// Delete a runner by its token (`DELETE /runners`), for an entry without an id.
    DeleteByToken { request: Request },
    /// Write the runner's entry into config.toml, as listed (a new entry).
    WriteEntry { keys: Vec<EntryKey> },
    /// Change keys of the runner's existing entry (credentials GitLab hands out in an earlier
    /// step are filled in).
    EditEntry { changes: Vec<KeyChange> },
    /// Remove the runner's entry from config.toml.
    RemoveEntry,
    /// Record in the ownership record that runnerform manages the runner.
    Own {
        url: String,
        /// GitLab's id; absent when an earlier step learns it.
        id: Option<i64>,
        scope: Option<String>,
    },
    /// Put the declared maintenance note back in place of the registration's claim marker.
    ClearMarker { id: Option<i64>, request: Request },
    /// Forget the runner in the ownership record.
    Disown,
    /// Offline: remember to delete runner `id` on GitLab at the next online apply.
    DeferDelete { id: i64, url: String },
}

impl Step {
    /// The request the step sends to GitLab, if it sends one.
    pub fn request(&self) -> Option<&Request> {
        match self {
            Step::Register { request }
            | Step::RegisterLegacy { request }
            | Step::TakeOver { request, .. }
            | Step::VerifyToken { request }
            | Step::ResetToken { request, .. }
            | Step::UpdateAttributes { request, .. }
            | Step::DeleteRunner { request, .. }
            | Step::DeleteByToken { request }
            | Step::ClearMarker { request, .. } => Some(request),
            _ => None,
        }
    }

    /// Whether the step changes something on GitLab.
    pub fn writes_gitlab(&self) -> bool {
        self.request().is_some() && !matches!(self, Step::VerifyToken { .. })
    }

    /// A short phrase for progress lines: "register", "write the entry"…
    pub fn word(&self) -> &'static str {
        match self {
            Step::Register { .. } | Step::RegisterLegacy { .. } => "register",
            Step::TakeOver { .. } => "take over the interrupted registration",
            Step::VerifyToken { .. } => "verify the token",
            Step::ResetToken { .. } => "reset the token",
            Step::UpdateAttributes { .. } => "update on GitLab",
            Step::DeleteRunner { .. } | Step::DeleteByToken { .. } => "delete on GitLab",
            Step::WriteEntry { .. } => "write the entry",
            Step::EditEntry { .. } => "edit the entry",
            Step::RemoveEntry => "remove the entry",
            Step::Own { .. } => "record ownership",
            Step::ClearMarker { .. } => "clear the claim marker",
            Step::Disown => "forget ownership",
            Step::DeferDelete { .. } => "defer the delete on GitLab",
        }
    }
}

/// `DELETE /runners/:id`.
pub fn delete_runner(id: i64) -> Step {
    Step::DeleteRunner {
        id,
        request: Request::new("DELETE", format!("/runners/{id}"), None),
    }
}

/// `PUT /runners/:id` with the declared attributes.
pub fn update_attributes(id: Option<i64>, body: serde_json::Map<String, Value>) -> Step {
    let shown = id.map_or_else(|| AFTER_APPLY.to_string(), |i| i.to_string());
    Step::UpdateAttributes {
        id,
        request: Request::new(
            "PUT",
            format!("/runners/{shown}"),
            Some(Value::Object(body)),
        ),
    }
}

/// `POST /runners/:id/reset_authentication_token`.
pub fn reset_token(id: i64) -> Request {
    Request::new(
        "POST",
        format!("/runners/{id}/reset_authentication_token"),
        None,
    )
}

/// `POST /runners/verify` with a token shown by where it comes from.
pub fn verify(shown_token: &str, system_id: Option<&str>) -> Step {
    let mut body = json!({ "token": shown_token });
    if let Some(sid) = system_id {
        body["system_id"] = sid.into();
    }
    Step::VerifyToken {
        request: Request::new("POST", "/runners/verify", Some(body)),
    }
}

/// Carries out a step's change to the ownership record (other steps leave it alone).
/// `learned_id` is the id an earlier step of the same runner learned from GitLab.
pub fn record(st: &mut State, rp: &RunnerPlan, step: &Step, learned_id: Option<i64>) {
    match step {
        Step::Own { url, id, scope } => {
            let prev = rp.previous_name.as_deref();
            st.runners
                .retain(|m| m.name != rp.name && Some(m.name.as_str()) != prev);
            st.pending_creates.retain(|i| i.name != rp.name);
            st.runners.push(Managed {
                name: rp.name.clone(),
                url: url.clone(),
                id: id.or(learned_id).unwrap_or(0),
                scope: scope.clone(),
            });
        }
        Step::Disown => {
            st.runners.retain(|m| m.name != rp.name);
            st.pending_deletes
                .retain(|m| !(m.name == rp.name && Some(m.id) == rp.id));
        }
        Step::DeferDelete { id, url } => st.pending_deletes.push(Managed {
            name: rp.name.clone(),
            url: url.clone(),
            id: *id,
            scope: None,
        }),
        _ => {}
    }
}
