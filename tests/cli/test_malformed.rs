//! The corpus of malformed files in tests/malformed: each must fail validation with exit 1 and
//! a full diagnostic (file:line:column, a label, a hint), snapshotted as the user sees it.

use crate::common::{TestEnvironment, root};

#[test]
fn every_malformed_file_is_rejected_with_a_located_diagnostic() {
    let mut env = TestEnvironment::new();
    env.set_env("GITLAB_TOKEN", "test-value");
    let mut count = 0;
    insta::glob!("../malformed", "*.kdl", |path| {
        count += 1;
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .to_string();
        let out = env.run_in(&root(), &["validate", "-f", &rel]);
        assert_eq!(
            out.code,
            1,
            "{rel} must fail validation:\n{}",
            out.combined()
        );
        assert!(out.stdout.is_empty(), "{rel}: nothing on stdout on failure");
        let located = format!("[{rel}:");
        let in_include = out.stderr.contains("[tests/malformed/inc/");
        assert!(
            out.stderr.contains(&located) || in_include || out.stderr.contains("include"),
            "{rel}: no file:line:column in\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("help:"),
            "{rel}: no hint in\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("× "),
            "{rel}: no error in\n{}",
            out.stderr
        );
        insta::assert_snapshot!(out.stderr);
    });
    assert!(
        count >= 30,
        "the corpus has {count} files; it must have at least 30"
    );
}
