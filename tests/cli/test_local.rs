//! The local half of plan/apply, through the real binary: lossless edits of real config.toml
//! files, idempotence down to the mtime, the lock, stale plans, confirmation, and the plan as
//! a reviewer reads it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

use runnerform::desired::render::{RUNNER_IDENTITY_KEYS, table_body};
use runnerform::keys::inventory;
use toml_edit::{DocumentMut, Item};

use crate::common::{BIN, TestEnvironment};
use crate::test_fixtures::fixtures;

const GITLAB: &str = "gitlab \"https://gitlab.example.com\" {\n    token env=\"GITLAB_TOKEN\"\n}\n";

const CONFIG: &str = r#"# managed by hand until now
concurrent = 4
check_interval = 3  # seconds

[session_server]
  session_timeout = 1800

[[runners]]
  name = "build"
  url = "https://gitlab.example.com/"
  id = 11
  token = "glrt-t1_BuildTokenBuildToken00"
  token_obtained_at = 2026-01-01T00:00:00Z
  token_expires_at = 0001-01-01T00:00:00Z
  executor = "docker"
  limit = 2 # two at a time
  [runners.docker]
    image = "alpine:3.19"
    privileged = false
    volumes = ["/cache"]

[[runners]]
  name = "legacy"
  url = "https://gitlab.example.com/"
  id = 12
  token = "glrt-t1_LegacyTokenLegacyTok0"
  executor = "shell"
"#;

fn env() -> TestEnvironment {
    let mut env = TestEnvironment::new();
    env.set_env("GITLAB_TOKEN", "test-value");
    env
}

fn kdl(body: &str) -> String {
    format!("{GITLAB}config \"config.toml\" {{\n    concurrent 4\n}}\n{body}")
}

fn build_runner(image: &str) -> String {
    format!(
        "runner \"build\" {{\n    project \"acme/app\"\n    executor \"docker\"\n    docker {{\n        image \"{image}\"\n    }}\n}}\n"
    )
}

#[test]
fn every_fixture_round_trips_byte_for_byte() {
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: DocumentMut = text.parse().unwrap();
        assert_eq!(doc.to_string(), text, "{}", path.display());
    }
}

/// Declares the first runner of each fixture with every key it has, then changes one of them:
/// adopting changes nothing, and the one change touches exactly one line.
#[test]
fn every_fixture_survives_a_one_key_change_with_a_one_line_diff() {
    let mut env = env();
    env.set_env("GITLAB_URL", "https://gitlab.example.com");
    let inv = inventory();
    let mut checked = 0;
    for path in fixtures() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: DocumentMut = text.parse().unwrap();
        let Some(first) = doc
            .get("runners")
            .and_then(Item::as_array_of_tables)
            .and_then(|a| a.get(0))
        else {
            continue;
        };
        let Some(runner_name) = first.get("name").and_then(Item::as_str) else {
            continue;
        };
        let url = match first.get("url").and_then(Item::as_str) {
            Some("$GITLAB_URL") | None => "https://gitlab.example.com".to_string(),
            Some(u) => u.trim_end_matches('/').to_string(),
        };
        let mut body = String::new();
        table_body(first, inv.runner(), 1, RUNNER_IDENTITY_KEYS, &mut body);
        // Each fixture in its own directory: each has its own ownership record.
        let kdl_text = format!(
            "gitlab \"{url}\"\nconfig \"config.toml\"\nrunner \"{runner_name}\" {{\n    instance\n{body}}}\n"
        );
        env.write(&format!("{name}/config.toml"), &text);
        env.write(&format!("{name}/runners.kdl"), &kdl_text);

        let out = env.run(&[
            "plan",
            "--offline",
            "--json",
            "-f",
            &format!("{name}/runners.kdl"),
        ]);
        assert_eq!(out.code, 0, "{name}: {}", out.combined());
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let mine = &plan["runners"][0];
        assert_eq!(mine["action"], "adopt", "{name}: {mine}");
        let paths: Vec<&str> = mine["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["path"].as_str().unwrap())
            .collect();
        let expected: &[&str] = if first.get("url").is_some() {
            &[]
        } else {
            &["url"]
        };
        assert_eq!(
            paths, expected,
            "{name}: adopting an entry declared as it is changes nothing but a missing url"
        );
        let out = env.run(&[
            "apply",
            "--offline",
            "--yes",
            "-f",
            &format!("{name}/runners.kdl"),
        ]);
        assert_eq!(out.code, 0, "{name}: {}", out.combined());
        let text = std::fs::read_to_string(env.path().join(format!("{name}/config.toml"))).unwrap();

        // Change the first integer or string value at any depth whose key is not an enum.
        let enum_leaves: Vec<&str> = runnerform::keys::ENUMS
            .iter()
            .map(|(p, _)| p.rsplit('.').next().unwrap())
            .collect();
        let Some((line, key, new_line)) = body.lines().find_map(|l| {
            let trimmed = l.trim_start();
            let (key, value) = trimmed.split_once(' ')?;
            if enum_leaves.contains(&key) || value.contains("\" \"") {
                return None;
            }
            let indent = &l[..l.len() - trimmed.len()];
            let new_value = if let Ok(i) = value.parse::<i64>() {
                (i + 7).to_string()
            } else if value.starts_with('"') && value.ends_with('"') && value.len() > 1 {
                "\"changed-by-test\"".to_string()
            } else {
                return None;
            };
            Some((
                l.to_string(),
                key.to_string(),
                format!("{indent}{key} {new_value}"),
            ))
        }) else {
            continue;
        };
        let changed = kdl_text.replacen(&format!("\n{line}\n"), &format!("\n{new_line}\n"), 1);
        assert_ne!(changed, kdl_text, "{name}: could not change {key}");
        let key = key.trim_matches('"');
        env.write(&format!("{name}/runners.kdl"), &changed);
        let out = env.run(&[
            "apply",
            "--offline",
            "--yes",
            "-f",
            &format!("{name}/runners.kdl"),
        ]);
        assert_eq!(out.code, 0, "{name}: {}", out.combined());
        let after =
            std::fs::read_to_string(env.path().join(format!("{name}/config.toml"))).unwrap();
        let removed: Vec<&str> = text
            .lines()
            .filter(|l| !after.lines().any(|a| a == *l))
            .collect();
        let added: Vec<&str> = after
            .lines()
            .filter(|l| !text.lines().any(|a| a == *l))
            .collect();
        assert_eq!(removed.len(), 1, "{name}: removed {removed:?}");
        assert_eq!(added.len(), 1, "{name}: added {added:?}");
        assert!(added[0].contains(key), "{name}: {added:?}");
        assert_eq!(text.lines().count(), after.lines().count(), "{name}");
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} fixtures had a changeable runner"
    );
}

#[test]
fn a_second_apply_writes_nothing_not_even_the_mtime() {
    let env = env();
    env.write("config.toml", CONFIG);
    env.write("runners.kdl", &kdl(&build_runner("rust:1.83")));
    let first = env.run(&["apply", "--offline", "--yes"]);
    assert_eq!(first.code, 0, "{}", first.combined());
    assert!(first.stdout.contains("Apply complete"), "{}", first.stdout);
    let cfg = env.path().join("config.toml");
    let state = env.path().join("runnerform-state.json");
    let before = (
        std::fs::read(&cfg).unwrap(),
        std::fs::metadata(&cfg).unwrap().mtime_nsec(),
    );
    let state_before = std::fs::metadata(&state).unwrap().mtime_nsec();
    std::thread::sleep(std::time::Duration::from_millis(20));

    let plan = env.run(&["plan", "--offline", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    assert!(plan.stdout.starts_with("No changes"), "{}", plan.stdout);
    let second = env.run(&["apply", "--offline", "--yes"]);
    assert_eq!(second.code, 0);
    assert!(
        second.stdout.contains("No changes. Nothing was written."),
        "{}",
        second.stdout
    );
    let after = (
        std::fs::read(&cfg).unwrap(),
        std::fs::metadata(&cfg).unwrap().mtime_nsec(),
    );
    assert_eq!(before, after, "config.toml bytes and mtime unchanged");
    assert_eq!(
        state_before,
        std::fs::metadata(&state).unwrap().mtime_nsec()
    );
}

#[test]
fn drift_is_exit_code_two_only_with_detailed_exitcode() {
    let env = env();
    env.write("config.toml", CONFIG);
    env.write("runners.kdl", &kdl(&build_runner("rust:1.83")));
    assert_eq!(
        env.run(&["plan", "--offline", "--detailed-exitcode"]).code,
        2
    );
    assert_eq!(env.run(&["plan", "--offline"]).code, 0);
}

#[test]
fn apply_keeps_mode_and_owner_and_creates_missing_files_private() {
    let env = env();
    let cfg = env.write("config.toml", CONFIG);
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
    // As root the test can hand the file to another owner and check it is kept.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&cfg, Some(65534), Some(65534)).unwrap();
    }
    env.write("runners.kdl", &kdl(&build_runner("rust:1.83")));
    assert_eq!(env.run(&["apply", "--offline", "--yes"]).code, 0);
    let m = std::fs::metadata(&cfg).unwrap();
    // The file holds runner tokens: the group loses read access (gitlab-runner writes 0600).
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    if root {
        assert_eq!((m.uid(), m.gid()), (65534, 65534));
    }

    env.write(
        "fresh.kdl",
        &format!("{GITLAB}config \"etc/gitlab-runner/config.toml\" {{\n    concurrent 2\n}}\n"),
    );
    let out = env.run(&["apply", "--offline", "--yes", "-f", "fresh.kdl"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let fresh = env.path().join("etc/gitlab-runner/config.toml");
    assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "concurrent = 2\n");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&fresh), 0o600);
    assert_eq!(mode(fresh.parent().unwrap()), 0o700);
}

#[test]
fn apply_refuses_without_yes_when_stdin_is_not_a_terminal() {
    let env = env();
    env.write("config.toml", CONFIG);
    env.write("runners.kdl", &kdl(&build_runner("rust:1.83")));
    let out = env.run(&["apply", "--offline"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(env.path().join("config.toml")).unwrap(),
        CONFIG
    );
    assert!(!env.path().join("runnerform-state.json").exists());
}

#[test]
fn a_saved_plan_applies_exactly_and_is_refused_once_stale() {
    let env = env();
    env.write("config.toml", CONFIG);
    env.write("runners.kdl", &kdl(&build_runner("rust:1.83")));
    let out = env.run(&["plan", "--offline", "--out", "build.plan"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let saved = std::fs::read_to_string(env.path().join("build.plan")).unwrap();
    assert!(!saved.contains("BuildToken"), "no token in a saved plan");

    // gitlab-runner rewrites config.toml in between: the plan is stale.
    let cfg = env.path().join("config.toml");
    std::fs::write(&cfg, CONFIG.replace("limit = 2", "limit = 3")).unwrap();
    let out = env.run(&["apply", "build.plan"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is stale"), "{}", out.stderr);
    assert!(out.stderr.contains("config.toml changed"), "{}", out.stderr);
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("limit = 3"));

    std::fs::write(&cfg, CONFIG).unwrap();
    let out = env.run(&["apply", "build.plan"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(
        std::fs::read_to_string(&cfg)
            .unwrap()
            .contains("image = \"rust:1.83\"")
    );

    // The same file once applied is stale too: the ownership record changed.
    let out = env.run(&["apply", "build.plan"]);
    assert_eq!(out.code, 1);
}

#[test]
fn concurrent_applies_are_serialised_and_never_interleave() {
    let env = env();
    env.write("config.toml", CONFIG);
    env.write("a.kdl", &kdl(&build_runner("image-a:1")));
    env.write("b.kdl", &kdl(&build_runner("image-b:1")));
    for round in 0..6 {
        env.write("config.toml", CONFIG);
        let _ = std::fs::remove_file(env.path().join("runnerform-state.json"));
        let spawn = |file: &str| {
            Command::new(BIN)
                .args(["apply", "--offline", "--yes", "-q", "-f", file])
                .current_dir(env.path())
                .env_clear()
                .env("GITLAB_TOKEN", "x")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn("a.kdl"), spawn("b.kdl"));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let ok = [a.status.success(), b.status.success()];
        assert!(ok.iter().any(|x| *x), "round {round}: neither applied");
        for o in [&a, &b] {
            if !o.status.success() {
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains("changed since the plan was made")
                        || err.contains("another runnerform"),
                    "round {round}: unclear failure: {err}"
                );
            }
        }
        let text = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
        let doc: DocumentMut = text.parse().expect("config.toml is valid TOML");
        let image = doc["runners"][0]["docker"]["image"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            image == "image-a:1" || image == "image-b:1",
            "round {round}: {image}"
        );
        let expected = CONFIG.replace("alpine:3.19", &image);
        assert_eq!(text, expected, "round {round}: exactly one apply's output");
    }
}

/// The plan a reviewer reads, for every kind of runner action offline.
#[test]
fn the_human_plan_for_each_kind_of_action() {
    let env = env();
    let mut state = String::from(
        r#"{"format":1,"runners":[{"name":"build","url":"https://gitlab.example.com","id":11,"scope":"project acme/app"},{"name":"retired","url":"https://gitlab.example.com","id":13,"scope":null}],"pending_deletes":[]}"#,
    );
    state.push('\n');
    env.write("runnerform-state.json", &state);
    env.write(
        "config.toml",
        &format!(
            "{CONFIG}\n[[runners]]\n  name = \"retired\"\n  url = \"https://gitlab.example.com/\"\n  id = 13\n  token = \"glrt-t1_RetiredTokenRetired00\"\n  executor = \"shell\"\n"
        ),
    );
    env.write(
        "runners.kdl",
        &kdl(
            "runner \"build-2\" {\n    project \"acme/app\"\n    renamed_from \"build\"\n    executor \"docker\"\n    limit 4\n    docker {\n        image \"rust:1.83\"\n        memory \"4g\"\n    }\n}\nrunner \"docs\" {\n    group \"acme\"\n    executor \"shell\"\n}\n",
        ),
    );
    let out = env.run(&["plan", "--offline"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    insta::assert_snapshot!(out.stdout);
    let json = env.run(&["plan", "--offline", "--json"]);
    for o in [&out, &json] {
        for secret in ["BuildToken", "LegacyToken", "RetiredToken"] {
            assert!(
                !o.combined().contains(secret),
                "token leaked:\n{}",
                o.combined()
            );
        }
    }
    let apply = env.run(&["apply", "--offline", "--yes"]);
    assert_eq!(apply.code, 0, "{}", apply.combined());
    let text = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
    assert!(!text.contains("retired"), "deleted entry removed");
    assert!(text.contains("name = \"build-2\""), "renamed in place");
    assert!(
        text.contains("token = \"glrt-t1_BuildTokenBuildToken00\""),
        "token kept"
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.path().join("runnerform-state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["runners"][0]["name"], "build-2");
    assert_eq!(state["runners"][0]["id"], 11);
    assert_eq!(
        state["pending_deletes"][0]["id"], 13,
        "GitLab delete left for online"
    );
}

#[test]
fn ambiguous_duplicate_entries_are_refused() {
    let env = env();
    env.write(
        "config.toml",
        &format!("{CONFIG}\n[[runners]]\n  name = \"build\"\n  executor = \"shell\"\n"),
    );
    env.write("runners.kdl", &kdl(&build_runner("rust:1.83")));
    let out = env.run(&["plan", "--offline"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("2 entries named `build`"),
        "{}",
        out.stderr
    );
}

#[test]
fn invalid_config_toml_is_a_located_error_and_nothing_changes() {
    let env = env();
    let bad =
        "concurrent = 4\n[[runners]]\n  name = \"x\n  token = \"glrt-t1_SecretSecretSecret000\"\n";
    env.write("config.toml", bad);
    env.write("runners.kdl", &kdl(&build_runner("rust:1.83")));
    let out = env.run(&["apply", "--offline", "--yes"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not valid TOML"), "{}", out.stderr);
    assert!(out.stderr.contains("config.toml:3:"), "{}", out.stderr);
    assert!(!out.stderr.contains("SecretSecret"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(env.path().join("config.toml")).unwrap(),
        bad
    );
}

#[test]
fn target_limits_the_plan_and_unknown_targets_are_errors() {
    let env = env();
    env.write("config.toml", CONFIG);
    env.write(
        "runners.kdl",
        &kdl(&format!(
            "{}runner \"docs\" count=2 {{\n    group \"acme\"\n    executor \"shell\"\n}}\n",
            build_runner("rust:1.83")
        )),
    );
    let out = env.run(&["plan", "--offline", "--json", "--target", "docs"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> = plan["runners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs-1", "docs-2"]);
    let out = env.run(&["plan", "--offline", "--target", "bulid"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("did you mean `build`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn plan_without_offline_needs_the_gitlab_token() {
    let env = TestEnvironment::new();
    env.write("config.toml", CONFIG);
    env.write("runners.kdl", &kdl(&build_runner("rust:1.83")));
    let out = env.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("environment variable GITLAB_TOKEN is not set"),
        "{}",
        out.stderr
    );
    assert_eq!(env.run(&["plan", "--offline"]).code, 0);
}

#[test]
fn plan_json_matches_the_committed_schema() {
    let schema_path = crate::common::root().join("schemas/plan.schema.json");
    let fresh = runnerform::plan::schema();
    if std::env::var_os("RUNNERFORM_BLESS").is_some() {
        std::fs::write(&schema_path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&schema_path).unwrap_or_default();
    assert!(
        committed == fresh,
        "schemas/plan.schema.json is stale: RUNNERFORM_BLESS=1 cargo test --test cli plan_json"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");

    let env = env();
    env.write("config.toml", CONFIG);
    env.write(
        "runners.kdl",
        &kdl(&format!(
            "{}runner \"new\" {{\n    instance\n    executor \"shell\"\n}}\n",
            build_runner("rust:1.83")
        )),
    );
    let out = env.run(&["plan", "--offline", "--json"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(doc["summary"]["create"], 1);
    assert_eq!(doc["summary"]["adopt"], 1);
    let mut broken = doc.clone();
    broken["runners"][0]["action"] = "explode".into();
    assert!(
        !validator.is_valid(&broken),
        "the schema constrains actions"
    );
}

/// On a terminal the plan is coloured and the diff highlights changed words; piped, or with
/// --no-color, it is plain. `script` gives the process a real pseudo-terminal.
#[test]
fn colour_on_a_terminal_only() {
    let env = env();
    env.write("config.toml", CONFIG);
    env.write("runners.kdl", &kdl(&build_runner("rust:1.83")));
    let run_tty = |extra: &str| {
        let out = Command::new("script")
            .args(["-q", "-e", "-c"])
            .arg(format!("{BIN} plan --offline {extra}"))
            .arg("/dev/null")
            .current_dir(env.path())
            .env_clear()
            .env("GITLAB_TOKEN", "x")
            .env("TERM", "xterm")
            .output()
            .expect("script(1) from bsdutils");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let coloured = run_tty("");
    assert!(
        coloured.contains("\x1b[33m"),
        "no colour on a terminal:\n{coloured}"
    );
    assert!(
        coloured.contains("\x1b[1;4m"),
        "no word highlight:\n{coloured}"
    );
    assert!(!coloured.contains("BuildToken"));
    let plain = run_tty("--no-color");
    assert!(
        !plain.contains("\x1b["),
        "--no-color still coloured:\n{plain}"
    );
    let piped = env.run(&["plan", "--offline"]);
    assert!(!piped.stdout.contains("\x1b["));
}
