//! `runnerform show PLANFILE`: a plan saved with `plan --out`, rendered as `plan` rendered it,
//! so that the file a reviewer approves can be read without planning again (and without the
//! KDL file, config.toml or GitLab at hand).

use std::path::PathBuf;

use crate::cli::{Ui, plan_view};
use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the plan as `plan --json` prints it (schemas/plan.schema.json)
    #[arg(long)]
    pub json: bool,

    /// A plan saved with `runnerform plan --out PLANFILE`
    pub planfile: PathBuf,
}

pub fn run(ui: &Ui, args: &Args) -> Exit {
    let plan = match crate::engine::read_plan(&args.planfile) {
        Ok(plan) => plan,
        Err(p) => {
            ui.problem(&p);
            return Exit::Error;
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("plan serialises")
        );
    } else if ui.verbosity >= 0 {
        print!(
            "{}",
            plan_view::render(&plan, "", ui.color_out, ui.verbosity > 0)
        );
    }
    Exit::Success
}
