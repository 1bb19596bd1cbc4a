//! The quickstart: runnerform against its built-in GitLab simulator, in a temporary directory.
//!
//! It starts the simulator, registers one runner "by hand" the way `gitlab-runner register`
//! would (so the host has history), writes a KDL file, and then runs runnerform's real
//! commands: validate, plan, apply, and a second plan that has nothing left to do.
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
    step("Plan (config.toml side; creating runners on GitLab comes with the GitLab half)");
    if runnerform(d, &["plan", "--offline"]) != Exit::Success {
        return ExitCode::FAILURE;
    }
    step("Apply");
    if runnerform(d, &["apply", "--offline", "--yes"]) != Exit::Success {
        return ExitCode::FAILURE;
    }
    step("Plan again: the adopted runner matches; only the GitLab-side creates remain");
    let again = runnerform(d, &["plan", "--offline", "--detailed-exitcode"]);
    println!("(exit code {})", again as u8);

    let requests = sim.requests();
    step(&format!(
        "The simulator saw {} request(s); runnerform sent none of them offline",
        requests.len()
    ));
    for r in requests {
        println!(
            "  {} {} -> {}",
            r.method,
            r.path,
            r.status.map_or("dropped".into(), |s| s.to_string())
        );
    }
    ExitCode::SUCCESS
}
