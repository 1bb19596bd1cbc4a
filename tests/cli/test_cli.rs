//! The command line people already know: completions, the man page, `--version`, help with
//! examples, Terraform's single-dash flags, gitlab-runner's `-c`/`CONFIG_FILE`, `-f -`, one
//! duration grammar, `validate --json` and `status --json` against their schemas, and network
//! failures that say what to do.

use crate::common::{Output, TestEnvironment, root};

/// A diagnostic as one line: miette wraps long messages and draws a gutter.
fn flat(text: &str) -> String {
    text.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

const OFFLINE: &str = "gitlab \"https://gitlab.example.com\" {\n    token env=\"GITLAB_TOKEN\"\n}\n\
                       config \"config.toml\" {\n    concurrent 4\n}\nrunner \"build\" {\n    \
                       instance\n    executor \"shell\"\n}\n";

fn offline_env() -> TestEnvironment {
    let mut env = TestEnvironment::new();
    env.set_env("GITLAB_TOKEN", "unused-offline");
    env.write("runners.kdl", OFFLINE);
    env
}

fn subcommands() -> Vec<String> {
    runnerform::cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

#[test]
fn completions_name_every_subcommand_in_every_shell() {
    let env = TestEnvironment::new();
    let names = subcommands();
    assert!(names.len() >= 8, "{names:?}");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = env.run(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.len() > 1000, "{shell}: {}", out.stdout);
        for name in &names {
            assert!(
                out.stdout.contains(name.as_str()),
                "{shell} completion misses `{name}`"
            );
        }
        assert!(out.stdout.contains("detailed-exitcode"), "{shell}");
    }
    let bad = env.run(&["completions", "tcsh"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("possible values"), "{}", bad.stderr);
}

#[test]
fn the_man_page_is_roff_with_a_header_and_every_subcommand() {
    let out = TestEnvironment::new().run(&["man"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let header = out
        .stdout
        .lines()
        .find(|l| l.starts_with(".TH"))
        .expect("a .TH line");
    let header = header.replace(env!("CARGO_PKG_VERSION"), "VERSION");
    let header = header
        .split("(commit ")
        .next()
        .map(|h| format!("{h}(commit …"))
        .unwrap();
    insta::assert_snapshot!(header, @".TH runnerform 1  \"runnerform VERSION (commit …");
    assert!(
        out.stdout
            .contains(".SH NAME\nrunnerform \\- Config\\-as\\-code")
    );
    assert!(out.stdout.contains(".SH SUBCOMMANDS"), "{}", out.stdout);
    for name in subcommands() {
        assert!(
            out.stdout.contains(&format!("runnerform\\-{name}")),
            "man page misses {name}"
        );
    }
}

#[test]
fn version_names_the_commit_and_the_key_inventory() {
    let env = TestEnvironment::new();
    let long = env.run(&["--version"]);
    assert_eq!(long.code, 0);
    let lines: Vec<&str> = long.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("runnerform {}", env!("CARGO_PKG_VERSION"))
    );
    let commit = lines[1].strip_prefix("commit: ").expect("a commit line");
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    assert_eq!(
        lines[2],
        "config.toml keys: gitlab-runner 19.4.0 dev, commit d79f3e7b89ab"
    );
    let short = env.run(&["-V"]);
    assert!(
        short.stdout.contains(&format!("(commit {commit})")),
        "{}",
        short.stdout
    );
}

#[test]
fn every_command_has_an_example_and_global_options_have_their_own_heading() {
    let env = TestEnvironment::new();
    for name in subcommands() {
        let out = env.run(&[name.as_str(), "--help"]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let text = &out.stdout;
        let examples = text
            .find("\nExamples:\n")
            .unwrap_or_else(|| panic!("{name}: {text}"));
        assert!(
            text[examples..].contains("runnerform "),
            "{name}: an example runs runnerform"
        );
        let global = text
            .find("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{name}: {text}"));
        assert!(text[global..].contains("--config-toml"), "{name}");
        // The command's own options come first, apart from the global ones.
        if let Some(own) = text.find("\nOptions:\n") {
            assert!(own < global, "{name}");
            assert!(!text[own..global].contains("--config-toml"), "{name}");
        }
    }
    let top = env.run(&["--help"]).stdout;
    assert!(
        top.contains("\nExamples:\n  runnerform validate\n"),
        "{top}"
    );
    let plan = env.run(&["plan", "--help"]).stdout;
    let own = &plan[plan.find("\nOptions:\n").unwrap()..plan.find("\nGlobal options:\n").unwrap()];
    assert!(
        own.contains("--detailed-exitcode") && own.contains("--offline"),
        "{own}"
    );
}

#[test]
fn terraform_flags_with_an_equivalent_are_accepted() {
    let env = offline_env();
    let out = env.run(&[
        "plan",
        "--offline",
        "-out",
        "saved.json",
        "-detailed-exitcode",
    ]);
    assert_eq!(out.code, 2, "{}", out.combined());
    assert!(env.path().join("saved.json").is_file());
    let out = env.run(&["plan", "--offline", "-json", "-target=build"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["targets"][0], "build");
    let out = env.run(&["apply", "--offline", "-auto-approve", "-lock-timeout=5m"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let config = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
    assert!(config.contains("concurrent = 4"), "{config}");
}

#[test]
fn terraform_flags_without_an_equivalent_get_a_precise_hint() {
    let env = offline_env();
    let var = env.run(&["plan", "-var", "region=eu"]);
    assert_eq!(var.code, 1);
    insta::assert_snapshot!(var.stderr, @r#"
    runnerform::terraform_flag

      × `-var` is a Terraform flag that runnerform does not have
      help: runnerform has no input variables: values are written in the KDL file, secrets are read by
            reference (token env="GITLAB_TOKEN" or file="..."), and a fleet file picks its host with
            --host NAME
    "#);
    let refresh = env.run(&["plan", "-refresh=false"]);
    assert_eq!(refresh.code, 1);
    assert!(
        refresh.stderr.contains("use --offline"),
        "{}",
        refresh.stderr
    );
    let input = env.run(&["apply", "-input=false"]);
    assert!(input.stderr.contains("--yes"), "{}", input.stderr);
    assert!(!env.path().join("config.toml").exists(), "nothing changed");
}

#[test]
fn every_duration_flag_takes_go_durations_and_seconds() {
    let env = offline_env();
    for args in [
        ["--lock-timeout", "5m"],
        ["--lock-timeout", "90"],
        ["--rotate-within", "12h"],
        ["--rotate-within", "3600"],
    ] {
        let out = env.run(&["apply", "--offline", "--yes", args[0], args[1]]);
        assert_eq!(out.code, 0, "{args:?}: {}", out.combined());
    }
    let plan = env.run(&["plan", "--offline", "--json", "--rotate-within", "1h30m"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    for (flag, value, says) in [
        ("--lock-timeout", "soon", "is not a duration"),
        ("--rotate-within", "5124095576030432h", "is too long"),
        ("--wait-online", "-5m", "is negative"),
        ("--lock-timeout", "99999999999999999999", "is too long"),
    ] {
        let out = env.run(&["apply", "--yes", &format!("{flag}={value}")]);
        assert_eq!(out.code, 1, "{flag} {value}");
        assert!(out.stderr.contains(says), "{flag} {value}: {}", out.stderr);
    }
}

#[test]
fn a_gitlab_timeout_too_long_to_represent_is_a_diagnostic_not_a_panic() {
    let env = TestEnvironment::new();
    env.write(
        "runners.kdl",
        "gitlab \"http://127.0.0.1:9\" {\n    token env=\"GITLAB_TOKEN\"\n    timeout \"5124095576030432h\"\n}\n",
    );
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("is too long"), "{}", out.stderr);
    assert!(out.stderr.contains("runners.kdl:3:13"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"));
    env.write(
        "runners.kdl",
        "gitlab \"http://127.0.0.1:9\" {\n    token env=\"GITLAB_TOKEN\"\n    timeout \"1m30s\"\n}\n",
    );
    assert_eq!(env.run(&["validate"]).code, 0);
}

#[test]
fn config_toml_is_found_as_gitlab_runner_spells_it() {
    let mut env = offline_env();
    env.write(
        "runners.kdl",
        &OFFLINE.replace("config \"config.toml\" {", "config {"),
    );
    for args in [
        vec!["-c", "short.toml", "apply", "--offline", "--yes"],
        vec!["apply", "--config", "long.toml", "--offline", "--yes"],
    ] {
        let out = env.run(&args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.combined());
    }
    assert!(env.path().join("short.toml").is_file());
    assert!(env.path().join("long.toml").is_file());
    env.set_env("CONFIG_FILE", "from-env.toml");
    let out = env.run(&["plan", "--offline"]);
    assert!(out.stdout.contains("from-env.toml"), "{}", out.stdout);
}

#[test]
fn the_kdl_file_can_come_from_stdin() {
    let env = offline_env();
    let out = env.run_stdin(&["-f", "-", "validate"], OFFLINE);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(
        out.stdout.starts_with("- is valid: 1 runner"),
        "{}",
        out.stdout
    );
    let out = env.run_stdin(&["-f", "-", "apply", "--offline", "--yes"], OFFLINE);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(
        env.path().join("config.toml").is_file(),
        "relative to the current directory"
    );
    let bad = env.run_stdin(
        &["-f", "-", "validate"],
        "runner \"x\" {\n    exector \"shell\"\n}\n",
    );
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("<stdin>:2:5"), "{}", bad.stderr);
    let empty = env.run_stdin(&["-f", "-", "validate"], "");
    assert_eq!(empty.code, 1);
    assert!(
        empty.stderr.contains("cannot read stdin: stdin is empty"),
        "{}",
        empty.stderr
    );
}

pub(crate) fn validator(name: &str, fresh: &str) -> jsonschema::Validator {
    let path = root().join("schemas").join(name);
    if std::env::var_os("RUNNERFORM_BLESS").is_some() {
        std::fs::write(&path, fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "schemas/{name} is stale: RUNNERFORM_BLESS=1 cargo test --test cli schema"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn check(v: &jsonschema::Validator, out: &Output) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.combined()));
    let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc:#}");
    doc
}

#[test]
fn validate_json_matches_its_schema_with_file_line_column_and_hint() {
    let v = validator(
        "validate.schema.json",
        &runnerform::output::validate_schema(),
    );
    let env = TestEnvironment::new();
    env.write("shared.kdl", "defaults {\n    exector \"docker\"\n}\n");
    env.write(
        "runners.kdl",
        "include \"shared.kdl\"\ngitlab \"https://gitlab.example.com/api/v4\" {\n    token env=\"GITLAB_TOKEN\"\n}\nrunner \"a\" {\n    instance\n    executor \"shell\"\n}\n",
    );
    let out = env.run(&["validate", "--json"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert_eq!(out.stderr, "", "--json prints nothing else");
    let doc = check(&v, &out);
    assert_eq!(doc["valid"], false);
    let problems = doc["problems"].as_array().unwrap();
    let typo = problems
        .iter()
        .find(|p| p["code"] == "unknown_key")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(typo["severity"], "error");
    assert_eq!(typo["file"], "shared.kdl");
    assert_eq!(
        (typo["line"].as_u64(), typo["column"].as_u64()),
        (Some(2), Some(5))
    );
    assert!(
        typo["hint"].as_str().unwrap().contains("executor"),
        "{typo}"
    );
    let suffix = problems
        .iter()
        .find(|p| p["code"] == "gitlab_url_api_suffix")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(suffix["severity"], "warning");
    assert_eq!(
        suffix["hint"],
        "drop the suffix: gitlab \"https://gitlab.example.com\""
    );

    env.write("shared.kdl", "defaults {\n    executor \"docker\"\n}\n");
    let ok = env.run(&["validate", "--json"]);
    assert_eq!(ok.code, 0, "{}", ok.combined());
    let doc = check(&v, &ok);
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["runners"], serde_json::json!(["a"]));
    assert_eq!(
        doc["warnings"], 2,
        "the URL suffix and the unset GITLAB_TOKEN: {doc:#}"
    );

    let missing = TestEnvironment::new().run(&["validate", "--json"]);
    assert_eq!(missing.code, 1);
    let doc = check(&v, &missing);
    assert_eq!(doc["problems"][0]["code"], "io");
    assert!(doc["problems"][0]["file"].is_null());
    let mut broken = doc.clone();
    broken["problems"][0]["severity"] = "fatal".into();
    assert!(!v.is_valid(&broken), "the schema constrains severities");
}

/// A host whose KDL file points at a `runnerform sim` process.
fn sim_host(env: &TestEnvironment, url: &str, token: &str, body: &str) {
    env.write("gitlab-token", token);
    env.write(
        "runners.kdl",
        &format!("gitlab \"{url}\" {{\n    token file=\"gitlab-token\"\n}}\nconfig \"config.toml\"\n{body}"),
    );
}

const INSTANCE_RUNNER: &str = "runner \"inst\" {\n    instance\n    executor \"shell\"\n}\n";

#[test]
fn status_json_matches_its_schema() {
    let v = validator("status.schema.json", &runnerform::output::status_schema());
    let env = TestEnvironment::new();
    let sim = env.spawn_sim(&[]);
    sim_host(
        &env,
        &sim.url,
        &sim.admin_token,
        &format!(
            "{INSTANCE_RUNNER}runner \"later\" {{\n    instance\n    executor \"shell\"\n}}\n"
        ),
    );
    let apply = env.run(&["apply", "--yes", "--target", "inst"]);
    assert_eq!(apply.code, 0, "{}", apply.combined());
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let doc = check(&v, &out);
    assert_eq!(doc[0]["name"], "inst");
    assert_eq!(doc[0]["status"], "never_contacted");
    assert!(doc[0]["id"].as_i64().unwrap() > 0);
    assert_eq!(doc[1]["status"], "not_registered");
    let mut broken = doc.clone();
    broken[0]["id"] = "seven".into();
    assert!(!v.is_valid(&broken));
}

fn plan_against(url: &str, token: &str) -> Output {
    let env = TestEnvironment::new();
    sim_host(&env, url, token, INSTANCE_RUNNER);
    let out = env.run(&["plan"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(!env.path().join("config.toml").exists(), "nothing changed");
    out
}

#[test]
fn a_refused_connection_and_a_dns_failure_read_differently() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = plan_against(&format!("http://127.0.0.1:{port}"), "glpat-unused");
    let said = flat(&refused.stderr);
    assert!(
        said.contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{said}"
    );
    assert!(said.contains("nothing listens on that port"), "{said}");
    assert!(!refused.stderr.contains("resolve"), "{}", refused.stderr);

    let dns = plan_against("http://gitlab.invalid", "glpat-unused");
    assert!(
        flat(&dns.stderr)
            .contains("the host name gitlab.invalid does not resolve (DNS lookup failed)"),
        "{}",
        dns.stderr
    );
    assert!(dns.stderr.contains("typo"), "{}", dns.stderr);
    assert!(!dns.stderr.contains("refused"), "{}", dns.stderr);
}

#[test]
fn an_https_url_for_a_plain_http_server_is_called_a_tls_failure() {
    let env = TestEnvironment::new();
    let sim = env.spawn_sim(&[]);
    let https = sim.url.replacen("http://", "https://", 1);
    let out = plan_against(&https, &sim.admin_token);
    let said = flat(&out.stderr);
    assert!(said.contains("TLS failure with 127.0.0.1:"), "{said}");
    assert!(
        said.contains(&format!("write the URL as {}", sim.url)),
        "{said}"
    );
    assert!(!out.stderr.contains("could not connect"), "{}", out.stderr);
}

#[test]
fn a_url_ending_in_api_v4_is_told_to_drop_the_suffix() {
    let env = TestEnvironment::new();
    let sim = env.spawn_sim(&[]);
    let out = plan_against(&format!("{}/api/v4", sim.url), &sim.admin_token);
    let hint = format!("drop the suffix: gitlab \"{}\"", sim.url);
    let said = flat(&out.stderr);
    // Warned when the file is read, then the failure itself leads with it.
    assert_eq!(said.matches(&hint).count(), 2, "{said}");
    assert!(
        said.contains("ends in /api/v4, which runnerform adds itself"),
        "{said}"
    );
}

#[test]
fn a_project_the_tokens_user_cannot_see_asks_for_membership_not_a_retry() {
    use runnerform::sim::{SimOptions, Simulator};
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let (_, token) = sim.user_with_token("outsider", &["api"]).unwrap();
    let env = TestEnvironment::new();
    sim_host(
        &env,
        &sim.url(),
        &token,
        "runner \"app\" {\n    project \"acme/app\"\n    executor \"shell\"\n}\n",
    );
    let out = env.run(&["plan"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    let said = flat(&out.stderr);
    assert!(
        said.contains("project acme/app cannot be found with this access token"),
        "{said}"
    );
    assert!(said.contains("not a member"), "{said}");
    assert!(said.contains("with the Maintainer role"), "{said}");
    assert!(!said.contains("try again"), "{said}");
    assert_eq!(sim.runners().len(), 0);
}
