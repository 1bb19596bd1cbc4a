//! `runnerform apply`: converge the host to the KDL file, after showing the plan.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::apply::apply_local;
use crate::cli::planning::{PlanFlags, PlanOptions, Planned, make_plan};
use crate::cli::{Cli, Ui, plan_view};
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
        None => match make_plan(cli, ui, &args.flags.options()) {
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
    if !plan.changes_pending {
        ui.say("No changes. Nothing was written.");
        return wait_online(ui, &planned, args.wait_online);
    }
    if planned.online.is_none() && !plan.writes_anything() {
        ui.say("Nothing to apply offline.");
        return Exit::Success;
    }
    if !saved && !args.yes {
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
    let wait = Duration::from_secs(args.lock_timeout);
    let on_wait = || {
        eprintln!(
            "Waiting for another runnerform to finish applying to {}…",
            plan.config_toml
        );
    };
    let result = match &planned.online {
        Some(online) => {
            let cx = crate::apply::online::Context {
                desired: &planned.desired,
                client: &online.client,
                remote: &online.remote,
                runtime: &online.runtime,
                secrets: &planned.views.secrets,
            };
            let mut progress = |line: &str| ui.say(format!("  {line}"));
            crate::apply::online::apply_online(plan, &cx, wait, on_wait, &mut progress)
        }
        None => apply_local(plan, wait, on_wait),
    };
    let result = result.and_then(|mut applied| {
        if let (Some(sp), Some(spec)) = (&plan.service, &planned.service)
            && sp.is_change()
        {
            let mut progress = |line: &str| ui.say(format!("  {line}"));
            crate::service::control::execute(spec, sp, &mut progress)?;
            applied.service_steps = sp.steps.len();
        }
        Ok(applied)
    });
    match result {
        Ok(applied) => {
            let mut what = Vec::new();
            if applied.config_written {
                what.push(format!("wrote {}", plan.config_toml));
            }
            if applied.state_written {
                what.push("updated the ownership record".to_string());
            }
            if applied.gitlab_writes > 0 {
                what.push(format!(
                    "{} change{} on GitLab",
                    applied.gitlab_writes,
                    if applied.gitlab_writes == 1 { "" } else { "s" }
                ));
            }
            if let Some(sp) = plan.service.as_ref().filter(|_| applied.service_steps > 0) {
                let steps: Vec<&str> = sp.steps.iter().map(|s| s.word()).collect();
                what.push(format!("service {}: {}", sp.name, steps.join(", ")));
            }
            ui.say(format!("Apply complete: {}.", what.join(", ")));
            wait_online(ui, &planned, args.wait_online)
        }
        Err(p) => {
            ui.problem(&p);
            Exit::Error
        }
    }
}

/// `--wait-online`: polls GitLab until the declared runners have contacted it from this host.
fn wait_online(ui: &Ui, planned: &Planned, timeout: Option<Duration>) -> Exit {
    let (Some(timeout), Some(online)) = (timeout, &planned.online) else {
        return Exit::Success;
    };
    let plan = &planned.plan;
    let path = std::path::Path::new(&plan.config_toml);
    // The ids are those config.toml holds now, after apply wrote it.
    let local = match crate::local::read(path) {
        Ok(l) => l,
        Err(p) => {
            ui.problem(&p);
            return Exit::Error;
        }
    };
    let ids: std::collections::HashMap<&str, i64> = local
        .runners()
        .iter()
        .filter_map(|t| {
            Some((
                t.get("name")?.as_str()?,
                t.get("id")
                    .and_then(toml_edit::Item::as_integer)
                    .unwrap_or(0),
            ))
        })
        .collect();
    let mut waiting = Vec::new();
    let mut missing = Vec::new();
    for r in plan.runners.iter().filter(|r| {
        !matches!(
            r.action,
            crate::plan::Action::Delete | crate::plan::Action::Unmanaged
        )
    }) {
        match ids.get(r.name.as_str()) {
            Some(&id) if id > 0 => waiting.push(crate::remote::wait::Waiting {
                name: r.name.clone(),
                id,
            }),
            _ => missing.push(r.name.clone()),
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "error: cannot wait for {}: config.toml has no GitLab id for {}",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        );
        return Exit::Error;
    }
    ui.say(format!(
        "Waiting up to {}s for {} runner{} to come online…",
        timeout.as_secs(),
        waiting.len(),
        if waiting.len() == 1 { "" } else { "s" }
    ));
    let sid = || crate::cli::planning::system_id(path);
    let mut on_online = |name: &str| ui.say(format!("  online: {name}"));
    let result = online.runtime.block_on(crate::remote::wait::wait_online(
        &online.client,
        waiting,
        &sid,
        timeout,
        Duration::from_millis(500),
        &mut on_online,
    ));
    match result {
        Ok(()) => {
            ui.say("All runners are online.");
            Exit::Success
        }
        Err(late) => {
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

/// Re-plans with the saved plan's options and refuses if any view changed since it was made.
fn from_planfile(cli: &Cli, ui: &Ui, file: &std::path::Path) -> Result<Planned, Exit> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        eprintln!(
            "error: cannot read plan {}: {}",
            file.display(),
            crate::desired::load::io_reason(&e)
        );
        Exit::Error
    })?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
        eprintln!(
            "error: {} is not a plan saved by `runnerform plan --out`: {e}",
            file.display()
        );
        Exit::Error
    })?;
    if saved.format != crate::plan::FORMAT {
        eprintln!(
            "error: {} has plan format {}, this runnerform applies format {}",
            file.display(),
            saved.format,
            crate::plan::FORMAT
        );
        return Err(Exit::Error);
    }
    let saved_path = PathBuf::from(&saved.config_toml);
    let planned = make_plan(
        cli,
        ui,
        &PlanOptions {
            offline: saved.offline,
            targets: &saved.targets,
            config_toml: Some(&saved_path),
            concurrency: 8,
            rotate_within: saved.rotate_within,
            verify_tokens: false,
            delete_unmanaged: saved.delete_unmanaged,
        },
    )?;
    let now = &planned.plan.fingerprints;
    let mut changed = Vec::new();
    if now.desired != saved.fingerprints.desired {
        changed.push(format!(
            "the KDL file {} (or a secret it reads)",
            cli.file.display()
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
    if !changed.is_empty() {
        eprintln!(
            "error: the saved plan {} is stale: {} changed since it was made\n  help: run \
             `runnerform plan --out {}` again and review the new plan; nothing was written",
            file.display(),
            changed.join(" and "),
            file.display()
        );
        return Err(Exit::Error);
    }
    Ok(planned)
}

#[derive(serde::Deserialize)]
struct SavedPlan {
    format: u32,
    offline: bool,
    config_toml: String,
    targets: Vec<String>,
    rotate_within: u64,
    delete_unmanaged: bool,
    fingerprints: crate::plan::Fingerprints,
}
