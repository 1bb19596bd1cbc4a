//! Build facts for `runnerform --version`: the git commit this binary was built from, and the
//! gitlab-runner release the config.toml key inventory was taken from.
//!
//! A bug report that says "0.1.0" does not say which tree it came from; the commit does. A
//! source tarball has no `.git`, and `git` may be missing: then the commit reads "unknown"
//! and the build goes on.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RUNNERFORM_COMMIT={commit}");
    // A new commit moves HEAD or the branch it points to; either path is watched, as git
    // reports them (a worktree keeps HEAD apart from the shared refs).
    let mut watched = Vec::new();
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        watched.push(head);
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", &branch])
    {
        watched.push(path);
    }
    if let Some(packed) = git(&["rev-parse", "--git-path", "packed-refs"]) {
        watched.push(packed);
    }
    for p in watched.iter().filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={p}");
    }

    let tsv = "src/keys/config-keys.tsv";
    println!("cargo:rerun-if-changed={tsv}");
    println!("cargo:rerun-if-changed=build.rs");
    let header = std::fs::read_to_string(tsv)
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_default();
    println!(
        "cargo:rustc-env=RUNNERFORM_KEYS_FROM={}",
        inventory_source(&header)
    );
}

/// "gitlab-runner 19.4.0 dev, commit d79f3e7b89ab" from the inventory's first line, which
/// reads "... gitlabhq/gitlab-runner commit d79f3e7b...(40 hex) (19.4.0 dev). ...".
fn inventory_source(header: &str) -> String {
    let commit = header
        .split("gitlab-runner commit ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|c| c.chars().take(12).collect::<String>());
    let release = commit.as_ref().and_then(|_| {
        let after = header.split("gitlab-runner commit ").nth(1)?;
        let open = after.find('(')?;
        let close = after[open..].find(')')?;
        Some(after[open + 1..open + close].to_string())
    });
    match (release, commit) {
        (Some(r), Some(c)) => format!("gitlab-runner {r}, commit {c}"),
        (None, Some(c)) => format!("gitlab-runner commit {c}"),
        _ => "gitlab-runner (unknown release)".into(),
    }
}
