//! Carrying out a plan.
//!
//! The local half: under the lock, config.toml and the ownership record are read again and
//! compared with what the plan was made from (gitlab-runner or a person may have changed them
//! in between); only then are they replaced, atomically. Nothing is written when nothing
//! changes, so the file's bytes and mtime stay as they were.

use std::time::Duration;

use crate::diag::Problem;
use crate::local::{state, write};
use crate::plan::Plan;

pub mod online;

/// What apply wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub config_written: bool,
    pub state_written: bool,
    /// Requests that changed something on GitLab.
    pub gitlab_writes: usize,
    /// Service steps carried out.
    pub service_steps: usize,
}

/// Applies the local half of `plan`. `on_wait` is called once if another runnerform holds
/// the lock.
pub fn apply_local(
    plan: &Plan,
    lock_wait: Duration,
    on_wait: impl FnOnce(),
) -> Result<Applied, Problem> {
    if plan.new_config.is_none() && plan.new_state.is_none() {
        return Ok(Applied::default());
    }
    let path = std::path::Path::new(&plan.config_toml);
    let _lock = write::lock(path, lock_wait, on_wait)?;
    check_unchanged(plan)?;
    write_planned(plan)
}

/// Refuses when config.toml or the ownership record changed since the plan was made.
pub fn check_unchanged(plan: &Plan) -> Result<(), Problem> {
    let path = std::path::Path::new(&plan.config_toml);
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

/// Writes what a plan computed for config.toml and the ownership record. The caller holds the
/// lock and has checked that nothing changed since the plan.
pub fn write_planned(plan: &Plan) -> Result<Applied, Problem> {
    let path = std::path::Path::new(&plan.config_toml);
    let mut applied = Applied::default();
    if let Some(text) = &plan.new_config {
        write::replace(path, text.as_bytes(), 0o600)?;
        applied.config_written = true;
    }
    if let Some(st) = &plan.new_state {
        write::replace(&state::path_for(path), st.to_json().as_bytes(), 0o600)?;
        applied.state_written = true;
    }
    Ok(applied)
}
