//! Registrations runnerform can prove are its own (design invariant 9), the journal that makes
//! a crash at any point safe, and interruption. Each test here fails if runnerform guesses.

use std::time::Duration;

use runnerform::sim::{Fault, FaultKind};

use crate::test_online::{FLEET, Host};

const ONE: &str =
    "config \"config.toml\"\nrunner \"inst\" {\n    instance\n    executor \"shell\"\n}\n";

/// A colleague's runner that looks exactly like the one runnerform is about to register: same
/// scope, same description, never contacted.
fn look_alike(h: &Host) -> runnerform::remote::Credentials {
    h.as_admin(async |c| {
        c.create_runner(&serde_json::json!({
            "runner_type": "instance_type",
            "description": "inst",
        }))
        .await
    })
    .unwrap()
}

/// The next registration reaches GitLab, which registers the runner, but its answer is lost.
fn lose_the_answer_after_gitlab_acted(h: &Host) {
    h.sim.inject(
        Fault::new("/api/v4/user/runners", FaultKind::Drop)
            .method("POST")
            .after(),
    );
}

fn entry_id(h: &Host, name: &str) -> Option<i64> {
    let doc: toml_edit::DocumentMut = h.config().parse().ok()?;
    doc.get("runners")?
        .as_array_of_tables()?
        .iter()
        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))?
        .get("id")?
        .as_integer()
}

/// Every entry's token works, each for its own runner, and GitLab has nothing else.
fn converged(h: &Host, expected: usize) {
    let doc: toml_edit::DocumentMut = h.config().parse().unwrap();
    let entries = doc["runners"].as_array_of_tables().unwrap();
    assert_eq!(entries.len(), expected, "{}", h.config());
    let mut ids = Vec::new();
    for t in entries.iter() {
        let id = t["id"].as_integer().unwrap() as u64;
        assert_eq!(
            h.sim.runner_for_token(t["token"].as_str().unwrap()),
            Some(id),
            "the token of {} is lost",
            t["name"]
        );
        ids.push(id);
    }
    let mut on_gitlab: Vec<u64> = h.sim.runners().iter().map(|r| r.id).collect();
    on_gitlab.sort_unstable();
    ids.sort_unstable();
    assert_eq!(on_gitlab, ids, "duplicates or orphans on GitLab");
    for r in h.sim.runners() {
        assert!(
            !r.maintenance_note
                .as_deref()
                .unwrap_or_default()
                .starts_with("runnerform-claim:"),
            "a claim marker stayed on runner {}",
            r.id
        );
    }
    let leftovers: Vec<String> = std::fs::read_dir(h.env.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp") || n.contains("journal"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn a_look_alike_is_never_taken_over_when_gitlab_did_not_act() {
    let h = Host::new(ONE);
    let colleague = look_alike(&h);
    // The registration is lost before GitLab acts on it.
    h.sim
        .inject(Fault::new("/api/v4/user/runners", FaultKind::Drop).method("POST"));
    let first = h.run(&["apply", "--yes"]);
    assert_eq!(first.code, 1, "{}", first.combined());
    assert_eq!(h.sim.runners().len(), 1);

    let plan = h.run(&["plan"]);
    assert!(
        plan.stdout.contains("POST /user/runners"),
        "{}",
        plan.stdout
    );
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    assert_eq!(
        h.sim.runner_for_token(&colleague.token),
        Some(colleague.id as u64),
        "the colleague's token was reset"
    );
    assert_ne!(entry_id(&h, "inst"), Some(colleague.id));
    assert_eq!(h.sim.runners().len(), 2);
}

#[test]
fn after_a_lost_answer_only_the_runner_with_the_marker_is_taken_over() {
    let h = Host::new(ONE);
    // GitLab registers it, the answer is lost; then a colleague registers a look-alike.
    lose_the_answer_after_gitlab_acted(&h);
    assert_eq!(h.run(&["apply", "--yes"]).code, 1);
    let ours = h.sim.runners()[0].id;
    let colleague = look_alike(&h);

    let plan = h.run(&["plan"]);
    assert!(
        plan.stdout
            .contains(&format!("registered it as runner {ours}")),
        "{}",
        plan.stdout
    );
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    assert_eq!(entry_id(&h, "inst"), Some(ours as i64), "its own runner");
    assert_eq!(
        h.sim.runner_for_token(&colleague.token),
        Some(colleague.id as u64),
        "the colleague's token still works"
    );
    assert_eq!(h.sim.runners().len(), 2, "no orphan, no duplicate");
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn a_registration_whose_marker_cannot_be_read_is_refused_with_what_to_check() {
    let h = Host::new(ONE);
    lose_the_answer_after_gitlab_acted(&h);
    assert_eq!(h.run(&["apply", "--yes"]).code, 1);
    let ours = h.sim.runners()[0].id;
    h.sim.inject(
        Fault::new(
            &format!("/api/v4/runners/{ours}"),
            FaultKind::Status { status: 403 },
        )
        .method("GET")
        .times(100),
    );
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("unproven_claim"), "{}", out.stderr);
    assert!(out.stderr.contains("pending_creates"), "{}", out.stderr);
    assert_eq!(h.sim.runners().len(), 1, "nothing registered meanwhile");
}

#[test]
fn two_hosts_one_killed_after_its_registration_landed_take_nothing_from_each_other() {
    let a = Host::new(ONE);
    // Host b: another machine applying the same file against the same GitLab.
    let b_env = crate::common::TestEnvironment::new();
    b_env.write("gitlab-token", &a.sim.admin_token());
    b_env.write(
        "runners.kdl",
        &format!(
            "gitlab \"{}\" {{\n    token file=\"gitlab-token\"\n}}\n{ONE}",
            a.sim.url()
        ),
    );
    let mut killed = a.env.command(&["apply", "--yes"]);
    killed.env("RUNNERFORM_TEST_ABORT_AFTER", "1");
    let status = killed.output().unwrap().status;
    assert!(!status.success(), "the fail-point aborts");
    assert_eq!(a.sim.runners().len(), 1, "its registration landed");
    let a_runner = a.sim.runners()[0].id;

    let b = b_env.run(&["apply", "--yes"]);
    assert_eq!(b.code, 0, "{}", b.combined());
    let again = a.run(&["apply", "--yes"]);
    assert_eq!(again.code, 0, "{}", again.combined());
    assert_eq!(entry_id(&a, "inst"), Some(a_runner as i64));
    let b_cfg: toml_edit::DocumentMut = std::fs::read_to_string(b_env.path().join("config.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let b_token = b_cfg["runners"][0]["token"].as_str().unwrap();
    let b_id = b_cfg["runners"][0]["id"].as_integer().unwrap() as u64;
    assert_ne!(b_id, a_runner);
    assert_eq!(
        a.sim.runner_for_token(b_token),
        Some(b_id),
        "b's token works"
    );
    assert_eq!(a.sim.runners().len(), 2, "one runner per host");
}

/// The declaration after a change that creates, updates and deletes.
fn changed_fleet() -> String {
    format!(
        "{}runner \"extra\" {{\n    instance\n}}\nrunner \"extra2\" {{\n    group \"acme\"\n}}\n",
        FLEET
            .replace(
                "runner \"proj2\" {\n    project 1001\n    description \"by id\"\n}\n",
                ""
            )
            .replace("tags \"a\" \"b\"", "tags \"a\" \"c\"")
    )
}

#[test]
fn a_crash_after_any_effect_loses_no_token_and_repeats_nothing() {
    // How many effects the change has, counted on a run that is not interrupted.
    let count = {
        let h = Host::new(FLEET);
        assert_eq!(h.run(&["apply", "--yes"]).code, 0);
        h.declare(&changed_fleet());
        h.sim.clear_requests();
        assert_eq!(h.run(&["apply", "--yes"]).code, 0);
        converged(&h, 6);
        h.sim
            .requests()
            .iter()
            .filter(|r| r.write && r.status.is_some_and(|s| s < 400))
            .count()
    };
    assert!(count >= 6, "creates, updates and deletes: {count}");
    // Every effect, then the two writes at the end.
    for k in 1..=count + 2 {
        let h = Host::new(FLEET);
        assert_eq!(h.run(&["apply", "--yes"]).code, 0);
        h.declare(&changed_fleet());
        let mut crash = h.env.command(&["apply", "--yes"]);
        crash.env("RUNNERFORM_TEST_ABORT_AFTER", k.to_string());
        let out = crash.output().unwrap();
        assert!(
            !out.status.success(),
            "k={k}: no crash:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let after = h.run(&["apply", "--yes"]);
        assert_eq!(after.code, 0, "k={k}: {}", after.combined());
        converged(&h, 6);
        let clean = h.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(clean.code, 0, "k={k}: {}", clean.combined());
    }
}

#[test]
fn ctrl_c_during_registrations_never_leaves_a_duplicate() {
    use std::process::Stdio;
    let mut interrupted = 0;
    for round in 0..20u64 {
        let h = Host::new(FLEET);
        h.sim
            .set_latency("/api/v4/user/runners", Duration::from_millis(150));
        let child = h
            .env
            .command(&["apply", "--yes", "--concurrency", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Somewhere in the middle of the registrations (or, now and then, still planning,
        // where Ctrl-C simply ends the process: nothing is written then).
        std::thread::sleep(Duration::from_millis(100 + (round * 37) % 500));
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("steps done") {
            assert_eq!(out.status.code(), Some(1), "round {round}: {stderr}");
            assert!(stderr.contains("Not done:"), "round {round}: {stderr}");
            interrupted += 1;
        }
        // Re-apply at once.
        let again = h.run(&["apply", "--yes"]);
        assert_eq!(again.code, 0, "round {round}: {}", again.combined());
        converged(&h, 5);
    }
    assert!(
        interrupted >= 5,
        "only {interrupted} of 20 rounds were interrupted while applying"
    );
}
