//! `runnerform plan`: show what apply would change, runner by runner.

use std::path::PathBuf;

use crate::cli::planning::{PlanOptions, make_plan};
use crate::cli::{Cli, Ui, plan_view};
use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the plan as one JSON document (described by schemas/plan.schema.json)
    #[arg(long)]
    pub json: bool,

    /// Exit 2 when changes are pending, 0 when there are none (1 is an error): for drift
    /// detection in scheduled jobs
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Plan against config.toml (and the service) only, without calling GitLab. Actions that
    /// need GitLab (create, replace…) are shown as pending. Without it, runnerform asks GitLab
    /// about every runner (the access token from the gitlab node is required).
    #[arg(long)]
    pub offline: bool,

    /// Save the plan to FILE; `runnerform apply FILE` applies exactly it, and refuses it if
    /// anything changed since
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,

    /// Limit the plan to this runner (repeatable; the name of a `count=` runner selects all
    /// its replicas)
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,

    /// How many requests to GitLab may be in flight at once
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,

    /// Rotate runner tokens that expire within this many seconds (default: one day)
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    pub rotate_within: u64,

    /// Also check every entry's token with GitLab (`POST /runners/verify`), to find tokens
    /// reset elsewhere. Off by default because GitLab records a runner manager for each check.
    #[arg(long)]
    pub verify_tokens: bool,

    /// Delete runners in config.toml that are neither declared nor managed by runnerform (on
    /// GitLab too), instead of leaving them alone
    #[arg(long)]
    pub delete_unmanaged: bool,
}

pub fn run(cli: &Cli, ui: &Ui, args: &Args) -> Exit {
    let planned = match make_plan(
        cli,
        ui,
        &PlanOptions {
            offline: args.offline,
            targets: &args.targets,
            config_toml: None,
            concurrency: args.concurrency,
            rotate_within: args.rotate_within,
            verify_tokens: args.verify_tokens,
            delete_unmanaged: args.delete_unmanaged,
        },
    ) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let plan = &planned.plan;
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(plan).expect("plan serialises") + "\n";
        if let Err(p) = crate::local::write::replace(out, json.as_bytes(), 0o644) {
            ui.problem(&p);
            return Exit::Error;
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(plan).expect("plan serialises")
        );
    } else if ui.verbosity >= 0 {
        print!(
            "{}",
            plan_view::render(
                plan,
                planned.views.local.text(),
                ui.color_out,
                ui.verbosity > 0
            )
        );
        if let Some(out) = &args.out {
            println!(
                "Saved the plan to {}; apply it with: runnerform apply {}",
                out.display(),
                out.display()
            );
        }
    }
    if args.detailed_exitcode && plan.changes_pending {
        Exit::Changes
    } else {
        Exit::Success
    }
}
