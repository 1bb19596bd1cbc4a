//! python-gitlab, an independent GitLab client, run against `runnerform sim`
//! (tests/sim_conformance.py). The pinned python-gitlab is installed by the test itself (see
//! `python.rs`), so a machine with python3 and the package registry needs nothing else.

use crate::common::{TestEnvironment, root};
use crate::python;

/// The python-gitlab release the conformance script is written against.
const PYTHON_GITLAB: &str = "python-gitlab==8.6.0";

#[test]
fn python_gitlab_agrees_with_the_simulator() {
    let py = python::env("python-gitlab", &[PYTHON_GITLAB]);
    let env = TestEnvironment::new();
    let sim = env.spawn_sim(&[]);
    let out = py
        .command("python")
        .arg(root().join("tests/sim_conformance.py"))
        .arg(&sim.url)
        .arg(&sim.admin_token)
        // The simulator is on 127.0.0.1; a proxy from the environment must not intercept.
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{PYTHON_GITLAB} disagrees with the simulator:\n{stdout}\n{stderr}\nsimulator stderr:\n{}",
        sim.stderr()
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}
