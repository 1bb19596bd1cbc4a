//! plan and apply against GitLab, through the real binary and the simulator over HTTP.

use runnerform::sim::{Fault, FaultKind, RunnerEdit, SimOptions, Simulator};

use crate::common::TestEnvironment;

pub(crate) struct Host {
    pub(crate) env: TestEnvironment,
    pub(crate) sim: Simulator,
}

pub(crate) const FLEET: &str = r#"config "config.toml" {
    concurrent 4
}
defaults {
    executor "docker"
    docker {
        image "alpine:3"
    }
}
runner "inst" {
    instance
    tags "a" "b"
}
runner "grp" count=2 {
    group "acme/platform"
}
runner "proj" {
    project "acme/app"
    run_untagged #false
    tags "x"
}
runner "proj2" {
    project 1001
    description "by id"
}
"#;

impl Host {
    pub(crate) fn new(body: &str) -> Host {
        Host::with(SimOptions::default(), body)
    }

    pub(crate) fn with(opts: SimOptions, body: &str) -> Host {
        // Without a config node runnerform uses gitlab-runner's default path: as root, /etc.
        assert!(
            body.contains("config \""),
            "a test must name its own config.toml"
        );
        let sim = Simulator::start(opts).unwrap();
        let env = TestEnvironment::new();
        env.write("gitlab-token", &sim.admin_token());
        let h = Host { env, sim };
        h.declare(body);
        h
    }

    pub(crate) fn declare(&self, body: &str) {
        self.env.write(
            "runners.kdl",
            &format!(
                "gitlab \"{}\" {{\n    token file=\"gitlab-token\"\n}}\n{body}",
                self.sim.url()
            ),
        );
    }

    pub(crate) fn run(&self, args: &[&str]) -> crate::common::Output {
        self.env.run(args)
    }

    pub(crate) fn config(&self) -> String {
        std::fs::read_to_string(self.env.path().join("config.toml")).unwrap_or_default()
    }

    /// GitLab's runner whose description is `name` (runnerform's default description).
    pub(crate) fn runner_named(&self, name: &str) -> runnerform::sim::RunnerSnapshot {
        self.sim
            .runners()
            .into_iter()
            .find(|r| r.description.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no runner {name} on GitLab"))
    }

    /// The token of the config.toml entry called `name`.
    pub(crate) fn token_of(&self, name: &str) -> String {
        let doc: toml_edit::DocumentMut = self.config().parse().unwrap();
        doc["runners"]
            .as_array_of_tables()
            .unwrap()
            .iter()
            .find(|t| t["name"].as_str() == Some(name))
            .map(|t| t["token"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no entry {name}"))
    }

    /// Calls GitLab as its administrator would, outside runnerform (the UI, another tool).
    pub(crate) fn as_admin<T>(&self, f: impl AsyncFnOnce(&runnerform::remote::Client) -> T) -> T {
        let client = runnerform::remote::Client::new(&runnerform::remote::ClientOptions {
            token: Some(self.sim.admin_token()),
            ..runnerform::remote::ClientOptions::new(&self.sim.url())
        })
        .unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f(&client))
    }

    pub(crate) fn writes(&self) -> usize {
        self.sim.requests().iter().filter(|r| r.write).count()
    }
}

#[test]
fn a_fresh_host_gets_every_runner_once_and_a_second_apply_sends_no_write() {
    let h = Host::new(FLEET);
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(h.sim.runners().len(), 5, "exactly five runners on GitLab");
    let cfg = h.config();
    assert_eq!(cfg.matches("[[runners]]").count(), 5, "{cfg}");
    let doc: toml_edit::DocumentMut = cfg.parse().unwrap();
    for t in doc["runners"].as_array_of_tables().unwrap() {
        let token = t["token"].as_str().unwrap();
        let id = t["id"].as_integer().unwrap() as u64;
        assert_eq!(
            h.sim.runner_for_token(token),
            Some(id),
            "each entry holds its runner's live token"
        );
    }
    let proj = h.runner_named("proj");
    assert_eq!(proj.runner_type, "project_type");
    assert!(!proj.run_untagged);
    assert_eq!(proj.tag_list, ["x"]);

    let plan = h.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    h.sim.clear_requests();
    let again = h.run(&["apply", "--yes"]);
    assert_eq!(again.code, 0, "{}", again.combined());
    assert_eq!(h.writes(), 0, "no write request: {:?}", h.sim.requests());
    assert_eq!(h.sim.runners().len(), 5);
}

#[test]
fn drift_made_in_the_ui_is_planned_and_repaired() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let inst = h.runner_named("inst");
    h.sim
        .edit_runner(
            inst.id,
            &RunnerEdit {
                tag_list: Some(vec!["zzz".into()]),
                ..RunnerEdit::default()
            },
        )
        .unwrap();
    let plan = h.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.combined());
    assert!(
        plan.stdout
            .contains(r#"~ tags: ["zzz"] -> ["a", "b"] (GitLab)"#),
        "{}",
        plan.stdout
    );
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let inst = h
        .sim
        .runners()
        .into_iter()
        .find(|r| r.id == inst.id)
        .unwrap();
    assert_eq!(inst.tag_list.len(), 2);
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn a_runner_deleted_in_the_ui_is_recreated_and_its_new_token_written() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let before = h.config();
    let proj = h.runner_named("proj");
    h.sim.delete_runner(proj.id).unwrap();
    let plan = h.run(&["plan"]);
    assert!(
        plan.stdout.contains("-/+ proj: recreate"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("404"), "{}", plan.stdout);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    assert_eq!(h.sim.runners().len(), 5);
    let after = h.config();
    assert_ne!(before, after);
    let doc: toml_edit::DocumentMut = after.parse().unwrap();
    let entry = doc["runners"]
        .as_array_of_tables()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str() == Some("proj"))
        .unwrap();
    let new_id = entry["id"].as_integer().unwrap() as u64;
    assert_ne!(new_id, proj.id);
    assert_eq!(
        h.sim.runner_for_token(entry["token"].as_str().unwrap()),
        Some(new_id)
    );
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn a_runner_removed_from_the_file_is_deleted_on_gitlab_and_in_config_toml() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    h.declare(&FLEET.replace(
        "runner \"proj2\" {\n    project 1001\n    description \"by id\"\n}\n",
        "",
    ));
    let plan = h.run(&["plan"]);
    assert!(plan.stdout.contains("- proj2: delete"), "{}", plan.stdout);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    assert_eq!(h.sim.runners().len(), 4);
    assert!(!h.config().contains("proj2"));
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn transient_failures_are_retried_and_never_delete_anything() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let before = h.config();
    // A few failures: retried, the plan succeeds.
    h.sim
        .inject(Fault::new("/api/v4/runners/*", FaultKind::Status { status: 500 }).times(2));
    h.sim.inject(Fault::new(
        "/api/v4/runners/*",
        FaultKind::RateLimited { retry_after: 1 },
    ));
    let out = h.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    // GitLab stays down: a clear error, nothing planned, nothing deleted, nothing written.
    h.sim
        .inject(Fault::new("/api/v4/runners/*", FaultKind::Status { status: 503 }).times(1000));
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("nothing was planned or changed"),
        "{}",
        out.stderr
    );
    assert_eq!(h.sim.runners().len(), 5);
    assert_eq!(h.config(), before);
}

#[test]
fn a_registration_whose_answer_is_lost_is_taken_over_not_repeated() {
    let h = Host::new(FLEET);
    // GitLab registers the third runner, then the answer is lost on the way back.
    h.sim.inject(
        Fault::new("/api/v4/user/runners", FaultKind::Drop)
            .method("POST")
            .after()
            .times(1),
    );
    let first = h.run(&["apply", "--yes"]);
    assert_eq!(first.code, 1, "{}", first.combined());
    assert!(
        first.stderr.contains("registering inst"),
        "{}",
        first.stderr
    );
    // GitLab did register it, and it was not retried (the others were registered beside it).
    assert_eq!(h.sim.runners().len(), 5);
    assert_eq!(h.config().matches("[[runners]]").count(), 4);
    let orphan = h.runner_named("inst").id;

    let plan = h.run(&["plan"]);
    assert!(
        plan.stdout
            .contains(&format!("registered it as runner {orphan}")),
        "{}",
        plan.stdout
    );
    let second = h.run(&["apply", "--yes"]);
    assert_eq!(second.code, 0, "{}", second.combined());
    assert_eq!(h.sim.runners().len(), 5, "no second registration for inst");
    let doc: toml_edit::DocumentMut = h.config().parse().unwrap();
    let inst = doc["runners"]
        .as_array_of_tables()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str() == Some("inst"))
        .unwrap();
    assert_eq!(inst["id"].as_integer(), Some(orphan as i64));
    assert_eq!(
        h.sim.runner_for_token(inst["token"].as_str().unwrap()),
        Some(orphan)
    );
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn an_access_token_without_the_needed_scopes_is_refused_before_anything_happens() {
    let h = Host::new(FLEET);
    let (_, token) = h.sim.user_with_token("reader", &["read_api"]).unwrap();
    h.env.write("gitlab-token", &token);
    let out = h.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("lacks the create_runner, manage_runner scopes"),
        "{}",
        out.stderr
    );
    assert_eq!(h.writes(), 0);
}

#[test]
fn an_unknown_project_is_a_clear_error() {
    let h = Host::new(
        "config \"config.toml\"\nrunner \"x\" {\n    project \"acme/nope\"\n    executor \"shell\"\n}\n",
    );
    let out = h.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("project acme/nope cannot be found"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_runner_with_an_existing_token_is_adopted_never_registered() {
    let h = Host::new(
        "config \"config.toml\"\nrunner \"legacy\" {\n    token env=\"LEGACY_TOKEN\"\n    executor \"shell\"\n    description \"made in the UI\"\n}\n",
    );
    let made = h
        .as_admin(async |c| {
            c.create_runner(&serde_json::json!({
                "runner_type": "instance_type",
                "description": "made in the UI"
            }))
            .await
        })
        .unwrap();
    let mut h = h;
    h.env.set_env("LEGACY_TOKEN", &made.token);
    h.sim.clear_requests();
    let plan = h.run(&["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    assert!(plan.stdout.contains("> legacy: adopt"), "{}", plan.stdout);
    // The default plan only reads: the token is verified when apply writes the entry.
    assert!(
        plan.stdout
            .contains("steps: POST /runners/verify, then write the entry"),
        "{}",
        plan.stdout
    );
    assert!(
        h.sim.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        h.sim.requests()
    );
    // With --verify-tokens the plan knows which runner the token belongs to.
    let verified = h.run(&["plan", "--verify-tokens"]);
    assert!(
        verified.stdout.contains(&format!("runner {}", made.id)),
        "{}",
        verified.stdout
    );
    h.sim.clear_requests();
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(
        out.stdout
            .contains(&format!("legacy: verify the token (GitLab id {})", made.id)),
        "{}",
        out.stdout
    );
    assert_eq!(h.sim.runners().len(), 1, "nothing registered");
    assert!(
        !h.sim
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/api/v4/user/runners")),
        "{:?}",
        h.sim.requests()
    );
    let doc: toml_edit::DocumentMut = h.config().parse().unwrap();
    assert_eq!(doc["runners"][0]["id"].as_integer(), Some(made.id));
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn a_rename_keeps_the_registration() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let before = h.sim.runners().len();
    h.declare(&FLEET.replace(
        "runner \"proj\" {\n",
        "runner \"project-runner\" {\n    renamed_from \"proj\"\n",
    ));
    let plan = h.run(&["plan"]);
    assert!(
        plan.stdout.contains("project-runner (was proj): update"),
        "{}",
        plan.stdout
    );
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    assert_eq!(h.sim.runners().len(), before, "no new registration");
    assert!(h.config().contains("name = \"project-runner\""));
    assert!(!h.config().contains("name = \"proj\""));
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn status_shows_what_gitlab_says_of_each_runner() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let inst = h.runner_named("inst");
    h.sim
        .contact_runner(inst.id, Some("s_host00000001"))
        .unwrap();
    h.sim.clear_requests();
    let out = h.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let by_name = |n: &str| rows.iter().find(|r| r["name"] == n).unwrap();
    assert_eq!(by_name("inst")["status"], "online");
    assert_eq!(by_name("inst")["managers"].as_array().unwrap().len(), 1);
    assert_eq!(by_name("proj")["status"], "never_contacted");
    assert_eq!(h.writes(), 0, "status changes nothing");
    let table = h.run(&["status"]);
    assert!(table.stdout.starts_with("NAME"), "{}", table.stdout);
    assert!(table.stdout.contains("online"), "{}", table.stdout);
}

#[test]
fn tokens_close_to_expiry_are_rotated_and_the_new_one_written() {
    let h = Host::new(FLEET);
    h.sim.configure(|s| s.project_token_expiration = Some(7200));
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let before = h.token_of("proj");
    // Two hours left: inside a three-hour window, outside a one-hour one.
    let quiet = h.run(&["plan", "--rotate-within", "3600", "--detailed-exitcode"]);
    assert_eq!(quiet.code, 0, "{}", quiet.combined());
    let plan = h.run(&["plan", "--rotate-within", "10800"]);
    assert!(plan.stdout.contains("~ proj: rotate"), "{}", plan.stdout);
    assert!(
        !plan.stdout.contains("inst: rotate"),
        "instance tokens do not expire here"
    );
    let out = h.run(&["apply", "--yes", "--rotate-within", "10800"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let after = h.token_of("proj");
    assert_ne!(before, after);
    assert_eq!(
        h.sim.runner_for_token(&before),
        None,
        "the old token is dead"
    );
    assert!(h.sim.runner_for_token(&after).is_some());
    assert_eq!(h.sim.runners().len(), 5, "rotation registers nothing");
    assert_eq!(
        h.run(&["plan", "--rotate-within", "3600", "--detailed-exitcode"])
            .code,
        0
    );
}

#[test]
fn moving_a_runner_to_another_owner_replaces_it() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let old = h.runner_named("proj");
    h.declare(&FLEET.replace("    project \"acme/app\"\n", "    project \"acme/web\"\n"));
    let plan = h.run(&["plan"]);
    assert!(plan.stdout.contains("-/+ proj: replace"), "{}", plan.stdout);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let runners = h.sim.runners();
    assert_eq!(
        runners.len(),
        5,
        "the old one is deleted once the new one is written"
    );
    assert!(runners.iter().all(|r| r.id != old.id));
    let new = runners
        .iter()
        .find(|r| r.description.as_deref() == Some("proj"))
        .unwrap();
    assert_ne!(new.project_ids, old.project_ids);
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

/// gitlab-runner rotates its own token and rewrites config.toml: the file's newer token wins
/// and runnerform has nothing to do.
#[test]
fn a_token_the_runner_rotated_itself_is_respected() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let proj = h.runner_named("proj");
    let token = h.sim.reset_runner_token(proj.id).unwrap();
    let cfg = h.config();
    let old = h.token_of("proj");
    let rotated = cfg.replace(&old, &token);
    std::fs::write(h.env.path().join("config.toml"), &rotated).unwrap();
    h.sim.clear_requests();
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);
    assert_eq!(h.writes(), 0);
    assert_eq!(h.config(), rotated, "the runner's own token is kept");
}

#[test]
fn a_token_reset_elsewhere_is_found_with_verify_tokens_and_replaced_for_the_same_runner() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let proj = h.runner_named("proj");
    let dead = h.token_of("proj");
    h.sim.reset_runner_token(proj.id).unwrap();
    let plain = h.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plain.code, 0,
        "without --verify-tokens only GET requests are sent"
    );
    let plan = h.run(&["plan", "--verify-tokens"]);
    assert!(plan.stdout.contains("~ proj: rotate"), "{}", plan.stdout);
    assert!(plan.stdout.contains("reset elsewhere"), "{}", plan.stdout);
    let out = h.run(&["apply", "--yes", "--verify-tokens"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let fresh = h.token_of("proj");
    assert_ne!(fresh, dead);
    assert_eq!(
        h.sim.runner_for_token(&fresh),
        Some(proj.id),
        "same runner, new token"
    );
    assert_eq!(h.sim.runners().len(), 5);
    assert_eq!(
        h.run(&["plan", "--verify-tokens", "--detailed-exitcode"])
            .code,
        0
    );
}

#[test]
fn a_saved_plan_is_refused_when_gitlab_changed_since() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let inst = h.runner_named("inst");
    h.declare(&FLEET.replace("tags \"a\" \"b\"", "tags \"a\" \"b\" \"c\""));
    assert_eq!(h.run(&["plan", "--out", "tags.plan"]).code, 0);
    h.sim
        .edit_runner(
            inst.id,
            &RunnerEdit {
                paused: Some(true),
                ..RunnerEdit::default()
            },
        )
        .unwrap();
    let out = h.run(&["apply", "tags.plan"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(
        out.stderr.contains("GitLab's runners changed"),
        "{}",
        out.stderr
    );
    assert_eq!(h.runner_named("inst").tag_list.len(), 2, "nothing applied");
}

const LEGACY: &str = "config \"config.toml\"\nrunner \"old-style\" {\n    registration_token env=\"REG_TOKEN\"\n    executor \"shell\"\n    tags \"legacy\"\n}\n";

#[test]
fn a_legacy_registration_token_registers_where_gitlab_still_allows_it() {
    let mut h = Host::with(
        SimOptions {
            legacy_registration: true,
            ..SimOptions::default()
        },
        LEGACY,
    );
    let reg = h
        .sim
        .registration_token(runnerform::sim::RegistrationScope::Project(1001))
        .unwrap();
    h.env.set_env("REG_TOKEN", &reg);
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let r = h.runner_named("old-style");
    assert_eq!(r.runner_type, "project_type");
    assert_eq!(r.tag_list, ["legacy"]);
    assert_eq!(h.sim.runner_for_token(&h.token_of("old-style")), Some(r.id));
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn a_gone_legacy_workflow_is_explained_and_nothing_is_written() {
    let mut h = Host::new(LEGACY);
    h.env.set_env("REG_TOKEN", "GR1348941notvalidanywhere");
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("410 Gone"), "{}", out.stderr);
    assert!(out.stderr.contains("create_runner"), "{}", out.stderr);
    assert!(!out.combined().contains("notvalidanywhere"));
    assert_eq!(h.sim.runners().len(), 0);
    assert!(!h.config().contains("[[runners]]"));
}

#[test]
fn unmanaged_runners_are_left_alone_unless_delete_unmanaged_is_given() {
    let h = Host::new(FLEET);
    let made = |d: &str| {
        h.as_admin(async |c| {
            c.create_runner(&serde_json::json!({
                "runner_type": "instance_type", "description": d
            }))
            .await
        })
        .unwrap()
    };
    let (a, b) = (made("by-hand-a"), made("by-hand-b"));
    h.env.write(
        "config.toml",
        &format!(
            "[[runners]]\n  name = \"by-hand-a\"\n  url = \"{url}\"\n  id = {}\n  token = \"{}\"\n  executor = \"shell\"\n\n[[runners]]\n  name = \"by-hand-b\"\n  url = \"{url}\"\n  token = \"{}\"\n  executor = \"shell\"\n",
            a.id,
            a.token,
            b.token,
            url = h.sim.url()
        ),
    );
    let plan = h.run(&["plan"]);
    assert!(
        plan.stdout.contains("? by-hand-a: unmanaged"),
        "{}",
        plan.stdout
    );
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    assert_eq!(h.sim.runners().len(), 7, "five created, two left alone");
    assert!(h.config().contains("by-hand-b"));

    let plan = h.run(&["plan", "--delete-unmanaged"]);
    assert!(
        plan.stdout.contains("- by-hand-a: delete"),
        "{}",
        plan.stdout
    );
    let out = h.run(&["apply", "--yes", "--delete-unmanaged"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(h.sim.runners().len(), 5, "both deleted, by id and by token");
    assert!(!h.config().contains("by-hand"));
}

#[test]
fn moving_to_another_gitlab_registers_anew_and_never_sends_the_old_id() {
    let h = Host::new(
        "config \"config.toml\"\nrunner \"inst\" {\n    instance\n    executor \"shell\"\n}\n",
    );
    h.env.write(
        "config.toml",
        "[[runners]]\n  name = \"inst\"\n  url = \"https://old-gitlab.example.com\"\n  id = 1\n  token = \"glrt-t1_OldGitLabOldGitLabOldGit\"\n  executor = \"shell\"\n",
    );
    h.sim.clear_requests();
    let plan = h.run(&["plan"]);
    assert!(plan.stdout.contains("-/+ inst: replace"), "{}", plan.stdout);
    // Runner 1 of the old GitLab means nothing (or someone else's runner) here.
    assert!(
        !h.sim
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/api/v4/runners/1")),
        "{:?}",
        h.sim.requests()
    );
    assert!(
        plan.stdout
            .contains("stays on https://old-gitlab.example.com"),
        "{}",
        plan.stdout
    );
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(
        !h.sim.requests().iter().any(|r| r.method == "DELETE"),
        "the old id is another GitLab's"
    );
    let cfg = h.config();
    assert!(cfg.contains(&format!("url = \"{}\"", h.sim.url())), "{cfg}");
    assert_eq!(
        h.sim.runner_for_token(&h.token_of("inst")),
        Some(h.runner_named("inst").id)
    );
    assert_eq!(h.run(&["plan", "--detailed-exitcode"]).code, 0);
}

/// Every endpoint runnerform calls, with every kind of transient failure: apply succeeds
/// after retries or stops with a clear error; it never deletes what it should not, never
/// registers twice, and the next apply converges.
#[test]
fn faults_on_every_endpoint_never_delete_or_duplicate_and_a_rerun_converges() {
    let endpoints: &[(&str, &str)] = &[
        ("GET", "/api/v4/personal_access_tokens/self"),
        ("GET", "/api/v4/groups/*"),
        ("GET", "/api/v4/projects/*"),
        ("GET", "/api/v4/runners/*"),
        ("POST", "/api/v4/user/runners"),
        ("PUT", "/api/v4/runners/*"),
        ("DELETE", "/api/v4/runners/*"),
    ];
    let faults = [
        FaultKind::Status { status: 500 },
        FaultKind::Status { status: 502 },
        FaultKind::RateLimited { retry_after: 1 },
        FaultKind::Drop,
    ];
    let changed = FLEET
        .replace("tags \"a\" \"b\"", "tags \"a\" \"c\"")
        .replace(
            "runner \"proj2\" {\n    project 1001\n    description \"by id\"\n}\n",
            "",
        )
        + "runner \"extra\" {\n    group \"acme\"\n}\n";
    for (method, path) in endpoints {
        for fault in &faults {
            let what = format!("{method} {path} {fault:?}");
            let h = Host::new(FLEET);
            assert_eq!(h.run(&["apply", "--yes"]).code, 0, "{what}: setup");
            h.declare(&changed);
            // Registering is never repeated after a 5xx (GitLab may have acted), so one
            // failure is all a POST sees.
            let times = if matches!(fault, FaultKind::Status { .. }) && *method != "POST" {
                2
            } else {
                1
            };
            h.sim
                .inject(Fault::new(path, fault.clone()).method(method).times(times));
            let out = h.run(&["apply", "--yes"]);
            assert!(h.sim.faults().is_empty(), "{what}: the fault was never hit");
            if out.code != 0 {
                assert_eq!(out.code, 1, "{what}: {}", out.combined());
                assert!(
                    out.stderr.contains("×"),
                    "{what}: unclear failure {}",
                    out.stderr
                );
            }
            let names: Vec<String> = h
                .sim
                .runners()
                .iter()
                .filter_map(|r| r.description.clone())
                .collect();
            for n in ["inst", "grp-1", "grp-2", "proj"] {
                assert_eq!(
                    names.iter().filter(|x| *x == n).count(),
                    1,
                    "{what}: {n} deleted or duplicated: {names:?}"
                );
            }
            assert!(
                names.iter().filter(|x| *x == "extra").count() <= 1,
                "{what}"
            );
            h.sim.clear_faults();
            let again = h.run(&["apply", "--yes"]);
            assert_eq!(again.code, 0, "{what}: rerun {}", again.combined());
            let plan = h.run(&["plan", "--detailed-exitcode"]);
            assert_eq!(plan.code, 0, "{what}: not converged {}", plan.combined());
            let names: Vec<String> = h
                .sim
                .runners()
                .iter()
                .filter_map(|r| r.description.clone())
                .collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                ["extra", "grp-1", "grp-2", "inst", "proj"],
                "{what}: {names:?}"
            );
        }
    }
}

/// HTTP_PROXY is honoured: GitLab's name does not even resolve here, only the proxy (the
/// simulator itself, answering absolute-form requests) is reachable.
#[test]
fn the_proxy_from_the_environment_is_used() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let mut env = TestEnvironment::new();
    env.write("gitlab-token", &sim.admin_token());
    env.write(
        "runners.kdl",
        "gitlab \"http://gitlab.invalid\" {\n    token file=\"gitlab-token\"\n}\nconfig \"config.toml\"\nrunner \"via-proxy\" {\n    instance\n    executor \"shell\"\n}\n",
    );
    env.set_env("HTTP_PROXY", &sim.url());
    let out = env.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(sim.runners().len(), 1);
}

/// GitLab behind TLS signed by a private CA: trusted with `ca_file`, refused without it.
#[test]
fn a_private_ca_is_trusted_only_through_ca_file() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio_rustls::rustls;

    let sim = Simulator::start(SimOptions::default()).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let srv_key = KeyPair::generate().unwrap();
    let srv_cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&srv_key, &issuer)
        .unwrap();

    // A TLS front for the simulator, on its own runtime and port.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![srv_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(srv_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let backend = sim.url().trim_start_matches("http://").to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, backend) = (acceptor.clone(), backend.clone());
                tokio::spawn(async move {
                    let Ok(mut front) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut back) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut front, &mut back).await;
                });
            }
        });
    });
    let port = rx.recv().unwrap();

    let env = TestEnvironment::new();
    env.write("gitlab-token", &sim.admin_token());
    env.write("ca.pem", &ca_cert.pem());
    let kdl = |ca: &str| {
        format!(
            "gitlab \"https://localhost:{port}\" {{\n    token file=\"gitlab-token\"\n{ca}}}\nconfig \"config.toml\"\nrunner \"tls\" {{\n    instance\n    executor \"shell\"\n}}\n"
        )
    };
    env.write("runners.kdl", &kdl(""));
    let refused = env.run(&["plan"]);
    assert_eq!(refused.code, 1, "{}", refused.combined());
    assert!(
        refused.stderr.contains("cannot use the access token"),
        "{}",
        refused.stderr
    );
    env.write("runners.kdl", &kdl("    ca_file \"ca.pem\"\n"));
    let out = env.run(&["apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(sim.runners().len(), 1);
}

#[test]
fn a_token_without_the_role_gets_a_diagnostic_naming_the_role() {
    let h = Host::new(
        "config \"config.toml\"\nrunner \"g\" {\n    group \"acme\"\n    executor \"shell\"\n}\n",
    );
    let (_, narrow) = h
        .sim
        .user_with_token("ci", &["create_runner", "manage_runner"])
        .unwrap();
    h.env.write("gitlab-token", &narrow);
    let out = h.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("lacks the read_api scope"),
        "{}",
        out.stderr
    );

    let (user, token) = h
        .sim
        .user_with_token("dev", &["create_runner", "manage_runner", "read_api"])
        .unwrap();
    let acme = h
        .as_admin(async |c| c.namespace_id("groups", "acme").await)
        .unwrap() as u64;
    h.sim
        .add_member(
            user,
            runnerform::sim::MemberOf::Group(acme),
            runnerform::sim::Role::Developer,
        )
        .unwrap();
    h.env.write("gitlab-token", &token);
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("Owner role"), "{}", out.stderr);
    assert_eq!(h.sim.runners().len(), 0);
}

#[test]
fn an_entry_edited_by_hand_is_put_back() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let edited = h
        .config()
        .replacen("image = \"alpine:3\"", "image = \"ubuntu:22.04\"", 1);
    std::fs::write(h.env.path().join("config.toml"), &edited).unwrap();
    let plan = h.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout
            .contains(r#"~ docker.image: "ubuntu:22.04" -> "alpine:3""#),
        "{}",
        plan.stdout
    );
    h.sim.clear_requests();
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    assert_eq!(h.writes(), 0, "a local fix sends nothing to GitLab");
    assert!(!h.config().contains("ubuntu"));
}

#[test]
fn timeouts_are_retried_then_reported_and_nothing_changes() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes"]).code, 0);
    let before = h.config();
    // A one-second request timeout against a GitLab that takes two.
    h.env.write(
        "runners.kdl",
        &std::fs::read_to_string(h.env.path().join("runners.kdl"))
            .unwrap()
            .replace(
                "    token file=\"gitlab-token\"\n",
                "    token file=\"gitlab-token\"\n    timeout 1\n",
            ),
    );
    h.sim
        .set_latency("/api/v4/runners/*", std::time::Duration::from_millis(2000));
    let out = h.run(&["apply", "--yes"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    assert_eq!(h.sim.runners().len(), 5);
    assert_eq!(h.config(), before);
}
