//! Checks over the desired state as a whole, after layering and replicas.

use std::collections::HashMap;

use super::{Desired, RefCheck, Runner, SecretRef, SecretSource, Table, Value};
use crate::diag::{Problem, Problems};

/// Executors that run jobs in a container image, for which gitlab-runner's `register`
/// insists on a default image.
const IMAGE_EXECUTORS: &[&str] = &[
    "docker",
    "docker-windows",
    "docker+machine",
    "docker-autoscaler",
];

pub(super) fn check(d: &Desired, refs: RefCheck, problems: &mut Problems) {
    let s = &d.sources;
    let mut by_name: HashMap<&str, &Runner> = HashMap::new();
    for r in &d.runners {
        if let Some(first) = by_name.get(r.name.value.as_str()) {
            let how = if r.replica.is_some() || first.replica.is_some() {
                " (after count= expansion)"
            } else {
                ""
            };
            problems.push(
                Problem::error(
                    "duplicate_runner",
                    format!("runner `{}` is declared twice{how}", r.name.value),
                )
                .at(s, r.name.loc, "declared again here")
                .help(format!(
                    "first declared at {}; runner names are the `name` of their config.toml \
                     entry and must be unique",
                    s.position(first.name.loc)
                )),
            );
            continue;
        }
        by_name.insert(&r.name.value, r);
    }
    for r in &d.runners {
        check_runner(d, r, &by_name, problems);
    }
    if d.gitlab.is_none()
        && let Some(first) = d.runners.first()
    {
        problems.push(
            Problem::error("no_gitlab", "runners are declared but no GitLab instance")
                .at(s, first.name.loc, "needs a GitLab URL")
                .help("add: gitlab \"https://gitlab.example.com\" { token env=\"GITLAB_TOKEN\" }"),
        );
    }
    let mut secrets: Vec<&SecretRef> = Vec::new();
    if refs != RefCheck::Settings {
        if let Some(g) = &d.gitlab {
            secrets.extend(&g.token);
        }
        // A runner's own token is read only when config.toml lacks its entry (planning
        // resolves it then, with this same location); an imported runner whose entry is
        // there needs nothing set.
        if refs == RefCheck::Warn {
            secrets.extend(d.runners.iter().filter_map(|r| r.body.token.as_ref()));
        }
        secrets.extend(
            d.runners
                .iter()
                .filter_map(|r| r.body.registration_token.as_ref()),
        );
    }
    let credentials = secrets.len();
    collect_secrets(&d.config.globals, &mut secrets);
    for r in &d.runners {
        collect_secrets(&r.body.settings, &mut secrets);
    }
    let mut reported: Vec<&SecretRef> = Vec::new();
    for (i, secret) in secrets.into_iter().enumerate() {
        if reported.contains(&secret) {
            continue;
        }
        reported.push(secret);
        // A setting's secret that does not resolve is no reason to stop: an entry that
        // config.toml already has keeps the value it holds (an imported file plans before
        // anything is exported). Planning refuses a new entry that needs it.
        let refs = if i >= credentials {
            RefCheck::Warn
        } else {
            refs
        };
        check_reference(d, secret, refs, problems);
    }
}

fn check_runner(
    d: &Desired,
    r: &Runner,
    by_name: &HashMap<&str, &Runner>,
    problems: &mut Problems,
) {
    let s = &d.sources;
    let b = &r.body;
    let executor = b.settings.get("executor").and_then(|e| e.value.as_str());
    match executor {
        None => problems.push(
            Problem::error(
                "no_executor",
                format!("runner `{}` has no executor", r.name.value),
            )
            .at(s, r.name.loc, "no executor")
            .help("add executor \"docker\" (or shell, kubernetes, …) to the runner, a template or defaults"),
        ),
        Some(e) if IMAGE_EXECUTORS.contains(&e) => {
            // After an error in the runner's own keys the image may just have been rejected.
            if b.settings.lookup("docker.image").is_none() && !problems.has_errors() {
                problems.push(
                    Problem::warning(
                        "no_image",
                        format!("runner `{}` uses the {e} executor without a default image", r.name.value),
                    )
                    .at(s, r.name.loc, "no docker.image")
                    .help("jobs that do not name an image will fail: add docker { image \"alpine:3\" }"),
                );
            }
        }
        Some(_) => {}
    }
    // A rejected token or scope node was already reported; "no scope" would only repeat it.
    if b.scope.is_none()
        && b.token.is_none()
        && b.registration_token.is_none()
        && !problems.has_errors()
    {
        problems.push(
            Problem::error(
                "no_scope",
                format!("runner `{}` has no scope", r.name.value),
            )
            .at(s, r.name.loc, "instance, group or project?")
            .help("say who owns it: instance, group \"PATH\" or project \"PATH\" (or adopt it with token env=\"VAR\")"),
        );
    }
    if let Some(ru) = &b.run_untagged
        && !ru.value
        && b.tags.as_ref().is_none_or(|t| t.value.is_empty())
    {
        problems.push(
            Problem::error(
                "untagged_without_tags",
                format!(
                    "runner `{}` takes no untagged jobs and has no tags, so it can never run a job",
                    r.name.value
                ),
            )
            .at(s, ru.loc, "run_untagged is #false")
            .help("add tags \"…\", or set run_untagged #true"),
        );
    }
    if let Some(old) = &b.renamed_from {
        if old.value == r.name.value {
            problems.push(
                Problem::error("bad_rename", "a runner cannot be renamed from its own name")
                    .at(s, old.loc, "same as the runner's name")
                    .help("remove renamed_from once the rename has been applied"),
            );
        } else if by_name.contains_key(old.value.as_str()) {
            problems.push(
                Problem::error(
                    "bad_rename",
                    format!(
                        "`{}` is still declared, so nothing was renamed from it",
                        old.value
                    ),
                )
                .at(s, old.loc, "still a declared runner")
                .help("remove the old runner's node, or drop renamed_from"),
            );
        }
    }
}

pub(crate) fn collect_secrets<'a>(t: &'a Table, out: &mut Vec<&'a SecretRef>) {
    for e in &t.entries {
        collect_value(&e.value, out);
    }
}

fn collect_value<'a>(v: &'a Value, out: &mut Vec<&'a SecretRef>) {
    match v {
        Value::Secret(r) => out.push(r),
        Value::Table(t) => collect_secrets(t, out),
        Value::TableArray(ts) => ts.iter().for_each(|t| collect_secrets(t, out)),
        Value::Array(vs) => vs.iter().for_each(|v| collect_value(v, out)),
        _ => {}
    }
}

fn check_reference(d: &Desired, r: &SecretRef, refs: RefCheck, problems: &mut Problems) {
    let missing = match &r.source {
        SecretSource::Env(name) => match std::env::var_os(name) {
            Some(v) if !v.is_empty() => None,
            Some(_) => Some((
                format!("environment variable {name} is empty"),
                format!("export {name} with the secret before running runnerform"),
            )),
            None => Some((
                format!("environment variable {name} is not set"),
                format!("export {name} with the secret before running runnerform"),
            )),
        },
        SecretSource::File(path) => {
            let path = resolve_file(d, r, path);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => None,
                _ => Some((
                    format!("secret file {} does not exist", path.display()),
                    "create the file with the secret (mode 0600), or fix the path".to_string(),
                )),
            }
        }
    };
    let Some((message, help)) = missing else {
        return;
    };
    let p = match refs {
        RefCheck::Warn => Problem::warning("missing_secret", message),
        RefCheck::Require | RefCheck::Settings => Problem::error("missing_secret", message),
    };
    problems.push(p.at(&d.sources, r.loc, "referenced here").help(help));
}

/// Relative secret file paths are relative to the KDL file that names them.
pub fn resolve_file(d: &Desired, r: &SecretRef, path: &std::path::Path) -> std::path::PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let file = &d.sources.get(r.loc.file).path;
    file.parent().unwrap_or(std::path::Path::new("")).join(path)
}
