//! `runnerform apply`: converge the host to the KDL file, after showing the plan.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::planning::{PlanFlags, make_plan};
use crate::cli::{Cli, Ui, plan_view};
use crate::engine::{self, Event, Planned, SavedPlan, WaitError};
use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply without asking. Required when stdin is not a terminal.
    #[arg(long, visible_alias = "auto-approve")]
    pub yes: bool,

    #[command(flatten)]
    pub flags: PlanFlags,

    /// How long to wait for another runnerform applying to the same config.toml (seconds
    /// or a duration such as 5m)
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = crate::duration::parse_secs)]
    pub lock_timeout: u64,

    /// After applying, wait up to DURATION (`90s`, `5m`, or seconds) until every declared
    /// runner is online in GitLab with a runner manager for this host, or fail naming those
    /// that are not. Needs GitLab (not with --offline).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub wait_online: Option<Duration>,

    /// A plan saved with `plan --out`: applied exactly as reviewed, without asking, and
    /// refused if the KDL file, config.toml, the ownership record or GitLab changed since
    pub planfile: Option<PathBuf>,
}

pub fn run(cli: &Cli, ui: &Ui, args: &Args) -> Exit {
    if args.planfile.is_some() && (args.flags.offline || !args.flags.targets.is_empty()) {
        eprintln!(
            "error: a saved plan is applied with the options it was made with; drop --offline \
             and --target"
        );
        return Exit::Error;
    }
    if args.wait_online.is_some() && args.flags.offline {
        eprintln!(
            "error: --wait-online asks GitLab whether the runners are online, which --offline \
             rules out"
        );
        return Exit::Error;
    }
    let (planned, saved) = match &args.planfile {
        Some(file) => match from_planfile(cli, ui, file) {
            Ok(p) => (p, true),
            Err(e) => return e,
        },
        None => match make_plan(cli, ui, &args.flags.options(cli)) {
            Ok(p) => (p, false),
            Err(e) => return e,
        },
    };
    let plan = &planned.plan;
    if ui.verbosity >= 0 {
        print!(
            "{}",
            plan_view::render(
                plan,
                planned.views.local.text(),
                ui.color_out,
                ui.verbosity > 0
            )
        );
    }
    if !plan.changes_pending && !plan.writes_anything() {
        ui.say("No changes. Nothing was written.");
        return wait_online(ui, &planned, args.wait_online);
    }
    if planned.online.is_none() && !plan.writes_anything() {
        ui.say("Nothing to apply offline.");
        return Exit::Success;
    }
    if !saved && !args.yes && plan.changes_pending {
        match confirm() {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("Apply cancelled; nothing was written.");
                return Exit::Error;
            }
            Err(msg) => {
                eprintln!("error: {msg}");
                return Exit::Error;
            }
        }
    }
    let opts = engine::ApplyOptions {
        lock_wait: Duration::from_secs(args.lock_timeout),
        concurrency: args.flags.concurrency,
        interrupt: Some(crate::cli::interrupt::install()),
    };
    let mut on_event = |e: Event| match e {
        Event::WaitingForLock { config_toml } => {
            eprintln!("Waiting for another runnerform to finish applying to {config_toml}…")
        }
        Event::Started { .. } => {}
        Event::Finished {
            index,
            total,
            runner,
            step,
            detail,
        } => {
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            };
            ui.say(format!("  [{index}/{total}] {runner}: {step}{detail}"));
        }
    };
    match engine::apply(&planned, &opts, &mut on_event) {
        Ok(outcome) => {
            ui.say(format!("Apply complete: {}.", done_summary(plan, &outcome)));
            wait_online(ui, &planned, args.wait_online)
        }
        Err(failure) => {
            ui.problem(&failure.problem);
            let o = &failure.outcome;
            let mut msg = format!(
                "Apply stopped after {} of {} steps; done: {}.",
                o.steps_done,
                o.steps_total,
                done_summary(plan, o)
            );
            if !failure.not_done.is_empty() {
                msg.push_str("\nNot done:");
                for (runner, step) in &failure.not_done {
                    msg.push_str(&format!("\n  {runner}: {step}"));
                }
            }
            eprintln!("{msg}");
            Exit::Error
        }
    }
}

/// What an apply did, in a phrase: "wrote PATH, GitLab: 2 registered, 1 deleted".
fn done_summary(plan: &crate::plan::Plan, o: &engine::Outcome) -> String {
    let mut what = Vec::new();
    if o.config_written {
        what.push(format!("wrote {}", plan.config_toml));
    }
    if o.state_written {
        what.push("updated the ownership record".to_string());
    }
    let mut gitlab = Vec::new();
    for (n, word) in [
        (o.registered, "registered"),
        (o.updated, "updated"),
        (o.deleted, "deleted"),
        (o.tokens_reset, "token reset"),
        (o.verified, "token verified"),
    ] {
        if n > 0 {
            let word = match (n, word) {
                (1, w) => w.to_string(),
                (_, "token reset") => "tokens reset".to_string(),
                (_, "token verified") => "tokens verified".to_string(),
                (_, w) => w.to_string(),
            };
            gitlab.push(format!("{n} {word}"));
        }
    }
    if !gitlab.is_empty() {
        what.push(format!("GitLab: {}", gitlab.join(", ")));
    }
    if let Some(sp) = plan.service.as_ref().filter(|_| o.service_steps > 0) {
        let steps: Vec<&str> = sp.steps.iter().map(|s| s.word()).collect();
        what.push(format!("service {}: {}", sp.name, steps.join(", ")));
    }
    if what.is_empty() {
        "nothing needed writing".to_string()
    } else {
        what.join(", ")
    }
}

/// `--wait-online`: polls GitLab until the declared runners have contacted it from this host.
fn wait_online(ui: &Ui, planned: &Planned, timeout: Option<Duration>) -> Exit {
    let (Some(timeout), Some(_)) = (timeout, &planned.online) else {
        return Exit::Success;
    };
    let mut waiting = |n: usize| {
        ui.say(format!(
            "Waiting up to {}s for {} runner{} to come online…",
            timeout.as_secs(),
            n,
            if n == 1 { "" } else { "s" }
        ))
    };
    let mut on_online = |name: &str| ui.say(format!("  online: {name}"));
    match engine::wait_online(planned, timeout, &mut waiting, &mut on_online) {
        Ok(()) => {
            ui.say("All runners are online.");
            Exit::Success
        }
        Err(WaitError::Unusable(p)) => {
            ui.problem(&p);
            Exit::Error
        }
        Err(WaitError::Late(late)) => {
            let mut msg = format!(
                "error: {} runner{} did not come online within {}s:",
                late.len(),
                if late.len() == 1 { "" } else { "s" },
                timeout.as_secs()
            );
            for (name, why) in &late {
                msg.push_str(&format!("\n  {name}: {why}"));
            }
            msg.push_str(
                "\n  help: the changes were applied; check that the gitlab-runner service runs \
                 (`runnerform status`, the service's log) and can reach GitLab",
            );
            eprintln!("{}", crate::secrets::mask(&msg));
            Exit::Error
        }
    }
}

/// Asks on the terminal. Refuses when stdin is not one: a provisioning script must say --yes.
fn confirm() -> Result<bool, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(
            "stdin is not a terminal, so apply cannot ask for confirmation; pass --yes to apply \
             without asking (nothing was written)"
                .into(),
        );
    }
    print!("Apply these changes? Only 'yes' is accepted: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim() == "yes")
}

/// Plans again with the saved plan's options; refuses unless every view is as it was and the
/// steps are exactly the saved ones.
fn from_planfile(cli: &Cli, ui: &Ui, file: &std::path::Path) -> Result<Planned, Exit> {
    let saved = SavedPlan::read(file).map_err(|p| {
        ui.problem(&p);
        Exit::Error
    })?;
    let opts = saved.options(crate::local::expand::Environment::from_process());
    let planned = make_plan(cli, ui, &opts)?;
    engine::check_saved(&saved, &planned.plan, file, &cli.file).map_err(|p| {
        ui.problem(&p);
        Exit::Error
    })?;
    Ok(planned)
}
