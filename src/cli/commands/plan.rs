//! `runnerform plan`: show what apply would change, runner by runner.

use std::path::PathBuf;

use crate::cli::planning::{PlanFlags, make_plan};
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

    /// Save the plan to FILE; `runnerform apply FILE` applies exactly it, and refuses it if
    /// anything changed since
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub flags: PlanFlags,
}

pub fn run(cli: &Cli, ui: &Ui, args: &Args) -> Exit {
    let progress = std::sync::Arc::new(crate::cli::progress::Progress::new(ui, args.json));
    let planned = match make_plan(cli, ui, &args.flags.options(cli), &progress) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let plan = &planned.plan;
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(plan).expect("plan serialises") + "\n";
        if let Err(p) = crate::local::write::replace_private(out, json.as_bytes()) {
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
