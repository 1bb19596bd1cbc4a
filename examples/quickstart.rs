//! The quickstart: runnerform against its built-in GitLab simulator, in a temporary directory.
//!
//! It starts the simulator, registers one runner "by hand" the way `gitlab-runner register`
//! would (so the host has history), writes a KDL file, and then runs runnerform's real
//! commands: validate, plan, apply, a second plan with nothing left to do, a change made "in
//! the UI" detected as drift, and its repair.
//!
//! Run with: cargo run --example quickstart

use std::process::ExitCode;

use clap::Parser;
use runnerform::cli::{Cli, run};
use runnerform::exit::Exit;
use runnerform::remote::{Client, ClientOptions};
use runnerform::sim::{SimOptions, Simulator};

fn step(title: &str) {
    println!("\n━━ {title}");
}

fn runnerform(dir: &std::path::Path, args: &[&str]) -> Exit {
    let mut argv = vec!["runnerform", "-f"];
    let kdl = dir.join("runners.kdl");
    argv.push(kdl.to_str().expect("temp paths are UTF-8"));
    argv.extend_from_slice(args);
    println!("$ runnerform {}", args.join(" "));
    run(Cli::try_parse_from(&argv).expect("quickstart arguments are valid"))
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
    if runnerform(d, &["validate", "-v"]) != Exit::Success {
        return ExitCode::FAILURE;
    }
    step("Plan: what apply would change, in config.toml and on GitLab");
    if runnerform(d, &["plan"]) != Exit::Success {
        return ExitCode::FAILURE;
    }
    step("Apply");
    if runnerform(d, &["apply", "--yes"]) != Exit::Success {
        return ExitCode::FAILURE;
    }
    step("Plan again: nothing left to do (exit code 0 with --detailed-exitcode)");
    let again = runnerform(d, &["plan", "--detailed-exitcode"]);
    println!("(exit code {})", again as u8);

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
    step("Someone edited build-1's tags in the UI: a scheduled plan sees the drift (exit code 2)");
    let drift = runnerform(d, &["plan", "--detailed-exitcode"]);
    println!("(exit code {})", drift as u8);
    step("Apply repairs it");
    if runnerform(d, &["apply", "--yes"]) != Exit::Success {
        return ExitCode::FAILURE;
    }
    let last = runnerform(d, &["plan", "--detailed-exitcode"]);
    println!("(exit code {})", last as u8);

    step(&format!(
        "GitLab now has {} runners; config.toml:",
        sim.runners().len()
    ));
    let cfg = std::fs::read_to_string(d.join("config.toml")).unwrap_or_default();
    print!("{}", runnerform::secrets::mask(&cfg));
    if last != Exit::Success || drift != Exit::Changes {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
