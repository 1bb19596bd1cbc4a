//! What `plan` and `apply` share: reading the desired state, gathering the views, planning.

use std::path::PathBuf;

use crate::cli::{Cli, Ui};
use crate::desired::{self, Desired, RefCheck};
use crate::exit::Exit;
use crate::plan::{self, Plan};
use crate::views::{self, LocalViews};

/// Reads and checks the KDL file; prints its problems. `Err` when it has errors.
pub fn load_desired(cli: &Cli, ui: &Ui, refs: RefCheck) -> Result<Desired, Exit> {
    let loaded = desired::read(&cli.file, refs);
    ui.problems(&loaded.problems);
    loaded.desired.ok_or_else(|| {
        eprintln!(
            "{}: {} found; nothing was planned",
            cli.file.display(),
            crate::cli::ui::plural(loaded.problems.errors(), "error")
        );
        Exit::Error
    })
}

pub struct Planned {
    pub views: LocalViews,
    pub plan: Plan,
}

/// Plans the whole desired state against the host. Only offline planning exists so far: the
/// GitLab half refuses clearly instead of pretending.
pub fn make_plan(
    cli: &Cli,
    ui: &Ui,
    offline: bool,
    targets: &[String],
    config_toml: Option<&std::path::Path>,
) -> Result<Planned, Exit> {
    if !offline {
        eprintln!(
            "error: planning against GitLab is not available in this version of runnerform\n  \
             help: pass --offline to plan against config.toml only"
        );
        return Err(Exit::Error);
    }
    let desired = load_desired(cli, ui, RefCheck::Settings)?;
    let path: PathBuf = views::config_path(config_toml.or(cli.config_toml.as_deref()), &desired);
    let views = views::gather_local(&desired, &path).map_err(|p| {
        ui.problem(&p);
        Exit::Error
    })?;
    let plan = plan::local::plan(&plan::local::Inputs {
        desired: &desired,
        local: &views.local,
        state: &views.state,
        state_text: views.state_text.as_deref(),
        secrets: &views.secrets,
        offline,
        targets,
    })
    .map_err(|p| {
        ui.problem(&p);
        Exit::Error
    })?;
    Ok(Planned { views, plan })
}
