//! `runnerform validate` on valid input: defaults, templates, replicas, includes, KDL v1,
//! secret references, exit codes and verbosity.

use runnerform::desired::{self, RefCheck, Value};

use crate::common::TestEnvironment;

const GITLAB: &str = "gitlab \"https://gitlab.example.com\" {\n    token env=\"GITLAB_TOKEN\"\n}\n";

fn env_with_token() -> TestEnvironment {
    let mut env = TestEnvironment::new();
    env.set_env("GITLAB_TOKEN", "test-value");
    env
}

#[test]
fn a_valid_file_exits_zero_and_names_its_runners() {
    let env = env_with_token();
    env.write(
        "runners.kdl",
        &format!(
            "{GITLAB}runner \"build\" count=3 {{\n    project \"acme/app\"\n    executor \"shell\"\n}}\n"
        ),
    );
    let out = env.run(&["validate", "-v"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    insta::assert_snapshot!(out.combined(), @r"
    runners.kdl is valid: 3 runners
      build-1  (shell, project acme/app)
      build-2  (shell, project acme/app)
      build-3  (shell, project acme/app)
    ");
}

#[test]
fn the_file_comes_from_the_environment_when_not_given() {
    let mut env = env_with_token();
    env.write(
        "fleet/host.kdl",
        &format!("{GITLAB}runner \"a\" {{\n    instance\n    executor \"shell\"\n}}\n"),
    );
    env.set_env("RUNNERFORM_FILE", "fleet/host.kdl");
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(out.stdout, "fleet/host.kdl is valid: 1 runner\n");
}

#[test]
fn a_missing_file_is_an_error_that_says_how_to_name_one() {
    let env = TestEnvironment::new();
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cannot read runners.kdl: no such file"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("-f FILE"), "{}", out.stderr);
}

#[test]
fn a_missing_env_var_is_only_a_warning_for_validate() {
    let env = TestEnvironment::new();
    env.write(
        "runners.kdl",
        &format!("{GITLAB}runner \"a\" {{\n    instance\n    executor \"shell\"\n}}\n"),
    );
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(
        out.stderr
            .contains("⚠ environment variable GITLAB_TOKEN is not set")
    );
    assert!(out.stdout.contains("1 warning"));
    let quiet = env.run(&["validate", "-q"]);
    assert_eq!(quiet.code, 0);
    assert_eq!(quiet.combined(), "", "quiet prints nothing when valid");
}

#[test]
fn missing_secrets_are_errors_when_a_command_needs_them() {
    let env = TestEnvironment::new();
    let path = env.write(
        "runners.kdl",
        &format!("{GITLAB}runner \"a\" {{\n    instance\n    executor \"shell\"\n}}\n"),
    );
    let loaded = desired::read(&path, RefCheck::Require);
    assert!(loaded.desired.is_none());
    assert!(loaded.problems.has_errors());
    assert!(loaded.problems.list[0].message.contains("GITLAB_TOKEN"));
}

#[test]
fn bad_flags_exit_one_not_two() {
    let env = TestEnvironment::new();
    let out = env.run(&["validate", "--frobnicate"]);
    assert_eq!(out.code, 1, "exit 2 is reserved for drift");
    assert!(out.stderr.contains("--frobnicate"));
    let out = env.run(&["launch"]);
    assert_eq!(out.code, 1);
    assert_eq!(env.run(&["--help"]).code, 0);
    assert_eq!(env.run(&["--version"]).code, 0);
}

#[test]
fn help_explains_the_command_and_exit_codes() {
    let env = TestEnvironment::new();
    let out = env.run(&["--help"]);
    assert!(
        out.stdout.contains("Exit codes: 0 success; 1 error"),
        "{}",
        out.stdout
    );
    let out = env.run(&["validate", "--help"]);
    assert!(
        out.stdout.contains("No network, no config.toml"),
        "{}",
        out.stdout
    );
}

#[test]
fn layers_merge_deeply_defaults_then_templates_then_runner() {
    let env = env_with_token();
    let path = env.write(
        "runners.kdl",
        &format!(
            r#"{GITLAB}
defaults {{
    project "acme/app"
    executor "docker"
    docker {{
        image "alpine:3"
        volumes "/cache"
        privileged #false
    }}
    feature_flags {{ FF_A #true }}
}}
template "base" {{
    tags "docker"
    docker {{ privileged #true }}
}}
template "rust" template="base" {{
    docker {{ image "rust:1.83" }}
    feature_flags {{ FF_B #true }}
}}
runner "build" template="rust" {{
    docker {{ memory "4g" }}
}}
runner "plain" {{}}
"#
        ),
    );
    let d = desired::read(&path, RefCheck::Warn).desired.expect("valid");
    let build = &d.runners[0].body;
    let s = &build.settings;
    let get = |p: &str| s.lookup(p).map(|e| e.value.clone());
    assert_eq!(get("docker.image"), Some(Value::String("rust:1.83".into())));
    assert_eq!(
        get("docker.volumes"),
        Some(Value::Array(vec![Value::String("/cache".into())]))
    );
    assert_eq!(get("docker.privileged"), Some(Value::Bool(true)));
    assert_eq!(get("docker.memory"), Some(Value::String("4g".into())));
    assert_eq!(get("feature_flags.FF_A"), Some(Value::Bool(true)));
    assert_eq!(get("feature_flags.FF_B"), Some(Value::Bool(true)));
    assert_eq!(
        build.tags.as_ref().unwrap().value,
        vec!["docker".to_string()]
    );
    let plain = &d.runners[1].body.settings;
    assert_eq!(
        plain.lookup("docker.image").map(|e| e.value.clone()),
        Some(Value::String("alpine:3".into()))
    );
    assert_eq!(
        plain.lookup("docker.privileged").unwrap().value,
        Value::Bool(false)
    );
}

#[test]
fn includes_are_relative_and_read_once() {
    let env = env_with_token();
    env.write(
        "shared/defaults.kdl",
        "defaults {\n    executor \"shell\"\n    instance\n}\n",
    );
    env.write(
        "shared/gitlab.kdl",
        &format!("include \"defaults.kdl\"\n{GITLAB}"),
    );
    env.write(
        "hosts/a.kdl",
        "include \"../shared/gitlab.kdl\"\ninclude \"../shared/defaults.kdl\"\nrunner \"a\" {}\n",
    );
    let out = env.run(&["validate", "-f", "hosts/a.kdl"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(out.stdout, "hosts/a.kdl is valid: 1 runner in 3 files\n");
}

#[test]
fn a_kdl_v1_document_is_read_too() {
    let env = env_with_token();
    env.write(
        "runners.kdl",
        "gitlab \"https://gitlab.example.com\" {\n    token env=\"GITLAB_TOKEN\"\n}\nrunner \"old\" {\n    instance\n    executor \"docker\"\n    run_untagged true\n    docker {\n        image \"alpine\"\n        privileged false\n    }\n}\n",
    );
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let d = desired::read(&env.path().join("runners.kdl"), RefCheck::Warn)
        .desired
        .unwrap();
    assert!(d.runners[0].body.run_untagged.as_ref().unwrap().value);
    assert_eq!(
        d.runners[0]
            .body
            .settings
            .lookup("docker.privileged")
            .unwrap()
            .value,
        Value::Bool(false)
    );
}

#[test]
fn every_error_in_a_file_is_reported_at_once() {
    let env = env_with_token();
    env.write(
        "runners.kdl",
        &format!(
            "{GITLAB}config {{\n    concurrent \"4\"\n    log_level \"loud\"\n}}\nrunner \"b\" {{\n    project \"acme/app\"\n    executor \"dokcer\"\n    limt 2\n    maximum_timeout 60\n}}\n"
        ),
    );
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr.matches("  × ").count(), 5, "{}", out.stderr);
    assert!(
        out.stderr
            .ends_with("runners.kdl: 5 errors found, 0 warnings\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn secrets_by_file_resolve_relative_to_the_kdl_file() {
    let env = TestEnvironment::new();
    env.write("secrets/gitlab", "test-value\n");
    env.write(
        "conf/runners.kdl",
        "gitlab \"https://gitlab.example.com\" {\n    token file=\"../secrets/gitlab\"\n}\n",
    );
    let out = env.run(&["validate", "-f", "conf/runners.kdl"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(!out.stderr.contains('⚠'), "{}", out.stderr);
}
