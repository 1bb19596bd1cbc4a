//! `apply --json`: one JSON line per event, then a summary whose `changed` a provisioning
//! tool can trust; every line valid against `schemas/apply-event.schema.json`.

use crate::common::{Output, TestEnvironment};
use crate::test_online::{FLEET, Host};

/// Every stdout line, each checked against the committed (and fresh) schema.
fn lines(out: &Output) -> Vec<serde_json::Value> {
    let v = crate::test_cli::validator(
        "apply-event.schema.json",
        &runnerform::output::apply_event_schema(),
    );
    out.stdout
        .lines()
        .map(|l| {
            let doc: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}\n{}", out.combined()));
            let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:?}\n{doc}");
            doc
        })
        .collect()
}

/// The last line, which must be the only summary.
fn summary(lines: &[serde_json::Value]) -> &serde_json::Value {
    let last = lines.last().expect("at least the summary");
    assert_eq!(last["event"], "summary", "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| l["event"] == "summary").count(),
        1,
        "{lines:#?}"
    );
    last
}

#[test]
fn apply_json_reports_each_step_and_changed_then_unchanged() {
    let h = Host::new(FLEET);
    let out = h.run(&["apply", "--yes", "--json"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(out.stderr, "");
    let first = lines(&out);
    let s = summary(&first);
    assert_eq!(s["ok"], true);
    assert_eq!(s["changed"], true);
    assert_eq!(s["outcome"]["registered"], 5);
    assert_eq!(s["outcome"]["config_written"], true);
    // Each create: register, write the entry, record ownership, clear the claim marker.
    assert_eq!(s["outcome"]["steps_done"], 20);
    assert_eq!(s["problems"], serde_json::json!([]));
    let finished: Vec<&serde_json::Value> =
        first.iter().filter(|l| l["event"] == "finished").collect();
    assert_eq!(finished.len(), 20);
    assert_eq!(first.iter().filter(|l| l["event"] == "started").count(), 20);
    // Runners are applied in parallel: each runner's steps in order, in any interleaving.
    let inst: Vec<&str> = finished
        .iter()
        .filter(|f| f["runner"] == "inst")
        .map(|f| f["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        inst,
        [
            "register",
            "write the entry",
            "record ownership",
            "clear the claim marker"
        ]
    );
    assert!(
        finished
            .iter()
            .any(|f| f["step"] == "register" && f["detail"] == "GitLab id 1")
    );
    assert_eq!(finished[19]["index"], 20);
    assert_eq!(finished[19]["total"], 20);

    let again = h.run(&["apply", "--yes", "--json"]);
    assert_eq!(again.code, 0, "{}", again.combined());
    let second = lines(&again);
    assert_eq!(second.len(), 1, "nothing but the summary: {second:#?}");
    let s = summary(&second);
    assert_eq!((&s["ok"], &s["changed"]), (&true.into(), &false.into()));
    assert_eq!(s["outcome"]["steps_total"], 0);
    let v = crate::test_cli::validator(
        "apply-event.schema.json",
        &runnerform::output::apply_event_schema(),
    );
    let mut broken = s.clone();
    broken["changed"] = "no".into();
    assert!(!v.is_valid(&broken), "the schema constrains changed");
    let mut unknown = first[0].clone();
    unknown["event"] = "exploded".into();
    assert!(!v.is_valid(&unknown), "the schema lists the events");

    // A plan saved and applied with --json says the same, without --yes.
    h.declare(&FLEET.replace("tags \"a\" \"b\"", "tags \"a\""));
    assert_eq!(h.run(&["plan", "--out", "p.json"]).code, 0);
    let saved = h.run(&["apply", "p.json", "--json"]);
    assert_eq!(saved.code, 0, "{}", saved.combined());
    let s = summary(&lines(&saved)).clone();
    assert_eq!(s["changed"], true);
    assert_eq!(s["outcome"]["updated"], 1);
    assert_eq!(h.runner_named("inst").tag_list, ["a"]);
}

#[test]
fn apply_json_that_fails_midway_lists_the_problem_and_the_steps_not_done() {
    let h = Host::new(FLEET);
    h.sim.inject(
        runnerform::sim::Fault::new(
            "/api/v4/user/runners",
            runnerform::sim::FaultKind::Status { status: 422 },
        )
        .method("POST")
        .times(100)
        .after_first(2),
    );
    // One runner at a time, so that which runners fail is the plan's order.
    let out = h.run(&["apply", "--yes", "--json", "--concurrency", "1"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    let all = lines(&out);
    let s = summary(&all);
    assert_eq!(s["ok"], false);
    assert_eq!(
        s["changed"], true,
        "two runners were registered and written"
    );
    assert_eq!(s["outcome"]["registered"], 2);
    assert_eq!(s["outcome"]["steps_done"], 8);
    assert_eq!(s["problems"].as_array().unwrap().len(), 1, "{s:#}");
    assert!(!s["problems"][0]["message"].as_str().unwrap().is_empty());
    let not_done: Vec<String> = s["not_done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{}: {}",
                n["runner"].as_str().unwrap(),
                n["step"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        not_done.first().map(String::as_str),
        Some("grp-2: register"),
        "{not_done:?}"
    );
    assert!(
        not_done.contains(&"proj2: record ownership".to_string()),
        "{not_done:?}"
    );
    // The human account is not printed; the diagnostic still is, on stderr.
    assert!(
        !out.combined().contains("Apply stopped after"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("422"), "{}", out.stderr);

    // Nothing planned at all: still one summary, changed false.
    h.sim.clear_faults();
    let env = TestEnvironment::new();
    env.write("runners.kdl", "runner \"a\" {\n    exector \"shell\"\n}\n");
    let bad = env.run(&["apply", "--yes", "--json"]);
    assert_eq!(bad.code, 1);
    let s = summary(&lines(&bad)).clone();
    assert_eq!((&s["ok"], &s["changed"]), (&false.into(), &false.into()));
    assert!(
        s["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["code"] == "unknown_key" && p["line"] == 2),
        "{s:#}"
    );
}

#[test]
fn apply_json_without_yes_is_refused_before_anything_is_planned() {
    let h = Host::new(FLEET);
    let out = h.run(&["apply", "--json"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    let s = summary(&lines(&out)).clone();
    assert_eq!(s["problems"][0]["code"], "flags");
    assert!(h.sim.requests().is_empty(), "GitLab was not even read");
    assert!(h.config().is_empty());
}

#[test]
fn apply_json_reports_runners_that_did_not_come_online() {
    let h = Host::new(
        "config \"config.toml\"\nrunner \"inst\" {\n    instance\n    executor \"shell\"\n}\n",
    );
    let out = h.run(&["apply", "--yes", "--json", "--wait-online", "1s"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    let all = lines(&out);
    assert!(
        all.iter()
            .any(|l| l["event"] == "waiting_online" && l["runners"] == 1),
        "{all:#?}"
    );
    let s = summary(&all);
    assert_eq!(s["ok"], false);
    assert_eq!(
        s["changed"], true,
        "the runner was registered before the wait"
    );
    assert_eq!(s["not_online"][0]["runner"], "inst");
    assert_eq!(s["problems"][0]["code"], "wait_online");
}
