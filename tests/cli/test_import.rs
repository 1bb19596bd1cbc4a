//! `runnerform import`: every real config.toml is described completely, adopted on the first
//! apply without registering or deleting anything, and left with the same keys and values.

use std::collections::BTreeMap;

use runnerform::sim::{SimOptions, Simulator};
use toml_edit::{DocumentMut, Item, Table, Value};

use crate::common::{TestEnvironment, unmasked_token};
use crate::test_fixtures::fixtures;

/// Every leaf of a document by dotted path (array-of-tables items by index), with its value
/// without layout. Two files with equal maps hold the same keys and values.
fn leaves(doc: &DocumentMut) -> BTreeMap<String, String> {
    fn table(t: &Table, prefix: &str, out: &mut BTreeMap<String, String>) {
        for (k, item) in t.iter() {
            item_leaves(item, &format!("{prefix}{k}"), out);
        }
    }
    fn item_leaves(item: &Item, path: &str, out: &mut BTreeMap<String, String>) {
        match item {
            Item::Table(t) => table(t, &format!("{path}."), out),
            Item::Value(Value::InlineTable(t)) => {
                table(&t.clone().into_table(), &format!("{path}."), out)
            }
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    table(t, &format!("{path}[{i}]."), out);
                }
            }
            Item::Value(v) => {
                let mut v = v.clone();
                v.decor_mut().clear();
                out.insert(path.to_string(), v.to_string());
            }
            Item::None => {}
        }
    }
    let mut out = BTreeMap::new();
    table(doc.as_table(), "", &mut out);
    out
}

fn runners(doc: &DocumentMut) -> Vec<&Table> {
    doc.get("runners")
        .and_then(Item::as_array_of_tables)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// What apply may add, and only to an entry that lacks it: a name (runnerform names runners)
/// and, for an entry without one, the declared GitLab URL.
fn allowed_additions(before: &DocumentMut) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in runners(before).iter().enumerate() {
        for k in ["name", "url"] {
            if t.get(k).is_none() {
                out.push(format!("runners[{i}].{k}"));
            }
        }
    }
    out
}

fn assert_same_keys_and_values(name: &str, before: &str, after: &str) {
    let before_doc: DocumentMut = before.parse().unwrap();
    let after_doc: DocumentMut = after.parse().unwrap();
    let (b, mut a) = (leaves(&before_doc), leaves(&after_doc));
    for added in allowed_additions(&before_doc) {
        a.remove(&added);
    }
    assert_eq!(b, a, "{name}: apply changed config.toml:\n{after}");
}

/// Values of secrets (tokens and the inventory's secret keys) in a config.toml.
fn secret_values(doc: &DocumentMut) -> Vec<String> {
    const SECRET_LEAVES: &[&str] = &[
        "token",
        "AccessKey",
        "SecretKey",
        "SessionToken",
        "PrivateKey",
        "AccountKey",
        "bearer_token",
        "password",
        "sentry_dsn",
    ];
    leaves(doc)
        .into_iter()
        .filter(|(path, v)| {
            let leaf = path.rsplit('.').next().unwrap_or(path);
            SECRET_LEAVES.contains(&leaf) && v != "\"\"" && !v.contains('$')
        })
        .map(|(_, v)| v)
        .collect()
}

/// The env vars an imported file lists at its top, with the config.toml value each stands
/// for, as a person setting up the host would export them.
fn listed_secrets(kdl: &str, doc: &DocumentMut) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in kdl
        .lines()
        .take_while(|l| l.starts_with("//") || l.is_empty())
    {
        let Some(rest) = line.strip_prefix("//   ") else {
            continue;
        };
        let (var, what) = rest.split_once(": ").unwrap();
        let parts: Vec<&str> = what.split('`').collect();
        if what.starts_with("the token") {
            continue;
        }
        let path = parts[1];
        let table = if what.contains("of config.toml") {
            doc.as_table().clone()
        } else if what.contains("shared by the runners") {
            runners(doc)[0].clone()
        } else {
            let runner = parts[3];
            runners(doc)
                .into_iter()
                .find(|t| t.get("name").and_then(Item::as_str) == Some(runner))
                .unwrap()
                .clone()
        };
        let mut item = Item::Table(table);
        for seg in path.split('.') {
            let t = item.as_table_like().unwrap();
            let key = t
                .iter()
                .map(|(k, _)| k.to_string())
                .find(|k| k.eq_ignore_ascii_case(seg))
                .unwrap();
            item = t.get(&key).unwrap().clone();
        }
        out.push((var.to_string(), item.as_str().unwrap().to_string()));
    }
    out
}

fn plan_actions(out: &crate::common::Output) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("plan --json: {e}\n{}", out.combined()));
    v["runners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A config.toml of `n` runners as a long-lived host accumulates them: most settings shared,
/// some overridden, a few runners with their own sub-tables.
fn generated(n: usize) -> String {
    let mut s = String::from(
        "concurrent = 32\ncheck_interval = 3\nlog_format = \"json\"\n\n[session_server]\n  session_timeout = 1800\n",
    );
    for i in 1..=n {
        let image = if i % 10 == 0 {
            "rust:1.83"
        } else {
            "alpine:3.20"
        };
        s.push_str(&format!(
            "\n[[runners]]\n  name = \"gen-{i:03}\"\n  url = \"https://gitlab.example.com\"\n  token = \"glrt-generated{i:03}abcdefghijkl\"\n  executor = \"docker\"\n  limit = {}\n  request_concurrency = 2\n  [runners.docker]\n    image = \"{image}\"\n    privileged = false\n    volumes = [\"/cache\"]\n    shm_size = 0\n  [runners.cache]\n    Type = \"s3\"\n    Shared = true\n    [runners.cache.s3]\n      ServerAddress = \"s3.example.com\"\n      BucketName = \"ci-cache\"\n      AccessKey = \"AKIA-SHARED\"\n      SecretKey = \"shared-secret-key-value\"\n",
            if i % 7 == 0 { 4 } else { 1 }
        ));
        if i % 25 == 0 {
            s.push_str("  [runners.feature_flags]\n    FF_USE_FASTZIP = true\n");
        }
    }
    s
}

fn cases() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fixtures()
        .into_iter()
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.push(("generated-200".into(), generated(200)));
    out
}

/// Writes `toml` as the environment's config.toml and imports it into runners.kdl; returns
/// the KDL.
pub(crate) fn import_into(env: &TestEnvironment, name: &str, toml: &str) -> String {
    env.write("config.toml", toml);
    let out = env.run(&[
        "import",
        "--config-toml",
        "config.toml",
        "-o",
        "runners.kdl",
    ]);
    assert_eq!(out.code, 0, "{name}: {}", out.combined());
    std::fs::read_to_string(env.path().join("runners.kdl")).unwrap()
}

/// Imports `toml`, checks the file, plans and applies it offline; returns the KDL.
fn offline_roundtrip(name: &str, toml: &str) -> String {
    let mut env = TestEnvironment::new();
    let kdl = import_into(&env, name, toml);
    let doc: DocumentMut = toml.parse().unwrap();
    for secret in secret_values(&doc) {
        assert!(
            !kdl.contains(&secret),
            "{name}: {secret} is in the KDL:\n{kdl}"
        );
    }
    assert_eq!(unmasked_token(&kdl), None, "{name}:\n{kdl}");

    let valid = env.run(&["validate"]);
    assert_eq!(valid.code, 0, "{name}:\n{kdl}\n{}", valid.combined());
    assert!(!valid.stderr.contains('×'), "{name}: {}", valid.stderr);

    for (var, value) in listed_secrets(&kdl, &doc) {
        env.set_env(&var, &value);
    }
    let plan = env.run(&["plan", "--offline", "--json"]);
    assert_eq!(plan.code, 0, "{name}: {}", plan.combined());
    for (runner, action) in plan_actions(&plan) {
        assert_eq!(action, "adopt", "{name}: {runner}\n{kdl}\n{}", plan.stdout);
    }
    let apply = env.run(&["apply", "--offline", "--yes"]);
    assert_eq!(apply.code, 0, "{name}: {}", apply.combined());
    let after = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
    assert_same_keys_and_values(name, toml, &after);
    let again = env.run(&["plan", "--offline", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{name}: {}", again.combined());
    kdl
}

#[test]
fn every_fixture_is_imported_valid_adopted_offline_and_left_as_it_was() {
    for (name, toml) in cases() {
        offline_roundtrip(&name, &toml);
    }
}

#[test]
fn shared_settings_are_written_once_in_defaults() {
    let kdl = offline_roundtrip("generated-200", &generated(200));
    let defaults = kdl
        .split("\ndefaults {\n")
        .nth(1)
        .expect("a defaults block")
        .split("\n}\n")
        .next()
        .unwrap();
    for shared in [
        "executor \"docker\"",
        "image \"alpine:3.20\"",
        "BucketName \"ci-cache\"",
        "limit 1",
        "SecretKey env=\"RUNNERS_CACHE_S3_SECRETKEY\"",
    ] {
        assert!(
            defaults.contains(shared),
            "{shared} not in defaults:\n{defaults}"
        );
        assert_eq!(kdl.matches(shared).count(), 1, "{shared} repeated");
    }
    // Overrides stay with their runner.
    assert_eq!(kdl.matches("image \"rust:1.83\"").count(), 20);
    assert_eq!(kdl.matches("limit 4").count(), 28);
    assert!(kdl.len() < 200 * 400, "{} bytes", kdl.len());
}

/// One fixture made live on the simulator: every entry gets a real runner, the simulator's
/// URL, and (where it had one) a real id; `$VAR` references stay and the test exports them.
struct Live {
    env: TestEnvironment,
    toml: String,
}

fn make_live(sim: &Simulator, name: &str, toml: &str) -> Live {
    let mut env = TestEnvironment::new();
    let mut doc: DocumentMut = toml.parse().unwrap();
    let client = runnerform::remote::Client::new(&runnerform::remote::ClientOptions {
        token: Some(sim.admin_token()),
        ..runnerform::remote::ClientOptions::new(&sim.url())
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(Item::ArrayOfTables(a)) = doc.get_mut("runners") {
        for (i, t) in a.iter_mut().enumerate() {
            let description = t
                .get("name")
                .and_then(Item::as_str)
                .map_or_else(|| format!("{name}-{i}"), str::to_string);
            let made = rt
                .block_on(client.create_runner(&serde_json::json!({
                    "runner_type": "instance_type",
                    "description": description,
                    "tag_list": ["imported", name],
                })))
                .unwrap();
            match t.get("url").and_then(Item::as_str).map(str::to_string) {
                Some(u) if u.starts_with('$') => {
                    env.set_env(
                        u.trim_start_matches(['$', '{']).trim_end_matches('}'),
                        &sim.url(),
                    );
                }
                _ => t["url"] = toml_edit::value(sim.url()),
            }
            match t.get("token").and_then(Item::as_str).map(str::to_string) {
                Some(tok) if tok.starts_with('$') => {
                    env.set_env(
                        tok.trim_start_matches(['$', '{']).trim_end_matches('}'),
                        &made.token,
                    );
                }
                _ => t["token"] = toml_edit::value(made.token.clone()),
            }
            if t.contains_key("id") {
                t["id"] = toml_edit::value(made.id);
            }
        }
    }
    let toml = doc.to_string();
    env.write("config.toml", &toml);
    env.set_env("GITLAB_TOKEN", &sim.admin_token());
    Live { env, toml }
}

#[test]
fn every_fixture_is_adopted_online_without_registering_deleting_or_changing_anything() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    for (name, toml) in cases() {
        let mut live = make_live(&sim, &name, &toml);
        let env = &mut live.env;
        let out = env.run(&[
            "import",
            "--config-toml",
            "config.toml",
            "-o",
            "runners.kdl",
        ]);
        assert_eq!(out.code, 0, "{name}: {}", out.combined());
        let kdl = std::fs::read_to_string(env.path().join("runners.kdl")).unwrap();
        assert_eq!(unmasked_token(&kdl), None, "{name}:\n{kdl}");
        assert!(!kdl.contains("scope unknown"), "{name}:\n{kdl}");
        assert!(
            kdl.contains("instance"),
            "{name}: the scope is recorded:\n{kdl}"
        );
        let doc: DocumentMut = live.toml.parse().unwrap();
        for (var, value) in listed_secrets(&kdl, &doc) {
            env.set_env(&var, &value);
        }

        sim.clear_requests();
        let plan = env.run(&["plan", "--json"]);
        assert_eq!(plan.code, 0, "{name}:\n{kdl}\n{}", plan.combined());
        let v: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
        for r in v["runners"].as_array().unwrap() {
            assert_eq!(r["action"], "adopt", "{name}:\n{kdl}\n{}", plan.stdout);
            let gitlab_changes = r["changes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["side"] != "local")
                .count();
            assert_eq!(gitlab_changes, 0, "{name}: {}", plan.stdout);
        }
        let apply = env.run(&["apply", "--yes"]);
        assert_eq!(apply.code, 0, "{name}: {}", apply.combined());
        let after = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
        assert_same_keys_and_values(&name, &live.toml, &after);
        for r in sim.requests() {
            let registers = r.method == "POST"
                && (r.path.starts_with("/api/v4/user/runners")
                    || r.path == "/api/v4/runners"
                    || r.path.contains("reset_authentication_token"));
            assert!(!registers, "{name}: {} {}", r.method, r.path);
            assert!(
                r.method != "DELETE" && r.method != "PUT",
                "{name}: {} {}",
                r.method,
                r.path
            );
        }
        let again = env.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(again.code, 0, "{name}: {}", again.combined());
    }
}

#[test]
fn without_an_access_token_the_scope_is_a_comment_and_the_file_still_validates_and_plans() {
    let mut env = TestEnvironment::new();
    env.write(
        "config.toml",
        "concurrent = 2\n\n[[runners]]\n  name = \"a\"\n  url = \"https://gitlab.example.com/\"\n  id = 42\n  token = \"glrt-abcdefghijklmnopqrstuvwxyz\"\n  executor = \"shell\"\n",
    );
    let out = env.run(&["import", "--config-toml", "config.toml"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    insta::assert_snapshot!(out.stdout.replace(&env.path().display().to_string(), "$TMP"), @r#"
    // Imported by runnerform 0.1.0 from $TMP/config.toml.
    // Planned against that host, every runner is adopted as it is: nothing is registered,
    // and no key of config.toml changes.
    // Secrets are never copied here. This file reads them from these env vars:
    //   RUNNER_TOKEN_A: the token of runner `a`
    // Runner tokens are needed only on a host whose config.toml lacks the runner.

    gitlab "https://gitlab.example.com" {
        token env="GITLAB_TOKEN"
    }

    config "$TMP/config.toml" {
        concurrent 2
    }

    runner "a" {
        // GitLab scope unknown: imported without a GitLab access token (GITLAB_TOKEN was not set);
        // set it and import again to record the scope
        token env="RUNNER_TOKEN_A"    // needed only where config.toml lacks this entry
        executor "shell"
    }
    "#);
    env.write("runners.kdl", &out.stdout);
    assert_eq!(env.run(&["validate"]).code, 0);
    env.set_env("GITLAB_TOKEN", "unused-offline");
    let plan = env.run(&["plan", "--offline"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    assert!(plan.stdout.contains("> a: adopt"), "{}", plan.stdout);
}

#[test]
fn tokens_anywhere_in_config_toml_never_reach_the_kdl_file() {
    let env = TestEnvironment::new();
    env.write(
        "config.toml",
        r#"concurrent = 2
sentry_dsn = "https://glpat-abcdefghijklmnopqrst@sentry.example.com/1"

[[runners]]
  name = "leaky"
  url = "https://gitlab.example.com"
  token = "glrt-t1_abcdefghijklmnopqrstuvwxyz"
  executor = "shell"
  environment = ["DEPLOY_TOKEN=glpat-abcdefghijklmnopqrst", "PLAIN=1"]
  pre_build_script = "echo GR1348941abcdefghijklmnop"
  unknown_key = "glrtr-abcdefghijklmnopqrstuv"
  [runners.cache]
    Type = "s3"
    [runners.cache.s3]
      SecretKey = "not-a-gitlab-token-but-secret"
"#,
    );
    let out = env.run(&[
        "import",
        "--config-toml",
        "config.toml",
        "-o",
        "runners.kdl",
    ]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let kdl = std::fs::read_to_string(env.path().join("runners.kdl")).unwrap();
    assert_eq!(unmasked_token(&kdl), None, "{kdl}");
    for fragment in ["abcdefghijklmnop", "not-a-gitlab-token-but-secret"] {
        assert!(!kdl.contains(fragment), "{fragment} leaked:\n{kdl}");
    }
    assert!(
        kdl.contains("sentry_dsn env=\"GITLAB_RUNNER_SENTRY_DSN\""),
        "{kdl}"
    );
    assert!(kdl.contains("pre_build_script env="), "{kdl}");
    assert!(
        kdl.contains("SecretKey env=\"RUNNER_LEAKY_CACHE_S3_SECRETKEY\""),
        "{kdl}"
    );
    assert!(
        kdl.contains("// `environment` holds a GitLab token"),
        "{kdl}"
    );
    assert!(kdl.contains("// `unknown_key` is not a key"), "{kdl}");
    assert_eq!(env.run(&["validate"]).code, 0);
}

#[test]
fn an_existing_output_file_is_kept_unless_forced() {
    let env = TestEnvironment::new();
    env.write("config.toml", "concurrent = 1\n");
    env.write("runners.kdl", "// mine\n");
    let out = env.run(&[
        "import",
        "--config-toml",
        "config.toml",
        "-o",
        "runners.kdl",
    ]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(env.path().join("runners.kdl")).unwrap(),
        "// mine\n"
    );
    let forced = env.run(&[
        "import",
        "--config-toml",
        "config.toml",
        "-o",
        "runners.kdl",
        "--force",
    ]);
    assert_eq!(forced.code, 0, "{}", forced.combined());
    let missing = env.run(&["import", "--config-toml", "nope.toml"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no such file"),
        "{}",
        missing.stderr
    );
}
