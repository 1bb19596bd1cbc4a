//! A plan saved with `plan --out` is a contract: `apply PLANFILE` plans again with the saved
//! options and carries out the fresh plan only when every view is as it was and its steps are
//! exactly the saved ones. Anything else is refused as stale; nothing is re-derived.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Options;
use crate::diag::Problem;
use crate::local::expand::Environment;
use crate::plan::{Fingerprints, Plan, Step};

/// What apply reads back from a saved plan.
#[derive(Debug, Deserialize)]
pub struct SavedPlan {
    pub format: u32,
    pub offline: bool,
    pub config_toml: String,
    pub targets: Vec<String>,
    pub rotate_within: u64,
    pub delete_unmanaged: bool,
    pub fingerprints: Fingerprints,
    pub runners: Vec<SavedRunner>,
}

#[derive(Debug, Deserialize)]
pub struct SavedRunner {
    pub name: String,
    pub steps: Vec<Step>,
}

impl SavedPlan {
    pub fn read(file: &Path) -> Result<Self, Problem> {
        read_saved(file)
    }

    /// The options the plan was made with.
    pub fn options(&self, env: Environment) -> Options {
        Options {
            offline: self.offline,
            targets: self.targets.clone(),
            config_toml: Some(PathBuf::from(&self.config_toml)),
            rotate_within: self.rotate_within,
            delete_unmanaged: self.delete_unmanaged,
            env,
            ..Options::default()
        }
    }
}

/// The whole plan saved in `file`, as `plan --json` printed it: what `show` renders. The
/// config.toml it was made from is not in it (it holds tokens); its `diff` is.
pub fn read_plan(file: &Path) -> Result<Plan, Problem> {
    read_saved(file)
}

/// Reads a saved plan of this runnerform's format, or says why `file` is not one.
fn read_saved<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, Problem> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Problem::error(
            "planfile",
            format!(
                "cannot read plan {}: {}",
                file.display(),
                crate::desired::load::io_reason(&e)
            ),
        )
    })?;
    let not_a_plan = |why: String| {
        Problem::error(
            "planfile",
            format!(
                "{} is not a plan saved by `runnerform plan --out`: {why}",
                file.display()
            ),
        )
        .help("save a plan with `runnerform plan --out FILE`")
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| not_a_plan(format!("it is not JSON ({e})")))?;
    let format = value.get("format").and_then(serde_json::Value::as_u64);
    let (Some(format), true) = (format, value.get("fingerprints").is_some()) else {
        return Err(not_a_plan(
            "it has no plan format and no fingerprints".into(),
        ));
    };
    if format != u64::from(crate::plan::FORMAT) {
        return Err(Problem::error(
            "planfile",
            format!(
                "{} has plan format {format}, this runnerform reads format {}",
                file.display(),
                crate::plan::FORMAT
            ),
        )
        .help("make the plan again with this runnerform"));
    }
    serde_json::from_value(value).map_err(|e| not_a_plan(e.to_string()))
}

/// Refuses `fresh` unless it was made from the same views as `saved` and takes exactly its
/// steps. `file` and `kdl` name the plan file and the KDL file in the diagnostic.
pub fn check_saved(
    saved: &SavedPlan,
    fresh: &Plan,
    file: &Path,
    kdl: &Path,
) -> Result<(), Problem> {
    let now = &fresh.fingerprints;
    let mut changed = Vec::new();
    if now.desired != saved.fingerprints.desired {
        changed.push(format!(
            "the KDL file {} (or a secret it reads)",
            kdl.display()
        ));
    }
    if now.config_toml != saved.fingerprints.config_toml {
        changed.push(saved.config_toml.clone());
    }
    if now.state != saved.fingerprints.state {
        changed.push("the ownership record".into());
    }
    if now.gitlab != saved.fingerprints.gitlab {
        changed.push("GitLab's runners".into());
    }
    if now.service != saved.fingerprints.service {
        changed.push("the service".into());
    }
    let same_steps = saved.runners.len() == fresh.runners.len()
        && saved
            .runners
            .iter()
            .zip(&fresh.runners)
            .all(|(s, f)| s.name == f.name && s.steps == f.steps);
    if changed.is_empty() && !same_steps {
        changed.push("the steps a plan would now take".into());
    }
    if changed.is_empty() {
        return Ok(());
    }
    Err(Problem::error(
        "stale_plan",
        format!(
            "the saved plan {} is stale: {} changed since it was made",
            file.display(),
            changed.join(" and ")
        ),
    )
    .help(format!(
        "run `runnerform plan --out {}` again and review the new plan; nothing was written",
        file.display()
    )))
}
