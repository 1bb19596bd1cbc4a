//! What `plan` and `apply` share on the command line: the flags, reading the KDL file, and
//! printing the engine's diagnostics.

use std::sync::Arc;

use crate::cli::progress::Progress;
use crate::cli::{Cli, Ui};
use crate::desired::{self, Desired, RefCheck};
use crate::diag::Problem;
use crate::engine::{self, Options, Planned};
use crate::exit::Exit;
use crate::local::expand::Environment;

/// Reads and checks the KDL file; prints its problems. `Err` when it has errors.
pub fn load_desired(cli: &Cli, ui: &Ui, refs: RefCheck) -> Result<Desired, Exit> {
    load_or_problems(cli, ui, refs).map_err(|_| Exit::Error)
}

/// [`load_desired`], with the errors returned as well as printed.
fn load_or_problems(cli: &Cli, ui: &Ui, refs: RefCheck) -> Result<Desired, Vec<Problem>> {
    let host = crate::cli::host::this_host(cli);
    let loaded = desired::read_for(&cli.file, refs, desired::HostChoice::One(&host));
    ui.problems(&loaded.problems);
    loaded.desired.ok_or_else(|| {
        eprintln!(
            "{}: {} found; nothing was planned",
            cli.file.display(),
            crate::cli::ui::plural(loaded.problems.errors(), "error")
        );
        loaded
            .problems
            .list
            .into_iter()
            .filter(Problem::is_error)
            .collect()
    })
}

/// The flags `plan` and `apply` share.
#[derive(Debug, clap::Args)]
pub struct PlanFlags {
    /// Work on config.toml (and the service) only, without calling GitLab. Actions that need
    /// GitLab (create, replace…) are shown as pending and not applied. Without it, runnerform
    /// asks GitLab about every runner (the access token from the gitlab node is required).
    #[arg(long)]
    pub offline: bool,

    /// Limit to this runner (repeatable; the name of a `count=` runner selects all its
    /// replicas)
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,

    /// Most requests to GitLab in flight at once; fewer while GitLab throttles (429,
    /// RateLimit-* headers) or slows down
    #[arg(long, value_name = "N", default_value_t = crate::remote::pace::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,

    /// Rotate runner tokens that expire within this long (seconds or a duration such as 12h)
    #[arg(long, value_name = "DURATION", default_value = "24h",
          value_parser = crate::duration::parse_secs)]
    pub rotate_within: u64,

    /// Also check every entry's token with GitLab (`POST /runners/verify`), to find tokens
    /// reset elsewhere and learn the id of entries that have none. Off by default: GitLab
    /// records a runner manager for each check, and the default plan sends only GET requests.
    #[arg(long)]
    pub verify_tokens: bool,

    /// Delete runners in config.toml that are neither declared nor managed by runnerform (on
    /// GitLab too), instead of leaving them alone
    #[arg(long)]
    pub delete_unmanaged: bool,
}

impl PlanFlags {
    pub fn options(&self, cli: &Cli) -> Options {
        Options {
            offline: self.offline,
            targets: self.targets.clone(),
            config_toml: cli.config_toml.clone(),
            concurrency: self.concurrency,
            rotate_within: self.rotate_within,
            verify_tokens: self.verify_tokens,
            delete_unmanaged: self.delete_unmanaged,
            env: Environment::from_process(),
            now: None,
            lock_wait: std::time::Duration::from_secs(60),
            observer: None,
        }
    }
}

/// Reads the KDL file and plans, showing `progress` while GitLab is read; prints every
/// problem. `Err` when nothing could be planned.
pub fn make_plan(
    cli: &Cli,
    ui: &Ui,
    opts: &Options,
    progress: &Arc<Progress>,
) -> Result<Planned, Exit> {
    plan_or_problems(cli, ui, opts, progress).map_err(|_| Exit::Error)
}

/// [`make_plan`], with the errors returned as well as printed.
pub fn plan_or_problems(
    cli: &Cli,
    ui: &Ui,
    opts: &Options,
    progress: &Arc<Progress>,
) -> Result<Planned, Vec<Problem>> {
    let refs = if opts.offline {
        RefCheck::Settings
    } else {
        RefCheck::Require
    };
    let desired = load_or_problems(cli, ui, refs)?;
    if ui.verbosity >= 1 && !opts.offline {
        eprintln!(
            "Asking GitLab about the {} declared runner{}…",
            desired.runners.len(),
            if desired.runners.len() == 1 { "" } else { "s" }
        );
    }
    let opts = Options {
        observer: Some(progress.clone()),
        ..opts.clone()
    };
    let planned = engine::plan(desired, &opts);
    progress.planned();
    let planned = planned.inspect_err(|problems| {
        for p in problems {
            ui.problem(p);
        }
        if problems.len() > 1 {
            eprintln!("{} problems; nothing was changed", problems.len());
        }
    })?;
    for note in &planned.notes {
        eprintln!("note: {note}");
    }
    Ok(planned)
}
