//! The Ansible module (contrib/ansible/library/runnerform.py) run by a real ansible-core,
//! pinned and installed by the test itself (see `python.rs`), on an inventory of three
//! hosts with `ansible_connection=local`, each with its own config.toml, against one
//! `runnerform sim`: check mode plans and changes nothing, `--diff` shows the config.toml
//! diff, a normal run converges every host, the next one reports nothing changed, bad input
//! fails the task with runnerform's diagnostic, and no token reaches Ansible's output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{BIN, RunningSim, TestEnvironment, root, unmasked_token};
use crate::python::{self, PythonEnv};

/// The ansible-core release the module is tested with (2.16 is the oldest it supports;
/// 2.19 is the newest that runs on the Python 3.11 of these machines).
const ANSIBLE_CORE: &str = "ansible-core==2.19.14";

const HOSTS: [&str; 3] = ["ci-01", "ci-02", "ci-03"];

fn module_dir() -> PathBuf {
    root().join("contrib/ansible/library")
}

fn ansible() -> PythonEnv {
    python::env("ansible-core", &[ANSIBLE_CORE])
}

/// A fleet file in examples/fleet.kdl's shape: shared runner and defaults, one block per host.
fn fleet_kdl(url: &str, shared_config: &Path) -> String {
    format!(
        r#"gitlab "{url}" {{
    token env="GITLAB_TOKEN"
}}
// Never written: the inventory gives every host its own config.toml.
config "{shared}" {{
    concurrent 4
}}
defaults {{
    group "acme/platform"
    executor "docker"
    docker {{
        image "alpine:3.20"
    }}
}}
runner "docker" {{
    tags "docker" "linux"
}}
host "ci-01" {{
    config {{
        concurrent 8
    }}
    runner "rust" {{
        project "acme/app"
        tags "rust"
        run_untagged #false
    }}
}}
host "ci-02" {{
    runner "release" {{
        project "acme/app"
        access_level "ref_protected"
        tags "release"
    }}
}}
host "ci-03" {{
    runner "shell" {{
        instance
        executor "shell"
        tags "shell"
    }}
}}
"#,
        shared = shared_config.display()
    )
}

const PLAYBOOK: &str = r#"- name: GitLab runners
  hosts: runners
  gather_facts: false
  tasks:
    - name: Converge GitLab runners
      runnerform:
        file: "{{ fleet_file }}"
        host: "{{ inventory_hostname }}"
        config_toml: "{{ config_toml }}"
        binary: "{{ runnerform_binary }}"
        offline: "{{ rf_offline | default(false) }}"
        targets: "{{ rf_targets | default([]) }}"
        wait_online: "{{ rf_wait | default(omit) }}"
        concurrency: "{{ rf_concurrency | default(omit) }}"
      environment:
        GITLAB_TOKEN: "{{ lookup('env', 'RF_TEST_GITLAB_TOKEN') }}"
"#;

/// What one ansible-playbook run printed, and its PLAY RECAP by host.
struct Played {
    code: i32,
    output: String,
    recap: BTreeMap<String, BTreeMap<String, u32>>,
}

impl Played {
    fn count(&self, host: &str, what: &str) -> u32 {
        self.recap
            .get(host)
            .and_then(|r| r.get(what))
            .copied()
            .unwrap_or_else(|| panic!("no {what} for {host} in the recap:\n{}", self.output))
    }

    /// Asserts every host's recap: `changed` and `failed` counts.
    fn expect_each(&self, changed: u32, failed: u32) {
        assert_eq!(
            self.recap.keys().collect::<Vec<_>>(),
            HOSTS.iter().collect::<Vec<_>>(),
            "{}",
            self.output
        );
        for host in HOSTS {
            assert_eq!(
                (self.count(host, "changed"), self.count(host, "failed")),
                (changed, failed),
                "{host} (changed, failed):\n{}",
                self.output
            );
        }
    }
}

impl Played {
    /// The result Ansible printed for a failed task on `host` (needs `-v` or a failure).
    fn failure(&self, host: &str) -> Value {
        let prefix = format!("fatal: [{host}]: FAILED! => ");
        let line = self
            .output
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no failure for {host}:\n{}", self.output));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }
}

fn parse_recap(output: &str) -> BTreeMap<String, BTreeMap<String, u32>> {
    let mut recap = BTreeMap::new();
    let Some(start) = output.find("PLAY RECAP") else {
        return recap;
    };
    for line in output[start..].lines().skip(1) {
        let Some((host, counts)) = line.split_once(" : ") else {
            continue;
        };
        let counts: BTreeMap<String, u32> = counts
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect();
        recap.insert(host.trim().to_string(), counts);
    }
    recap
}

struct Fleet {
    py: PythonEnv,
    env: TestEnvironment,
    sim: RunningSim,
}

impl Fleet {
    fn new() -> Fleet {
        let py = ansible();
        let mut env = TestEnvironment::new();
        let sim = env.spawn_sim(&[]);
        // For the test's own `runnerform plan` checks; ansible-playbook never gets it.
        env.set_env("GITLAB_TOKEN", &sim.admin_token);
        let shared = env.path().join("shared/config.toml");
        env.write("fleet.kdl", &fleet_kdl(&sim.url, &shared));
        let mut inventory = String::from("[runners]\n");
        for host in HOSTS {
            std::fs::create_dir_all(env.path().join(host)).unwrap();
            inventory.push_str(&format!(
                "{host} config_toml={}\n",
                env.path().join(host).join("config.toml").display()
            ));
        }
        inventory.push_str(&format!(
            "\n[runners:vars]\nansible_connection=local\nansible_python_interpreter={}\n\
             fleet_file={}\nrunnerform_binary={BIN}\n",
            py.python.display(),
            env.path().join("fleet.kdl").display()
        ));
        env.write("inventory.ini", &inventory);
        env.write("site.yml", PLAYBOOK);
        Fleet { py, env, sim }
    }

    fn config_path(&self, host: &str) -> PathBuf {
        self.env.path().join(host).join("config.toml")
    }

    fn config(&self, host: &str) -> String {
        std::fs::read_to_string(self.config_path(host)).unwrap_or_default()
    }

    /// Runs `ansible-playbook -i inventory.ini site.yml ARGS` with a clean environment, and
    /// checks that nothing it printed holds a token.
    fn play(&self, args: &[&str]) -> Played {
        let dir = self.env.path();
        let mut cmd = self.py.command("ansible-playbook");
        cmd.env_clear();
        self.py.configure(&mut cmd);
        cmd.args(["-i", "inventory.ini", "site.yml"])
            .args(args)
            .current_dir(dir)
            .env("HOME", dir)
            // ansible-core refuses to run without a UTF-8 locale.
            .env("LC_ALL", "C.UTF-8")
            .env("ANSIBLE_LIBRARY", module_dir())
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCAL_TEMP", dir.join(".ansible/tmp"))
            .env("ANSIBLE_REMOTE_TEMP", dir.join(".ansible/remote"))
            .env("RF_TEST_GITLAB_TOKEN", &self.sim.admin_token)
            // The simulator is on 127.0.0.1; a module's bytecode must not land in the repo.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let out = cmd.output().expect("run ansible-playbook");
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(token) = unmasked_token(&output) {
            panic!("ansible-playbook {args:?} printed a token ({token}…):\n{output}");
        }
        assert!(
            !output.contains(&self.sim.admin_token["glpat-".len()..]),
            "the admin token's secret part is in Ansible's output:\n{output}"
        );
        Played {
            code: out.status.code().unwrap_or(-1),
            recap: parse_recap(&output),
            output,
        }
    }

    /// A request to the simulator's control API, with a JSON body or none.
    fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!("{}{path}", self.sim.url);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let client = reqwest::Client::builder().no_proxy().build().unwrap();
                let mut request = client.request(method, &url);
                if let Some(body) = body {
                    request = request.json(&body);
                }
                let resp = request.send().await.expect("simulator answers");
                assert!(resp.status().is_success(), "{url}: {}", resp.status());
                let text = resp.text().await.unwrap();
                if text.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).unwrap()
                }
            })
    }

    fn requests(&self) -> Vec<Value> {
        self.control(reqwest::Method::GET, "/-/sim/requests", None)
            .as_array()
            .expect("the request log is a list")
            .clone()
    }

    fn writes(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["write"] != Value::Bool(false))
            .collect()
    }

    /// GitLab's runners as the simulator stores them.
    fn runners(&self) -> Vec<Value> {
        self.control(reqwest::Method::GET, "/-/sim/runners", None)
            .as_array()
            .expect("runners are a list")
            .clone()
    }

    fn runner_count(&self) -> usize {
        self.runners().len()
    }
}

fn names_in(config: &str) -> Vec<String> {
    let doc: toml_edit::DocumentMut = config.parse().unwrap();
    doc["runners"]
        .as_array_of_tables()
        .map(|a| {
            a.iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn check_mode_plans_every_host_shows_the_diff_and_changes_nothing() {
    let f = Fleet::new();
    let played = f.play(&["--check", "--diff"]);
    assert_eq!(played.code, 0, "{}", played.output);
    played.expect_each(1, 0);

    // The diff: each host's config.toml as planned, and what happens to each runner.
    let out = &played.output;
    assert!(
        out.contains(&format!(
            "+++ {} (planned)",
            f.config_path("ci-01").display()
        )),
        "{out}"
    );
    assert!(out.contains("+concurrent = 8"), "{out}");
    assert!(out.contains("+concurrent = 4"), "{out}");
    for runner in ["docker", "rust", "release", "shell"] {
        assert!(
            out.contains(&format!("+ {runner}: create (declared")),
            "{runner}: {out}"
        );
    }

    // Nothing changed: no config.toml anywhere, no write to GitLab, no runner.
    for host in HOSTS {
        let written: Vec<_> = std::fs::read_dir(f.env.path().join(host))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(written.is_empty(), "{host}: check mode wrote {written:?}");
    }
    assert!(!f.env.path().join("shared").exists());
    let log = f.requests();
    assert!(!log.is_empty(), "check mode asked GitLab nothing");
    assert!(f.writes().is_empty(), "check mode wrote to GitLab: {log:?}");
    assert_eq!(f.runner_count(), 0);
}

#[test]
fn a_normal_run_converges_every_host_and_later_runs_report_only_real_changes() {
    let f = Fleet::new();
    let played = f.play(&["-v"]);
    assert_eq!(played.code, 0, "{}", played.output);
    played.expect_each(1, 0);
    // -v prints each result: the plan, and what apply did.
    assert!(
        played.output.contains("\"apply_output\""),
        "{}",
        played.output
    );
    assert!(
        played.output.contains("rust: register (GitLab id"),
        "{}",
        played.output
    );

    assert_eq!(names_in(&f.config("ci-01")), ["docker", "rust"]);
    assert_eq!(names_in(&f.config("ci-02")), ["docker", "release"]);
    assert_eq!(names_in(&f.config("ci-03")), ["docker", "shell"]);
    assert!(f.config("ci-01").contains("concurrent = 8"));
    assert!(f.config("ci-02").contains("concurrent = 4"));
    assert_eq!(f.runner_count(), 6, "one GitLab runner per host and runner");
    assert!(!f.env.path().join("shared").exists());
    for host in HOSTS {
        let config = f.config_path(host);
        let plan = f.env.run(&[
            "-f",
            "fleet.kdl",
            "--host",
            host,
            "--config-toml",
            config.to_str().unwrap(),
            "plan",
            "--detailed-exitcode",
        ]);
        assert_eq!(plan.code, 0, "{host} converged:\n{}", plan.combined());
    }

    // Again, with --diff: nothing to do, nothing written, nothing reported as changed.
    let before: Vec<String> = HOSTS.iter().map(|h| f.config(h)).collect();
    f.control(reqwest::Method::DELETE, "/-/sim/requests", None);
    let again = f.play(&["--diff"]);
    assert_eq!(again.code, 0, "{}", again.output);
    again.expect_each(0, 0);
    assert!(!again.output.contains("(planned)"), "{}", again.output);
    assert_eq!(
        HOSTS.iter().map(|h| f.config(h)).collect::<Vec<_>>(),
        before
    );
    assert!(f.writes().is_empty(), "{:?}", f.requests());
    assert_eq!(f.runner_count(), 6);

    // Check mode agrees on a converged fleet.
    let check = f.play(&["--check"]);
    assert_eq!(check.code, 0, "{}", check.output);
    check.expect_each(0, 0);

    // Someone changes one runner's tags in GitLab's UI: only its host reports a change, and
    // the diff names it as a GitLab change.
    let release = f
        .runners()
        .into_iter()
        .find(|r| r["description"] == "release on ci-02")
        .expect("ci-02's release runner");
    f.control(
        reqwest::Method::PATCH,
        &format!("/-/sim/runners/{}", release["id"]),
        Some(serde_json::json!({"tag_list": ["drift"]})),
    );
    let drift = f.play(&["--check", "--diff"]);
    assert_eq!(drift.code, 0, "{}", drift.output);
    let changed: Vec<u32> = HOSTS.iter().map(|h| drift.count(h, "changed")).collect();
    assert_eq!(changed, [0, 1, 0], "{}", drift.output);
    assert!(
        drift
            .output
            .contains(&format!("~ release: update [GitLab id {}]", release["id"])),
        "{}",
        drift.output
    );
    assert!(
        drift
            .output
            .contains(r#"~ tags: ["drift"] -> ["release"] (GitLab)"#),
        "{}",
        drift.output
    );
    let repair = f.play(&[]);
    assert_eq!(repair.code, 0, "{}", repair.output);
    let changed: Vec<u32> = HOSTS.iter().map(|h| repair.count(h, "changed")).collect();
    assert_eq!(changed, [0, 1, 0], "{}", repair.output);
    let release = f
        .runners()
        .into_iter()
        .find(|r| r["description"] == "release on ci-02")
        .unwrap();
    assert_eq!(release["tag_list"], serde_json::json!(["release"]));
}

#[test]
fn a_bad_fleet_file_fails_the_task_with_runnerforms_diagnostic() {
    let f = Fleet::new();
    let kdl = std::fs::read_to_string(f.env.path().join("fleet.kdl")).unwrap();
    let bad = kdl.replace(
        "    tags \"docker\" \"linux\"",
        "    tagz \"docker\" \"linux\"",
    );
    assert_ne!(bad, kdl);
    f.env.write("fleet.kdl", &bad);

    let played = f.play(&[]);
    assert_ne!(played.code, 0, "{}", played.output);
    played.expect_each(0, 1);
    let out = &played.output;
    assert!(out.contains("runnerform plan failed (exit 1)"), "{out}");
    let line = 1 + bad.lines().position(|l| l.contains("tagz")).unwrap();
    assert!(
        out.contains(&format!("fleet.kdl:{line}:5")),
        "the diagnostic's location: {out}"
    );
    assert!(
        out.contains("did you mean `tags`?"),
        "the diagnostic's hint: {out}"
    );
    for host in HOSTS {
        assert!(!f.config_path(host).exists(), "{host}");
    }
    assert!(f.requests().is_empty(), "{:?}", f.requests());
}

#[test]
fn offline_runs_write_config_toml_only_and_do_not_report_what_needs_gitlab() {
    let f = Fleet::new();
    // Limited to one runner, whose creation needs GitLab: nothing an offline run can do.
    let played = f.play(&[
        "-e",
        "rf_offline=true",
        "-e",
        r#"{"rf_targets": ["docker"]}"#,
        "-v",
    ]);
    assert_eq!(played.code, 0, "{}", played.output);
    played.expect_each(0, 0);
    assert!(
        played.output.contains(r#""targets": ["docker"]"#),
        "{}",
        played.output
    );
    assert!(
        played.output.contains(r#""pending": true"#),
        "{}",
        played.output
    );
    for host in HOSTS {
        assert!(!f.config_path(host).exists(), "{host}");
    }

    // The whole file: each host's global keys are written, its runners stay pending.
    let played = f.play(&["-e", "rf_offline=true"]);
    assert_eq!(played.code, 0, "{}", played.output);
    played.expect_each(1, 0);
    assert_eq!(f.config("ci-01").trim(), "concurrent = 8");
    assert_eq!(f.config("ci-02").trim(), "concurrent = 4");

    // What is left needs GitLab, in check mode or not.
    let check = f.play(&["-e", "rf_offline=true", "--check"]);
    assert_eq!(check.code, 0, "{}", check.output);
    check.expect_each(0, 0);
    let again = f.play(&["-e", "rf_offline=true"]);
    assert_eq!(again.code, 0, "{}", again.output);
    again.expect_each(0, 0);
    assert_eq!(f.config("ci-01").trim(), "concurrent = 8");
    assert!(f.requests().is_empty(), "{:?}", f.requests());
    assert_eq!(f.runner_count(), 0);
}

#[test]
fn a_failed_wait_online_fails_the_task_and_says_the_apply_changed_things() {
    let f = Fleet::new();
    // Nothing runs gitlab-runner here, so no runner ever comes online.
    let played = f.play(&["-e", "rf_wait=1s", "-e", "rf_concurrency=2"]);
    assert_ne!(played.code, 0, "{}", played.output);
    played.expect_each(0, 1);
    for host in HOSTS {
        let result = played.failure(host);
        let msg = result["msg"].as_str().unwrap();
        assert!(msg.starts_with("runnerform apply failed (exit 1)"), "{msg}");
        assert!(msg.contains("did not come online within 1s"), "{msg}");
        assert_eq!(result["changed"], true, "{host} was applied: {result}");
        assert!(!names_in(&f.config(host)).is_empty(), "{host}");
    }
    assert_eq!(f.runner_count(), 6);

    // Applied already: a second failure changes nothing, and says so.
    let again = f.play(&["-e", "rf_wait=1s"]);
    again.expect_each(0, 1);
    for host in HOSTS {
        assert_eq!(again.failure(host)["changed"], false, "{host}");
    }
    assert_eq!(f.runner_count(), 6);
}

#[test]
fn the_module_compiles_and_its_argument_spec_matches_its_documentation() {
    let py = ansible();
    let module = module_dir().join("runnerform.py");
    let tmp = tempfile::tempdir().unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd
            .env("PYTHONPYCACHEPREFIX", tmp.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("run python");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };

    let (code, out) = run(py.command("python").args(["-m", "py_compile"]).arg(&module));
    assert_eq!(code, 0, "{out}");

    let checker = root().join("tests/ansible_module_spec.py");
    let (code, out) = run(py.command("python").arg(&checker).arg(&module));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("argument spec matches DOCUMENTATION: 8 options"),
        "{out}"
    );

    // ansible-doc reads the documentation as Ansible itself does.
    let (code, out) = run(py
        .command("ansible-doc")
        .arg("-M")
        .arg(module_dir())
        .args(["--json", "runnerform"])
        .env("HOME", tmp.path())
        .env("LC_ALL", "C.UTF-8"));
    assert_eq!(code, 0, "{out}");
    let doc: Value = serde_json::from_str(&out).expect("ansible-doc --json");
    let options = doc["runnerform"]["doc"]["options"].as_object().unwrap();
    assert!(options["file"]["required"].as_bool().unwrap());
    assert_eq!(
        doc["runnerform"]["doc"]["attributes"]["check_mode"]["support"],
        "full"
    );

    // The checker notices a disagreement.
    let source = std::fs::read_to_string(&module).unwrap();
    let drifted = source.replace(
        "concurrency=dict(type=\"int\")",
        "concurrency=dict(type=\"str\")",
    );
    assert_ne!(drifted, source);
    let copy = tmp.path().join("runnerform.py");
    std::fs::write(&copy, drifted).unwrap();
    let (code, out) = run(py.command("python").arg(&checker).arg(&copy));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("concurrency: type is 'int' in DOCUMENTATION, 'str' in the argument spec"),
        "{out}"
    );
}
