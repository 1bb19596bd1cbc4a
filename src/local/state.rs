//! The ownership record: which config.toml entries runnerform manages, and their link to
//! GitLab.
//!
//! gitlab-runner rewrites config.toml from its own struct whenever it rotates a token, and
//! drops comments and unknown keys on the way, so the record cannot live in config.toml. It
//! is a JSON file beside it (`runnerform-state.json`, next to gitlab-runner's own
//! `.runner_system_id`), replaced atomically, and it holds no secret: names, URLs, ids,
//! scopes and token timestamps only.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diag::Problem;

pub const FILE_NAME: &str = "runnerform-state.json";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// Runners runnerform manages.
    pub runners: Vec<Managed>,
    /// Runners removed from config.toml while GitLab could not be reached (`apply --offline`):
    /// the next online apply deletes them on GitLab.
    #[serde(default)]
    pub pending_deletes: Vec<Managed>,
    /// Registrations started and not known to have finished: if apply stops between GitLab's
    /// answer and the write of the token, the next plan finds the runner that carries the
    /// intent's marker and resets its token instead of registering a second one.
    #[serde(default)]
    pub pending_creates: Vec<Intent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub name: String,
    pub url: String,
    /// The list endpoint of the runner's scope (`/projects/1001/runners`, `/runners/all`).
    pub list_path: String,
    /// `instance_type`, `group_type` or `project_type`.
    pub runner_type: String,
    pub description: String,
    /// The claim marker the registration carries in its `maintenance_note` until apply
    /// clears it: the proof that a runner found after a lost answer is this one. Empty in
    /// records written before markers existed (such a registration is never taken over).
    #[serde(default)]
    pub marker: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Managed {
    /// The runner's name: its KDL argument and its config.toml `name`.
    pub name: String,
    /// The GitLab URL it is registered with.
    pub url: String,
    /// GitLab's runner id; 0 while unknown (adopted offline, not yet verified).
    pub id: i64,
    /// Who owns it on GitLab (`instance`, `group acme`, `project acme/app`), when known.
    #[serde(default)]
    pub scope: Option<String>,
}

impl State {
    pub fn find(&self, name: &str) -> Option<&Managed> {
        self.runners.iter().find(|m| m.name == name)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("state serialises");
        s.push('\n');
        s
    }
}

pub fn path_for(config_toml: &Path) -> PathBuf {
    config_toml
        .parent()
        .unwrap_or(Path::new("."))
        .join(FILE_NAME)
}

/// Reads the record; a missing one means nothing is managed yet.
pub fn read(config_toml: &Path) -> Result<(State, Option<String>), Problem> {
    let path = path_for(config_toml);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((
                State {
                    format: FORMAT,
                    ..State::default()
                },
                None,
            ));
        }
        Err(e) => {
            return Err(Problem::error(
                "io",
                format!(
                    "cannot read {}: {}",
                    path.display(),
                    crate::desired::load::io_reason(&e)
                ),
            ));
        }
    };
    let state: State = serde_json::from_str(&text).map_err(|e| {
        Problem::error(
            "bad_state",
            format!("{} is not a runnerform state file: {e}", path.display()),
        )
        .help("it records which runners runnerform manages; restore it from a backup, or remove it to treat every entry as unmanaged")
    })?;
    if state.format != FORMAT {
        return Err(Problem::error(
            "bad_state",
            format!(
                "{} has format {}, this runnerform reads format {FORMAT}",
                path.display(),
                state.format
            ),
        )
        .help("use the runnerform version that wrote it"));
    }
    Ok((state, Some(text)))
}
