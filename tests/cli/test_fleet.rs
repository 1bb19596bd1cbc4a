//! One file for a fleet: examples/fleet.kdl applied on each of its three hosts, each into its
//! own config.toml, against one GitLab; and the scheduled drift check per host.

use runnerform::sim::{SimOptions, Simulator};

use crate::common::{Output, TestEnvironment, root};

const HOSTS: [&str; 3] = ["ci-01", "ci-02", "ci-03"];

struct Fleet {
    env: TestEnvironment,
    sim: Simulator,
}

impl Fleet {
    fn new() -> Fleet {
        let sim = Simulator::start(SimOptions::default()).unwrap();
        let mut env = TestEnvironment::new();
        let example = std::fs::read_to_string(root().join("examples/fleet.kdl")).unwrap();
        let kdl = example.replace("https://gitlab.example.com", &sim.url());
        assert_ne!(kdl, example, "the example names its GitLab");
        env.write("fleet.kdl", &kdl);
        env.set_env("GITLAB_TOKEN", &sim.admin_token());
        Fleet { env, sim }
    }

    fn config_of(&self, host: &str) -> String {
        format!("{host}/config.toml")
    }

    /// Runs a command for `host`; the example's /etc and /srv paths are never touched.
    fn run(&self, host: &str, args: &[&str]) -> Output {
        let config = self.config_of(host);
        let mut all = vec!["-f", "fleet.kdl", "--host", host, "--config-toml", &config];
        all.extend_from_slice(args);
        self.env.run(&all)
    }

    fn config(&self, host: &str) -> String {
        std::fs::read_to_string(self.env.path().join(self.config_of(host))).unwrap_or_default()
    }

    fn registrations(&self) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.starts_with("/api/v4/user/runners"))
            .count()
    }
}

fn names_in(config: &str) -> Vec<String> {
    let doc: toml_edit::DocumentMut = config.parse().unwrap();
    doc["runners"]
        .as_array_of_tables()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn each_host_applies_its_own_part_and_no_runner_is_created_twice() {
    let f = Fleet::new();
    for host in HOSTS {
        std::fs::create_dir_all(f.env.path().join(host)).unwrap();
        let out = f.run(host, &["apply", "--yes"]);
        assert_eq!(out.code, 0, "{host}: {}", out.combined());
    }
    assert_eq!(names_in(&f.config("ci-01")), ["docker", "rust"]);
    assert_eq!(names_in(&f.config("ci-02")), ["docker", "release"]);
    assert_eq!(names_in(&f.config("ci-03")), ["docker", "shell"]);
    assert!(f.config("ci-01").contains("concurrent = 8"));
    assert!(f.config("ci-02").contains("concurrent = 4"));
    assert!(f.config("ci-03").contains("concurrent = 2"));
    // Shared defaults reach every host's runners.
    for host in HOSTS {
        assert!(f.config(host).contains("request_concurrency = 2"), "{host}");
    }

    let runners = f.sim.runners();
    assert_eq!(
        runners.len(),
        6,
        "one GitLab runner per host and declared runner"
    );
    let mut descriptions: Vec<String> = runners
        .iter()
        .map(|r| r.description.clone().unwrap_or_default())
        .collect();
    descriptions.sort();
    assert_eq!(
        descriptions,
        [
            "docker on ci-01",
            "docker on ci-02",
            "docker on ci-03",
            "release on ci-02",
            "rust on ci-01",
            "shell on ci-03"
        ]
    );

    // Applying again, on every host, registers nothing and changes nothing.
    f.sim.clear_requests();
    for host in HOSTS {
        let before = f.config(host);
        let out = f.run(host, &["apply", "--yes"]);
        assert_eq!(out.code, 0, "{host}: {}", out.combined());
        assert_eq!(f.config(host), before, "{host}");
    }
    assert_eq!(f.registrations(), 0, "{:?}", f.sim.requests());
    assert!(
        f.sim.requests().iter().all(|r| !r.write),
        "{:?}",
        f.sim.requests()
    );
    assert_eq!(f.sim.runners().len(), 6);
}

#[test]
fn the_host_comes_from_the_environment_and_an_undeclared_host_is_refused() {
    let mut f = Fleet::new();
    std::fs::create_dir_all(f.env.path().join("ci-02")).unwrap();
    f.env.set_env("RUNNERFORM_HOST", "ci-02");
    let out = f.env.run(&[
        "-f",
        "fleet.kdl",
        "--config-toml",
        "ci-02/config.toml",
        "plan",
        "--offline",
    ]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(out.stdout.contains("release: create"), "{}", out.stdout);
    assert!(!out.stdout.contains("rust"), "{}", out.stdout);

    let out = f.run("ci-1", &["plan", "--offline"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(
        out.stderr.contains("declares no host `ci-1`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `ci-01`?"),
        "{}",
        out.stderr
    );
    assert!(!f.env.path().join("ci-1").exists());
    assert_eq!(f.sim.runners().len(), 0);
}

#[test]
fn validate_checks_every_host_and_a_mistake_in_one_host_is_found() {
    let f = Fleet::new();
    let out = f.env.run(&["-f", "fleet.kdl", "validate"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(
        out.stdout.contains("6 runners on 3 hosts"),
        "{}",
        out.stdout
    );

    let broken = std::fs::read_to_string(f.env.path().join("fleet.kdl"))
        .unwrap()
        .replace("runner \"shell\" {", "runner \"docker\" {")
        .replace(
            "    runner \"release\"",
            "    exector \"x\"\n    runner \"release\"",
        );
    f.env.write("broken.kdl", &broken);
    let out = f.env.run(&["-f", "broken.kdl", "validate"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(
        out.stderr.contains("runner `docker` is declared twice"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unknown key `exector` in `host`"),
        "{}",
        out.stderr
    );
}

/// The scheduled CI job of the README: `plan --detailed-exitcode --json` per host, exit 2 on
/// drift, the JSON kept as an artifact.
#[test]
fn a_scheduled_drift_check_exits_2_on_drift_with_the_plan_as_json() {
    let f = Fleet::new();
    std::fs::create_dir_all(f.env.path().join("ci-02")).unwrap();
    assert_eq!(f.run("ci-02", &["apply", "--yes"]).code, 0);

    let clean = f.run("ci-02", &["plan", "--detailed-exitcode", "--json"]);
    assert_eq!(clean.code, 0, "{}", clean.combined());
    let v: serde_json::Value = serde_json::from_str(&clean.stdout).unwrap();
    assert_eq!(v["changes_pending"], false);

    let path = f.env.path().join("ci-02/config.toml");
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("concurrent = 4", "concurrent = 40");
    std::fs::write(&path, edited).unwrap();
    let drift = f.run("ci-02", &["plan", "--detailed-exitcode", "--json"]);
    assert_eq!(drift.code, 2, "{}", drift.combined());
    let v: serde_json::Value = serde_json::from_str(&drift.stdout).unwrap();
    assert_eq!(v["changes_pending"], true);
    let globals = v["globals"].to_string();
    assert!(globals.contains("concurrent"), "{globals}");
    // The other hosts are not this host's business: their drift is their own job's.
    assert_eq!(
        f.run("ci-01", &["plan", "--offline", "--detailed-exitcode"])
            .code,
        2
    );
}

#[test]
fn a_host_block_may_replace_the_shared_service() {
    use runnerform::desired::{HostChoice, RefCheck, read_for};
    let env = crate::common::TestEnvironment::new();
    let file = env.write(
        "fleet.kdl",
        r#"config "config.toml"
service {
    user "gitlab-runner"
}
host "ci-01" {
    service {
        user "builder"
        state "stopped"
    }
}
host "ci-02" {
}
"#,
    );
    let user_on = |host: &str| {
        let loaded = read_for(&file, RefCheck::Settings, HostChoice::One(host));
        let d = loaded.desired.expect("valid");
        let svc = d.service.expect("a service");
        (svc.user.unwrap().value, svc.state.map(|s| s.value))
    };
    assert_eq!(
        user_on("ci-01"),
        (
            "builder".to_string(),
            Some(runnerform::desired::ServiceState::Stopped)
        )
    );
    assert_eq!(user_on("ci-02"), ("gitlab-runner".to_string(), None));
}
