//! Terraform's single-dash flags, answered before clap sees them.
//!
//! People who run `terraform plan -out F` type `runnerform plan -out F`, and clap reads that as
//! the short flags `-o -u -t` and answers "unexpected argument '-o'". Flags with an exact
//! runnerform equivalent are accepted as aliases (`-out F` and `-out=F` are `--out F`);
//! Terraform flags with no equivalent are refused with a hint that names what runnerform does
//! instead. Anything else, and everything after `--` or in a value position, is left alone.

use std::ffi::OsString;

use crate::diag::Problem;

/// Terraform flags that mean the same thing here, and the runnerform flag they become.
const ALIASES: &[(&str, &str)] = &[
    ("out", "--out"),
    ("auto-approve", "--auto-approve"),
    ("target", "--target"),
    ("detailed-exitcode", "--detailed-exitcode"),
    ("json", "--json"),
    ("lock-timeout", "--lock-timeout"),
    ("no-color", "--no-color"),
    ("parallelism", "--concurrency"),
];

/// Terraform flags with no runnerform equivalent, and what to do instead.
const REFUSED: &[(&str, &str)] = &[
    (
        "var",
        "runnerform has no input variables: values are written in the KDL file, secrets are \
         read by reference (token env=\"GITLAB_TOKEN\" or file=\"...\"), and a fleet file \
         picks its host with --host NAME",
    ),
    (
        "var-file",
        "runnerform has no variable files: split shared settings into a file and `include` it \
         from the KDL file, or pick a fleet host with --host NAME",
    ),
    (
        "input",
        "runnerform never asks for input values; apply asks for confirmation on a terminal \
         only, and --yes skips it: drop -input",
    ),
    (
        "lock",
        "runnerform always takes its lock beside config.toml; --lock-timeout DURATION sets how \
         long it waits for another run",
    ),
    ("refresh", "to plan without asking GitLab, use --offline"),
    (
        "refresh-only",
        "`runnerform status` shows what GitLab says of each runner, and `plan \
         --detailed-exitcode` exits 2 on drift",
    ),
    (
        "chdir",
        "name the files instead: -f DIR/runners.kdl (relative paths in it are relative to it)",
    ),
    (
        "state",
        "runnerform keeps its record beside config.toml (runnerform-state.json): choose \
         config.toml with --config-toml PATH (or -c PATH)",
    ),
    (
        "destroy",
        "remove the runners from the KDL file and apply: runners runnerform manages and no \
         longer declared are deleted (on GitLab too)",
    ),
    (
        "replace",
        "runnerform replaces a runner when its scope or GitLab changes; to register one anew, \
         rename it in the KDL file",
    ),
];

/// The command line with Terraform aliases rewritten, or the problem with a flag that has no
/// equivalent. `takes_value` says which flags consume the next argument.
pub fn translate(
    args: Vec<OsString>,
    takes_value: &dyn Fn(&str) -> bool,
) -> Result<Vec<OsString>, Problem> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    // The program name.
    if let Some(first) = iter.next() {
        out.push(first);
    }
    let mut value_next = false;
    while let Some(arg) = iter.next() {
        if value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(iter);
            break;
        }
        let translated = single_dash(text)?;
        let flag = translated
            .as_deref()
            .unwrap_or(text)
            .split('=')
            .next()
            .unwrap_or_default();
        value_next = !translated.as_deref().unwrap_or(text).contains('=') && takes_value(flag);
        out.push(translated.map_or(arg, OsString::from));
    }
    Ok(out)
}

/// `-name` or `-name=value` in Terraform's spelling: its runnerform form, or a refusal.
fn single_dash(arg: &str) -> Result<Option<String>, Problem> {
    let Some(body) = arg.strip_prefix('-') else {
        return Ok(None);
    };
    if body.starts_with('-') || body.len() < 3 {
        return Ok(None);
    }
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    };
    if let Some((_, long)) = ALIASES.iter().find(|(tf, _)| *tf == name) {
        return Ok(Some(match value {
            Some(v) => format!("{long}={v}"),
            None => (*long).to_string(),
        }));
    }
    if let Some((_, hint)) = REFUSED.iter().find(|(tf, _)| *tf == name) {
        return Err(Problem::error(
            "terraform_flag",
            format!("`{arg}` is a Terraform flag that runnerform does not have"),
        )
        .help(*hint));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Vec<String>, Problem> {
        let takes = |f: &str| matches!(f, "-f" | "--out" | "--target" | "--lock-timeout");
        let args = std::iter::once("runnerform")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        translate(args, &takes).map(|v| v[1..].iter().map(|a| a.to_string_lossy().into()).collect())
    }

    #[test]
    fn terraform_spellings_become_runnerform_flags() {
        assert_eq!(
            run(&["plan", "-out", "p.json"]).unwrap(),
            ["plan", "--out", "p.json"]
        );
        assert_eq!(
            run(&["plan", "-out=p.json"]).unwrap(),
            ["plan", "--out=p.json"]
        );
        assert_eq!(
            run(&["apply", "-auto-approve", "-lock-timeout=5m"]).unwrap(),
            ["apply", "--auto-approve", "--lock-timeout=5m"]
        );
        assert_eq!(
            run(&["plan", "-parallelism=4", "-json", "-detailed-exitcode"]).unwrap(),
            ["plan", "--concurrency=4", "--json", "--detailed-exitcode"]
        );
    }

    #[test]
    fn values_short_flags_and_the_rest_are_left_alone() {
        assert_eq!(
            run(&["-f", "-json", "plan"]).unwrap(),
            ["-f", "-json", "plan"]
        );
        assert_eq!(
            run(&["-vv", "-q", "-f", "-"]).unwrap(),
            ["-vv", "-q", "-f", "-"]
        );
        assert_eq!(
            run(&["plan", "--", "-out"]).unwrap(),
            ["plan", "--", "-out"]
        );
        assert_eq!(
            run(&["plan", "-out", "-json"]).unwrap(),
            ["plan", "--out", "-json"]
        );
    }

    #[test]
    fn flags_without_an_equivalent_are_refused_with_a_hint() {
        let p = run(&["plan", "-var", "x=1"]).unwrap_err();
        assert!(p.message.contains("`-var`"), "{}", p.message);
        assert!(p.help.unwrap().contains("no input variables"));
        let p = run(&["plan", "-refresh=false"]).unwrap_err();
        assert!(p.help.unwrap().contains("--offline"));
    }
}
