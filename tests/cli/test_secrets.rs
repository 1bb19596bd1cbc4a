//! No token ever reaches the terminal, even when a user pasted one into the file.

use crate::common::{TestEnvironment, root};

const TOKENS: &[&str] = &[
    "glrt-t1_s3cr3tS3cr3tS3cr3tS3c",
    "glpat-AbCdEfGhIjKlMnOpQrSt",
    "GR1348941xYzSecretRegistration",
];

#[test]
fn tokens_written_inline_are_masked_in_diagnostics() {
    let env = TestEnvironment::new();
    for (i, token) in TOKENS.iter().enumerate() {
        let file = format!("f{i}.kdl");
        env.write(
            &file,
            &format!(
                "gitlab \"https://gitlab.example.com\" {{\n    token \"{token}\"\n}}\nrunner \"r\" {{\n    token \"{token}\"\n    executor \"shell\"\n    environment \"X={token}\"\n    pre_build_script \"{token}\"\n}}\n"
            ),
        );
        let out = env.run(&["validate", "-f", &file]);
        assert_eq!(out.code, 1);
        let secret_part = &token[token.len() - 10..];
        assert!(
            !out.combined().contains(secret_part),
            "token leaked:\n{}",
            out.combined()
        );
        assert!(out.stderr.contains("inline"), "{}", out.stderr);
    }
}

/// Scans every snapshot the suite keeps for anything that looks like a real token. (Every
/// output of every scenario is also checked as it is produced: see `common::run_in`.)
#[test]
fn no_snapshot_holds_a_token() {
    let dir = root().join("tests/cli/snapshots");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if let Some(token) = crate::common::unmasked_token(&text) {
            panic!("{} holds an unmasked token ({token}…)", path.display());
        }
    }
}

#[test]
fn the_output_check_finds_unmasked_tokens_only() {
    use crate::common::unmasked_token;
    assert!(unmasked_token("token = \"glrt-t1_abc\"").is_some());
    assert!(unmasked_token("x GR1348941abc").is_some());
    assert!(unmasked_token("token = \"glrt-*****\"").is_none());
    assert!(unmasked_token("a token (`glrt-…`)").is_none());
    assert!(unmasked_token("xglpat-abc").is_none());
}
