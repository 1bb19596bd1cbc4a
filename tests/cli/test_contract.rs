//! The plan is the contract (design invariant 10): what a plan shows is what apply does, and
//! nothing else. Each test here fails when apply re-derives, guesses or does more.

use runnerform::sim::{Fault, FaultKind, MemberOf, Role};

use crate::test_online::{FLEET, Host};

/// Requests that changed GitLab, as `METHOD /path` below `/api/v4`.
fn writes(h: &Host) -> Vec<String> {
    h.sim
        .requests()
        .into_iter()
        .filter(|r| r.write && r.status.is_some_and(|s| s < 400))
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.path
                    .trim_start_matches("/api/v4")
                    .split('?')
                    .next()
                    .unwrap()
            )
        })
        .collect()
}

/// Registers an instance runner outside runnerform and appends an entry for it to config.toml
/// with its token and no id, as an old gitlab-runner would have written it. Returns its token.
fn hand_made_entry(h: &Host, name: &str) -> String {
    let made = h
        .as_admin(async |c| {
            c.create_runner(&serde_json::json!({"runner_type": "instance_type"}))
                .await
        })
        .unwrap();
    let cfg = h.config()
        + &format!(
            "\n[[runners]]\n  name = \"{name}\"\n  url = \"{}\"\n  token = \"{}\"\n  executor = \"shell\"\n",
            h.sim.url(),
            made.token
        );
    std::fs::write(h.env.path().join("config.toml"), cfg).unwrap();
    made.token
}

#[test]
fn a_create_shows_every_attribute_and_the_entry_it_will_write() {
    let h = Host::new(
        r#"config "config.toml"
runner "build" {
    project "acme/app"
    tags "docker" "linux"
    run_untagged #false
    locked #true
    access_level "ref_protected"
    maximum_timeout 3600
    executor "docker"
    docker {
        image "rust:1.83"
        privileged #false
    }
}
"#,
    );
    let plan = h.run(&["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    let text = plan.stdout.replace(&h.sim.url(), "http://GITLAB");
    insta::assert_snapshot!("create_plan", text);

    let json = h.run(&["plan", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let steps = &v["runners"][0]["steps"];
    assert_eq!(steps[0]["step"], "register");
    assert_eq!(steps[0]["request"]["method"], "POST");
    assert_eq!(steps[0]["request"]["path"], "/user/runners");
    let body = &steps[0]["request"]["body"];
    assert_eq!(body["runner_type"], "project_type");
    assert_eq!(body["project_id"], 1001);
    assert_eq!(body["tag_list"], serde_json::json!(["docker", "linux"]));
    assert_eq!(body["access_level"], "ref_protected");
    assert_eq!(steps[1]["step"], "write_entry");
    let keys: Vec<(String, String)> = steps[1]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap().to_string(),
                k["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (k, want) in [
        ("name", "\"build\""),
        ("id", "(known after apply)"),
        ("token", "(known after apply)"),
        ("executor", "\"docker\""),
        ("docker.image", "\"rust:1.83\""),
        ("docker.privileged", "false"),
    ] {
        assert!(
            keys.iter().any(|(key, v)| key == k && v == want),
            "{k} = {want} missing from {keys:?}"
        );
    }
    assert_eq!(steps[2]["step"], "own");
    assert_eq!(v["runners"][0]["reason_code"], "not_registered");
    // The config.toml diff of the plan includes the new entry.
    assert!(
        v["diff"]
            .as_str()
            .unwrap()
            .contains("+  token = \"(known after apply)\""),
        "{}",
        v["diff"]
    );
}

#[test]
fn the_default_plan_sends_only_get_requests() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    // An entry without an id, and a runner adopted by its token.
    let token = hand_made_entry(&h, "old");
    let mut h = h;
    h.env.set_env("ADOPT_TOKEN", &token);
    h.declare(&format!(
        "{FLEET}runner \"old\" {{\n    instance\n    executor \"shell\"\n}}\nrunner \"adopted\" {{\n    token env=\"ADOPT_TOKEN\"\n    executor \"shell\"\n}}\n"
    ));
    h.sim.clear_requests();
    let plan = h.run(&["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    let methods: Vec<String> = h.sim.requests().into_iter().map(|r| r.method).collect();
    assert!(!methods.is_empty());
    assert!(
        methods.iter().all(|m| m == "GET"),
        "the default plan sent {methods:?}"
    );
}

#[test]
fn a_hand_removed_entry_converges_in_one_apply_while_gitlab_still_has_the_runner() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let old_id = h.runner_named("inst").id;
    // `gitlab-runner unregister` or a person removes the entry, not the runner.
    let cfg = h.config();
    let start = cfg.find("name = \"inst\"").unwrap();
    let start = cfg[..start].rfind("[[runners]]").unwrap();
    let end = cfg[start + 1..]
        .find("[[runners]]")
        .map_or(cfg.len(), |e| start + 1 + e);
    std::fs::write(
        h.env.path().join("config.toml"),
        format!("{}{}", &cfg[..start], &cfg[end..]),
    )
    .unwrap();
    let plan = h.run(&["plan"]);
    assert!(
        plan.stdout.contains("-/+ inst: recreate"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(&format!("DELETE /runners/{old_id}")),
        "{}",
        plan.stdout
    );
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let inst: Vec<_> = h
        .sim
        .runners()
        .into_iter()
        .filter(|r| r.description.as_deref() == Some("inst"))
        .collect();
    assert_eq!(inst.len(), 1, "exactly one runner for inst: {inst:?}");
    assert_ne!(inst[0].id, old_id, "the old registration is deleted");
    assert!(h.config().contains("name = \"inst\""));
    let again = h.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.combined());
}

#[test]
fn a_hand_removed_entry_converges_in_one_apply_when_gitlab_lost_the_runner_too() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let old_id = h.runner_named("by id").id;
    h.sim.delete_runner(old_id).unwrap();
    std::fs::write(h.env.path().join("config.toml"), "concurrent = 4\n").unwrap();
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(h.sim.runners().len(), 5, "one runner per declared runner");
    assert_eq!(h.config().matches("[[runners]]").count(), 5);
    // The runner GitLab lost is not deleted again; the others' old registrations are.
    assert!(
        !out.stdout.contains(&format!("DELETE /runners/{old_id}")),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches("then DELETE /runners/").count(), 4);
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn the_apply_summary_counts_what_gitlab_was_sent() {
    let h = Host::new(FLEET);
    h.sim.clear_requests();
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(
        out.stdout.contains("GitLab: 5 registered."),
        "{}",
        out.stdout
    );
    assert_eq!(
        writes(&h)
            .iter()
            .filter(|w| *w == "POST /user/runners")
            .count(),
        5
    );

    // One more, one fewer, one changed, and an unmanaged entry without id deleted by token.
    hand_made_entry(&h, "stranger");
    h.declare(&format!(
        "{}runner \"extra\" {{\n    instance\n}}\n",
        FLEET
            .replace(
                "runner \"proj2\" {\n    project 1001\n    description \"by id\"\n}\n",
                ""
            )
            .replace("tags \"a\" \"b\"", "tags \"a\" \"c\"")
    ));
    h.sim.clear_requests();
    let out = h.run(&["apply", "--yes", "--delete-unmanaged"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let w = writes(&h);
    let count = |prefix: &str| w.iter().filter(|x| x.starts_with(prefix)).count();
    // Each registration's claim marker is cleared with one PUT of its own.
    let summary = format!(
        "GitLab: {} registered, {} updated, {} deleted.",
        count("POST /user/runners"),
        count("PUT /runners/") - count("POST /user/runners"),
        count("DELETE /runners")
    );
    assert_eq!(summary, "GitLab: 1 registered, 1 updated, 2 deleted.");
    assert!(out.stdout.contains(&summary), "{}\n{w:?}", out.stdout);
}

#[test]
fn a_token_without_the_role_for_a_later_runner_changes_nothing() {
    let h = Host::new(
        "config \"config.toml\"\nrunner \"p\" {\n    project \"acme/app\"\n    executor \"shell\"\n}\nrunner \"i\" {\n    instance\n    executor \"shell\"\n}\n",
    );
    let (user, token) = h.sim.user_with_token("maint", &["api"]).unwrap();
    h.sim
        .add_member(user, MemberOf::Project(1001), Role::Maintainer)
        .unwrap();
    h.env.write("gitlab-token", &token);
    h.sim.clear_requests();
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(
        out.stderr.contains("cannot register runner i (instance)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("administrator"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("runner p"),
        "the project runner is allowed: {}",
        out.stderr
    );
    assert!(h.sim.runners().is_empty());
    assert!(writes(&h).is_empty(), "{:?}", writes(&h));
    assert!(!h.env.path().join("config.toml").exists());
}

#[test]
fn a_saved_plan_is_carried_out_step_for_step_and_a_changed_one_is_refused() {
    let h = Host::new(FLEET);
    let plan = h.run(&["plan", "--out", "saved.json"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    let saved_path = h.env.path().join("saved.json");
    let saved = std::fs::read_to_string(&saved_path).unwrap();

    // A plan file whose steps were edited is not what was reviewed.
    let mut doc: serde_json::Value = serde_json::from_str(&saved).unwrap();
    doc["runners"][0]["steps"][0]["request"]["body"]["description"] = "evil".into();
    let tampered = serde_json::to_string_pretty(&doc).unwrap();
    std::fs::write(h.env.path().join("tampered.json"), &tampered).unwrap();
    let out = h.run(&["apply", "tampered.json"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("is stale"), "{}", out.stderr);
    assert!(h.sim.runners().is_empty());

    h.sim.clear_requests();
    let out = h.run(&["apply", "saved.json"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    // GitLab got exactly the requests the saved plan lists, in its order.
    let v: serde_json::Value = serde_json::from_str(&saved).unwrap();
    let planned: Vec<String> = v["runners"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["steps"].as_array().unwrap().clone())
        .filter_map(|s| {
            let req = s.get("request")?;
            Some(format!(
                "{} {}",
                req["method"].as_str()?,
                req["path"].as_str()?
            ))
        })
        .collect();
    // Runners are applied in parallel: the same requests, each runner's in its own order.
    let norm = |v: Vec<String>| {
        let mut v: Vec<String> = v
            .into_iter()
            .map(|w| {
                let (m, p) = w.split_once(' ').unwrap();
                let p = match p.strip_prefix("/runners/") {
                    Some(_) => "/runners/:id".to_string(),
                    None => p.to_string(),
                };
                format!("{m} {p}")
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(norm(writes(&h)), norm(planned));
}

#[test]
fn an_apply_that_fails_midway_says_what_was_done_and_what_was_not() {
    let h = Host::new(FLEET);
    h.sim.inject(
        Fault::new("/api/v4/user/runners", FaultKind::Status { status: 422 })
            .method("POST")
            .times(100)
            .after_first(2),
    );
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("Apply stopped after"), "{}", out.stderr);
    assert!(out.stderr.contains("Not done:"), "{}", out.stderr);
    assert_eq!(h.sim.runners().len(), 2);
    assert_eq!(h.config().matches("[[runners]]").count(), 2);
    // The rest converges.
    h.sim.clear_faults();
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    assert_eq!(h.sim.runners().len(), 5);
}

#[test]
fn the_engine_plans_and_applies_without_the_command_line() {
    use runnerform::engine::{self, ApplyOptions, Event, Options};
    let h = Host::new(FLEET);
    let kdl = h.env.path().join("runners.kdl");
    let d = runnerform::desired::read(&kdl, runnerform::desired::RefCheck::Require)
        .desired
        .expect("valid");
    let planned = engine::plan(d, &Options::default()).expect("plan");
    assert_eq!(planned.plan.summary.create, 5);
    let mut finished = 0;
    let outcome = engine::apply(&planned, &ApplyOptions::default(), &mut |e| {
        if let Event::Finished { .. } = e {
            finished += 1;
        }
    })
    .expect("apply");
    assert_eq!(outcome.registered, 5);
    assert_eq!(finished, outcome.steps_total);
    assert!(outcome.changed());
    assert_eq!(h.sim.runners().len(), 5);
    let d = runnerform::desired::read(&kdl, runnerform::desired::RefCheck::Require)
        .desired
        .unwrap();
    let again = engine::plan(d, &Options::default()).expect("plan");
    assert!(!again.plan.changes_pending);
}
