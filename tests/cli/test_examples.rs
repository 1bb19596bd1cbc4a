//! Every example in examples/ validates.

use crate::common::{TestEnvironment, root};

#[test]
fn every_example_validates() {
    let mut env = TestEnvironment::new();
    for var in ["GITLAB_TOKEN", "LEGACY_DOCKER_RUNNER_TOKEN"] {
        env.set_env(var, "test-value");
    }
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "kdl") {
            continue;
        }
        n += 1;
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .to_string();
        let out = env.run_in(&root(), &["validate", "-f", &rel]);
        assert_eq!(out.code, 0, "{rel}:\n{}", out.combined());
        assert!(
            !out.stderr.contains('×'),
            "{rel} has errors:\n{}",
            out.stderr
        );
        assert!(out.stdout.contains("is valid"), "{rel}: {}", out.stdout);
    }
    assert!(n >= 6, "at least six examples, found {n}");
}
