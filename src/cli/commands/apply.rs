//! `runnerform apply`: converge the host to the KDL file, after showing the plan.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::planning::{PlanFlags, plan_or_problems};
use crate::cli::progress::Progress;
use crate::cli::{Cli, Ui, plan_view};
use crate::diag::Problem;
use crate::engine::{self, Event, Planned, SavedPlan, WaitError};
use crate::exit::Exit;
use crate::output::{ApplyEvent, ApplySummary, LateRunner, ProblemReport, StepReport};

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

    /// Print JSON lines instead of text: one per event as it happens, then a summary with
    /// `changed` (schemas/apply-event.schema.json). Needs --yes or a PLANFILE.
    #[arg(long)]
    pub json: bool,

    /// A plan saved with `plan --out`: applied exactly as reviewed, without asking, and
    /// refused if the KDL file, config.toml, the ownership record or GitLab changed since
    pub planfile: Option<PathBuf>,
}

pub fn run(cli: &Cli, ui: &Ui, args: &Args) -> Exit {
    let progress = Arc::new(Progress::new(ui, args.json));
    let ended = converge(cli, ui, args, &progress);
    progress.finish();
    if args.json {
        json_line(&ApplyEvent::Summary(ended.summary()));
    }
    if ended.ok { Exit::Success } else { Exit::Error }
}

/// How an apply ended: the exit code, and `apply --json`'s summary.
#[derive(Default)]
struct Ended {
    ok: bool,
    outcome: engine::Outcome,
    problems: Vec<Problem>,
    not_done: Vec<(String, String)>,
    late: engine::Late,
}

impl Ended {
    fn success(outcome: engine::Outcome) -> Self {
        Ended {
            ok: true,
            outcome,
            ..Ended::default()
        }
    }

    fn failed(problems: Vec<Problem>) -> Self {
        Ended {
            problems,
            ..Ended::default()
        }
    }

    fn summary(&self) -> ApplySummary {
        ApplySummary {
            format: crate::output::APPLY_FORMAT,
            ok: self.ok,
            changed: self.outcome.changed(),
            outcome: (&self.outcome).into(),
            problems: self.problems.iter().map(ProblemReport::from).collect(),
            not_done: self
                .not_done
                .iter()
                .map(|(runner, step)| StepReport {
                    runner: runner.clone(),
                    step: step.clone(),
                })
                .collect(),
            not_online: self
                .late
                .iter()
                .map(|(runner, why)| LateRunner {
                    runner: runner.clone(),
                    last_seen: crate::secrets::mask(why),
                })
                .collect(),
        }
    }
}

/// One line of `apply --json`, written as it happens.
fn json_line(e: &ApplyEvent) {
    println!(
        "{}",
        serde_json::to_string(e).expect("apply events serialise")
    );
}

/// A problem found before anything was planned: printed, and the reason apply ends.
fn refuse(ui: &Ui, code: &'static str, message: &str) -> Ended {
    let p = Problem::error(code, message);
    ui.problem(&p);
    Ended::failed(vec![p])
}

fn converge(cli: &Cli, ui: &Ui, args: &Args, progress: &Arc<Progress>) -> Ended {
    if args.planfile.is_some() && (args.flags.offline || !args.flags.targets.is_empty()) {
        return refuse(
            ui,
            "flags",
            "a saved plan is applied with the options it was made with; drop --offline and \
             --target",
        );
    }
    if args.wait_online.is_some() && args.flags.offline {
        return refuse(
            ui,
            "flags",
            "--wait-online asks GitLab whether the runners are online, which --offline rules out",
        );
    }
    if args.json && !args.yes && args.planfile.is_none() {
        return refuse(
            ui,
            "flags",
            "apply --json shows no plan to confirm: pass --yes, or apply a plan saved with \
             `runnerform plan --out FILE` (nothing was written)",
        );
    }
    let (planned, saved) = match &args.planfile {
        Some(file) => match from_planfile(cli, ui, args, file, progress) {
            Ok(p) => (p, true),
            Err(problems) => return Ended::failed(problems),
        },
        None => match plan_or_problems(cli, ui, &args.flags.options(cli), progress) {
            Ok(p) => (p, false),
            Err(problems) => return Ended::failed(problems),
        },
    };
    let plan = &planned.plan;
    let human = !args.json;
    if human && ui.verbosity >= 0 {
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
    let nothing = if !plan.changes_pending && !plan.writes_anything() {
        Some("No changes. Nothing was written.")
    } else if planned.online.is_none() && !plan.writes_anything() {
        Some("Nothing to apply offline.")
    } else {
        None
    };
    if let Some(message) = nothing {
        if human {
            ui.say(message);
        }
        return wait_online(ui, args, &planned, engine::Outcome::default());
    }
    if !saved && !args.yes && plan.changes_pending {
        match confirm() {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("Apply cancelled; nothing was written.");
                return Ended::failed(vec![Problem::error(
                    "cancelled",
                    "apply cancelled; nothing was written",
                )]);
            }
            Err(msg) => return refuse(ui, "confirm", &msg),
        }
    }
    let opts = engine::ApplyOptions {
        lock_wait: Duration::from_secs(args.lock_timeout),
        concurrency: args.flags.concurrency,
        interrupt: Some(crate::cli::interrupt::install()),
    };
    let mut on_event = |e: Event| {
        progress.event(&e);
        if args.json {
            json_line(&ApplyEvent::from(e));
        }
    };
    let result = engine::apply(&planned, &opts, &mut on_event);
    progress.finish();
    match result {
        Ok(outcome) => {
            if human {
                ui.say(format!("Apply complete: {}.", done_summary(plan, &outcome)));
            }
            wait_online(ui, args, &planned, outcome)
        }
        Err(failure) => {
            ui.problem(&failure.problem);
            let o = &failure.outcome;
            if human {
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
            }
            Ended {
                ok: false,
                outcome: failure.outcome,
                problems: vec![failure.problem],
                not_done: failure.not_done,
                late: Vec::new(),
            }
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
/// `outcome` is what the apply before it did.
fn wait_online(ui: &Ui, args: &Args, planned: &Planned, outcome: engine::Outcome) -> Ended {
    let (Some(timeout), Some(_)) = (args.wait_online, &planned.online) else {
        return Ended::success(outcome);
    };
    let human = !args.json;
    let mut waiting = |n: usize| {
        if human {
            ui.say(format!(
                "Waiting up to {}s for {} runner{} to come online…",
                timeout.as_secs(),
                n,
                if n == 1 { "" } else { "s" }
            ))
        } else {
            json_line(&ApplyEvent::WaitingOnline {
                runners: n,
                timeout_seconds: timeout.as_secs(),
            })
        }
    };
    let mut on_online = |name: &str| {
        if human {
            ui.say(format!("  online: {name}"))
        } else {
            json_line(&ApplyEvent::Online {
                runner: name.to_string(),
            })
        }
    };
    match engine::wait_online(planned, timeout, &mut waiting, &mut on_online) {
        Ok(()) => {
            if human {
                ui.say("All runners are online.");
            }
            Ended::success(outcome)
        }
        Err(WaitError::Unusable(p)) => {
            ui.problem(&p);
            Ended {
                outcome,
                problems: vec![*p],
                ..Ended::default()
            }
        }
        Err(WaitError::Late(late)) => {
            let message = format!(
                "{} did not come online within {}s",
                crate::cli::ui::plural(late.len(), "runner"),
                timeout.as_secs()
            );
            let hint = "the changes were applied; check that the gitlab-runner service runs \
                        (`runnerform status`, the service's log) and can reach GitLab";
            let mut msg = format!("error: {message}:");
            for (name, why) in &late {
                msg.push_str(&format!("\n  {name}: {why}"));
            }
            msg.push_str(&format!("\n  help: {hint}"));
            eprintln!("{}", crate::secrets::mask(&msg));
            Ended {
                outcome,
                problems: vec![Problem::error("wait_online", message).help(hint)],
                late,
                ..Ended::default()
            }
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
fn from_planfile(
    cli: &Cli,
    ui: &Ui,
    args: &Args,
    file: &std::path::Path,
    progress: &Arc<Progress>,
) -> Result<Planned, Vec<Problem>> {
    let saved = SavedPlan::read(file).map_err(|p| {
        ui.problem(&p);
        vec![p]
    })?;
    let opts = planfile_options(&saved, &args.flags);
    let planned = plan_or_problems(cli, ui, &opts, progress)?;
    engine::check_saved(&saved, &planned.plan, file, &cli.file).map_err(|p| {
        ui.problem(&p);
        vec![p]
    })?;
    Ok(planned)
}

/// The saved plan's options, and from the command line what does not change the plan's
/// steps: how many requests may be in flight.
fn planfile_options(saved: &SavedPlan, flags: &PlanFlags) -> engine::Options {
    engine::Options {
        concurrency: flags.concurrency,
        ..saved.options(crate::local::expand::Environment::from_process())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_plan_is_read_with_the_concurrency_of_the_command_line() {
        let saved: SavedPlan = serde_json::from_value(serde_json::json!({
            "format": crate::plan::FORMAT,
            "offline": false,
            "config_toml": "/etc/gitlab-runner/config.toml",
            "targets": ["a"],
            "rotate_within": 60,
            "delete_unmanaged": true,
            "fingerprints": {"desired": "d", "config_toml": "c", "state": "s", "gitlab": "g"},
            "runners": [],
        }))
        .unwrap();
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            flags: PlanFlags,
        }
        let cli = Flags::parse_from(["x", "--concurrency", "2", "--rotate-within", "1h"]);
        let opts = planfile_options(&saved, &cli.flags);
        assert_eq!(opts.concurrency, 2);
        // What shapes the steps comes from the saved plan, never from the command line.
        assert_eq!(opts.rotate_within, 60);
        assert_eq!(opts.targets, ["a"]);
        assert!(opts.delete_unmanaged);
    }
}
