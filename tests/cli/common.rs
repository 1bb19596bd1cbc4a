//! The test environment: a temporary directory, the real runnerform binary, and output
//! normalised for snapshots (temporary paths replaced, no colour, fixed width).

use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_runnerform");

/// The package root, where `tests/`, `examples/` and `schemas/` live.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct TestEnvironment {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout then stderr, as a person reading the terminal would see them.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl TestEnvironment {
    pub fn new() -> Self {
        TestEnvironment {
            dir: tempfile::tempdir().expect("temp dir"),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Runs runnerform in the environment's directory.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_in(self.path(), args)
    }

    /// Runs runnerform with a clean environment: only what the test set, no colour, width 100.
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(cwd)
            .env_clear()
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("HOME", self.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run runnerform");
        let tmp = self.path().to_string_lossy().to_string();
        let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&tmp, "$TMP");
        let out = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: clean(&out.stdout),
            stderr: clean(&out.stderr),
        };
        // Every scenario of the suite is checked: no token may ever reach the terminal.
        if let Some(token) = unmasked_token(&out.combined()) {
            panic!(
                "runnerform {args:?} printed a token ({token}…):\n{}",
                out.combined()
            );
        }
        out
    }
}

/// The start of the first token in `text` that is not masked, if any.
pub fn unmasked_token(text: &str) -> Option<String> {
    for prefix in runnerform::secrets::TOKEN_PREFIXES {
        for (i, _) in text.match_indices(prefix) {
            let boundary = text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            let next = text[i + prefix.len()..].chars().next();
            if boundary && next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Some(text[i..(i + prefix.len() + 2).min(text.len())].to_string());
            }
        }
    }
    None
}
