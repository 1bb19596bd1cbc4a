//! The quickstart: runnerform against its built-in GitLab simulator, in a temporary directory.
//!
//! It starts the simulator, registers one runner "by hand" the way `gitlab-runner register`
//! would (so the host has history), writes a KDL file, and then drives runnerform's engine as
//! a library (the same calls the command line makes): validate, plan, apply, a second plan
//! with nothing left to do, a change made "in the UI" detected as drift, and its repair.
//!
//! Run with: cargo run --example quickstart

use std::path::Path;
use std::process::ExitCode;

use runnerform::desired::{self, Desired, RefCheck};
use runnerform::engine::{self, ApplyOptions, Event, Options, Planned};
use runnerform::plan::Side;
use runnerform::remote::{Client, ClientOptions};
use runnerform::sim::{SimOptions, Simulator};

fn step(title: &str) {
    println!("\n━━ {title}");
}

/// Reads the KDL file as `runnerform validate` does, printing its problems.
fn read(dir: &Path) -> Option<Desired> {
    let loaded = desired::read(&dir.join("runners.kdl"), RefCheck::Require);
    for p in &loaded.problems.list {
        eprint!(
            "{}",
            runnerform::diag::render(
                p,
                runnerform::diag::Style {
                    color: false,
                    width: 100
                }
            )
        );
    }
    loaded.desired
}

/// Plans with the engine and shows each runner's action, its changes and its steps.
fn plan(dir: &Path) -> Option<Planned> {
    let desired = read(dir)?;
    let planned = match engine::plan(desired, &Options::default()) {
        Ok(p) => p,
        Err(problems) => {
            for p in problems {
                eprintln!("error: {}", p.message);
            }
            return None;
        }
    };
    let plan = &planned.plan;
    for r in plan.runners.iter().filter(|r| r.action.is_change()) {
        println!("  {} {}: {}", r.action.symbol(), r.name, r.action.word());
        println!("      {}", r.reason);
        for c in &r.changes {
            let side = if c.side == Side::Gitlab {
                " (GitLab)"
            } else {
                ""
            };
            let old = c
                .key
                .old
                .as_deref()
                .map_or(String::new(), |o| format!("{o} -> "));
            let new = c.key.new.as_deref().unwrap_or("(removed)");
            println!("      {}: {old}{new}{side}", c.key.path);
        }
        let steps: Vec<String> = r
            .steps
            .iter()
            .map(|s| match s.request() {
                Some(req) => format!("{} {}", req.method, req.path),
                None => s.word().to_string(),
            })
            .collect();
        println!("      steps: {}", steps.join(", then "));
    }
    if !plan.diff.is_empty() {
        print!("{}", plan.diff);
    }
    println!("{}", plan.summary_line());
    Some(planned)
}

/// Applies with the engine, printing each step as it finishes.
fn apply(planned: &Planned) -> bool {
    let mut on_event = |e: Event| {
        if let Event::Finished {
            index,
            total,
            runner,
            step,
            detail,
        } = e
        {
            let detail = if detail.is_empty() {
                detail
            } else {
                format!(" ({detail})")
            };
            println!("  [{index}/{total}] {runner}: {step}{detail}");
        }
    };
    match engine::apply(planned, &ApplyOptions::default(), &mut on_event) {
        Ok(outcome) => {
            println!(
                "Apply complete: {} registered, {} updated, {} deleted on GitLab; config.toml {}.",
                outcome.registered,
                outcome.updated,
                outcome.deleted,
                if outcome.config_written {
                    "written"
                } else {
                    "unchanged"
                }
            );
            true
        }
        Err(failure) => {
            eprintln!("error: {}", failure.problem.message);
            false
        }
    }
}

/// Whether a fresh plan has changes pending (what `plan --detailed-exitcode` reports as 2).
fn drift(dir: &Path) -> Option<bool> {
    let planned = plan(dir)?;
    Some(planned.plan.changes_pending)
}

fn main() -> ExitCode {
    let sim = Simulator::start(SimOptions::default()).expect("start the GitLab simulator");
    let dir = tempfile::tempdir().expect("temporary directory");
    let d = dir.path();
    step(&format!("A GitLab simulator is listening on {}", sim.url()));

    // The host already has a runner that someone registered by hand.
    let client = Client::new(&ClientOptions {
        token: Some(sim.admin_token()),
        ..ClientOptions::new(&sim.url())
    })
    .expect("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = serde_json::json!({
        "runner_type": "instance_type",
        "description": "docs",
        "tag_list": ["shell"],
    });
    let created = rt
        .block_on(client.call(reqwest::Method::POST, "/user/runners", &[], Some(&body)))
        .expect("register a runner on the simulator");
    let id = created.body["id"].as_i64().unwrap_or_default();
    let token = created.body["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let config = format!(
        "concurrent = 1\ncheck_interval = 0\n\n[session_server]\n  session_timeout = 1800\n\n\
         [[runners]]\n  name = \"docs\"\n  url = \"{url}\"\n  id = {id}\n  token = \"{token}\"\n  \
         executor = \"shell\"\n",
        url = sim.url()
    );
    std::fs::write(d.join("config.toml"), &config).expect("write config.toml");
    std::fs::write(d.join("gitlab-token"), sim.admin_token()).expect("write token file");
    println!(
        "config.toml holds runner `docs` (GitLab id {id}), registered by hand; its token is \
         masked in everything runnerform shows."
    );

    let kdl = format!(
        r#"// The host as it should be: the existing runner, adopted and tuned, and two new ones.
gitlab "{url}" {{
    token file="gitlab-token"
}}

config "config.toml" {{
    concurrent 4
    check_interval 3
}}

template "docker" {{
    executor "docker"
    docker {{
        image "alpine:3.20"
        volumes "/cache"
    }}
}}

runner "docs" {{
    instance
    executor "shell"
    limit 1
}}

runner "build" count=2 template="docker" {{
    project "acme/app"
    tags "docker" "linux"
    run_untagged #false
}}
"#,
        url = sim.url()
    );
    std::fs::write(d.join("runners.kdl"), &kdl).expect("write runners.kdl");
    step("runners.kdl");
    print!("{kdl}");

    step("Check the file");
    if read(d).is_none() {
        return ExitCode::FAILURE;
    }
    println!("runners.kdl is valid.");
    step("Plan: what apply would change, in config.toml and on GitLab, step by step");
    let Some(planned) = plan(d) else {
        return ExitCode::FAILURE;
    };
    step("Apply: exactly the steps of that plan");
    if !apply(&planned) {
        return ExitCode::FAILURE;
    }
    step("Plan again: nothing left to do");
    if drift(d) != Some(false) {
        eprintln!("error: the second plan still has changes");
        return ExitCode::FAILURE;
    }

    // Someone changes the build-1 runner's tags in GitLab's UI.
    let build1 = sim
        .runners()
        .into_iter()
        .find(|r| r.description.as_deref() == Some("build-1"));
    if let Some(r) = build1 {
        let edit = runnerform::sim::RunnerEdit {
            tag_list: Some(vec!["changed-in-the-ui".into()]),
            ..Default::default()
        };
        sim.edit_runner(r.id, &edit).expect("edit in the simulator");
    }
    step("Someone edited build-1's tags in the UI: a scheduled plan sees the drift");
    let Some(planned) = plan(d) else {
        return ExitCode::FAILURE;
    };
    if !planned.plan.changes_pending {
        eprintln!("error: the drift was not seen");
        return ExitCode::FAILURE;
    }
    step("Apply repairs it");
    if !apply(&planned) {
        return ExitCode::FAILURE;
    }
    if drift(d) != Some(false) {
        eprintln!("error: the repair left changes");
        return ExitCode::FAILURE;
    }

    step(&format!(
        "GitLab now has {} runners; config.toml:",
        sim.runners().len()
    ));
    let cfg = std::fs::read_to_string(d.join("config.toml")).unwrap_or_default();
    print!("{}", runnerform::secrets::mask(&cfg));
    ExitCode::SUCCESS
}
