//! python-gitlab, an independent GitLab client, run against `runnerform sim`
//! (tests/sim_conformance.py). Needs python3 with python-gitlab: `pip install python-gitlab`.

use std::process::Command;

use crate::common::{TestEnvironment, root};

const INSTALL: &str = "run `pip install python-gitlab` (CI installs it in .ci/run)";

/// python3 with python-gitlab, or a failure that says how to get it: a skipped conformance
/// check would pass silently on a machine that cannot run it.
fn python_with_gitlab() -> String {
    let probe = Command::new("python3")
        .args(["-c", "import gitlab; print(gitlab.__version__)"])
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is not available ({e}); install Python 3 and {INSTALL}")
        });
    assert!(
        probe.status.success(),
        "python-gitlab is not installed: {INSTALL}\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    String::from_utf8_lossy(&probe.stdout).trim().to_string()
}

#[test]
fn python_gitlab_agrees_with_the_simulator() {
    let version = python_with_gitlab();
    let env = TestEnvironment::new();
    let sim = env.spawn_sim(&[]);
    let out = Command::new("python3")
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
        "python-gitlab {version} disagrees with the simulator:\n{stdout}\n{stderr}\nsimulator stderr:\n{}",
        sim.stderr()
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}
