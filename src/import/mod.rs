//! `runnerform import`: a KDL file that describes an existing config.toml.
//!
//! The file is written so that planning it against the same host adopts every runner and
//! changes nothing: every key keeps its value, runners keep their config.toml names, and
//! settings that every runner repeats are written once in `defaults`. Tokens and other
//! secrets are never copied: each becomes a reference to an env var whose name the file
//! lists at the top. What cannot be expressed is said in a comment where it would have been.
//!
//! Building the text is pure; asking GitLab for each runner's scope is the caller's business
//! ([`Survey::questions`] says what to ask).

mod factor;
pub mod names;
pub mod service;

use std::collections::HashMap;
use std::fmt::Write;

use toml_edit::{DocumentMut, Item, Table};

use crate::desired::AccessLevel;
use crate::desired::render::env_reference;
use crate::desired::render::{RUNNER_IDENTITY_KEYS, quote, table_body_referencing};
use crate::keys::inventory;
use crate::remote::{RemoteRunner, RemoteState, RemoteView};
use names::{EnvNames, env_part};

/// One `[[runners]]` entry, as the import sees it.
pub struct Found {
    /// The name the runner gets in KDL: its config.toml name, or `runner-N` for an entry
    /// that has none.
    pub name: String,
    /// The entry has no `name`: the first apply writes one.
    pub unnamed: bool,
    pub id: i64,
    token: String,
    /// Why the entry is not imported (a comment says so), if it is not.
    pub skipped: Option<String>,
    table: Table,
}

/// What config.toml holds, decided before anything is written.
pub struct Survey {
    /// The GitLab instance most entries are registered with, without a trailing `/` or `/ci`.
    pub url: Option<String>,
    /// Why the URL is a placeholder, when it is one.
    url_note: Option<String>,
    pub entries: Vec<Found>,
    /// The whole document, for its global keys.
    root: Table,
}

impl Survey {
    /// What to ask GitLab: the ids of the imported runners, and the tokens of those whose
    /// entry records no id (gitlab-runner before 16.x did not).
    pub fn questions(&self) -> (Vec<i64>, Vec<String>) {
        let imported = self.entries.iter().filter(|e| e.skipped.is_none());
        let ids = imported
            .clone()
            .filter(|e| e.id > 0)
            .map(|e| e.id)
            .collect();
        let tokens = imported
            .filter(|e| e.id <= 0)
            .map(Found::token_value)
            .filter(|t| !t.is_empty())
            .collect();
        (ids, tokens)
    }
}

impl Found {
    /// The token as gitlab-runner reads it: `$VAR` expanded.
    fn token_value(&self) -> String {
        crate::local::expand::Environment::from_process().expand(&self.token)
    }
}

/// What GitLab said of the imported runners, or why it was not asked.
pub enum Answers {
    NotAsked(String),
    Asked(RemoteView),
}

pub struct Options<'a> {
    /// config.toml as the `config` node names it.
    pub config_path: &'a str,
    /// The env var that holds the GitLab access token, named in the `gitlab` node.
    pub gitlab_token_env: &'a str,
    /// The `service` node describing the installed gitlab-runner service, if one was found.
    pub service: Option<&'a str>,
}

pub struct Imported {
    pub kdl: String,
    /// Env vars the file refers to, with what each must hold.
    pub env: Vec<(String, String)>,
    /// Runners that were not imported, and why.
    pub skipped: Vec<(String, String)>,
}

/// What import writes when config.toml names no GitLab. `example.com` is reserved (RFC 2606):
/// no GitLab is ever served there, so the planner knows it for a placeholder
/// ([`is_placeholder_url`]) and never writes it into an entry.
pub const PLACEHOLDER_URL: &str = "https://gitlab.example.com";

/// Whether `url` is on a domain reserved for examples, which can hold no GitLab: such a URL
/// was never declared by anyone who runs runners on it, so it is never written into
/// config.toml.
pub fn is_placeholder_url(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', ':', '?', '#'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    host == "example.com"
        || host.ends_with(".example.com")
        || host.ends_with(".example")
        || host.ends_with(".invalid")
}

fn base_url(url: &str) -> String {
    let u = url.trim_end_matches('/');
    u.strip_suffix("/ci").unwrap_or(u).to_string()
}

pub fn survey(doc: &DocumentMut) -> Survey {
    crate::local::remember_secrets(doc.as_table());
    let tables: Vec<&Table> = doc
        .get("runners")
        .and_then(Item::as_array_of_tables)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let text = |t: &Table, k: &str| {
        t.get(k)
            .and_then(Item::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let expanded: Vec<String> = tables
        .iter()
        .map(|t| {
            base_url(&crate::local::expand::Environment::from_process().expand(&text(t, "url")))
        })
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for u in expanded.iter().filter(|u| !u.is_empty()) {
        *counts.entry(u.as_str()).or_default() += 1;
    }
    let url = expanded
        .iter()
        .filter(|u| !u.is_empty())
        .max_by_key(|u| (counts[u.as_str()], std::cmp::Reverse(u.as_str())))
        .cloned();
    let url_note = match (&url, tables.iter().find(|t| text(t, "url").contains('$'))) {
        (Some(_), _) => None,
        (None, Some(t)) => Some(format!(
            "config.toml takes the GitLab URL from {}, which is not set here: write the URL \
             of your GitLab instead of this placeholder",
            text(t, "url")
        )),
        (None, None) if !tables.is_empty() => Some(
            "config.toml names no GitLab URL: write the URL of your GitLab instead of this \
             placeholder (runnerform never writes this placeholder into config.toml)"
                .to_string(),
        ),
        (None, None) => None,
    };
    let mut entries: Vec<Found> = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let raw = text(t, "name");
        let unnamed = raw.is_empty();
        let mut name = if unnamed {
            format!("runner-{}", i + 1)
        } else {
            raw.clone()
        };
        let taken = |n: &str, entries: &[Found]| {
            entries.iter().any(|e| e.name == n)
                || tables
                    .iter()
                    .any(|t| t.get("name").and_then(Item::as_str) == Some(n))
        };
        if unnamed {
            let mut k = i + 1;
            while taken(&name, &entries) {
                k += 1;
                name = format!("runner-{k}");
            }
        }
        let mut skipped = None;
        if !unnamed && entries.iter().any(|e| e.name == raw) {
            skipped = Some(format!(
                "config.toml has another entry named `{raw}` (gitlab-runner register appends \
                 one on every run); runnerform cannot tell them apart: remove the duplicate \
                 from config.toml and import again"
            ));
        } else if let Some(u) = &url
            && !expanded[i].is_empty()
            && expanded[i] != *u
        {
            skipped = Some(format!(
                "runner `{name}` is registered with {}, not {u}: a file declares one GitLab, \
                 so it is left out (runnerform leaves its entry alone)",
                expanded[i]
            ));
        }
        entries.push(Found {
            name,
            unnamed,
            id: t.get("id").and_then(Item::as_integer).unwrap_or(0),
            token: text(t, "token"),
            skipped,
            table: (*t).clone(),
        });
    }
    Survey {
        url,
        url_note,
        entries,
        root: doc.as_table().clone(),
    }
}

/// GitLab's side of a runner as KDL lines (without indentation), in the order they are
/// written, keyed by node name so that lines every runner shares can go to `defaults`.
fn gitlab_lines(rr: &RemoteRunner) -> (Vec<(&'static str, String)>, Vec<String>) {
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    match (rr.runner_type.as_str(), rr.owners.first()) {
        ("instance_type", _) => lines.push(("scope", "instance".to_string())),
        ("group_type", Some(id)) => lines.push(("scope", format!("group {id}"))),
        ("project_type", Some(id)) => lines.push(("scope", format!("project {id}"))),
        (kind, _) => notes.push(format!(
            "GitLab scope unknown: runner {} is a {kind} runner whose owner this access token \
             cannot see",
            rr.id
        )),
    }
    lines.push((
        "description",
        format!("description {}", quote(&rr.description)),
    ));
    if !rr.tags.is_empty() {
        let tags: Vec<String> = rr.tags.iter().map(|t| quote(t)).collect();
        lines.push(("tags", format!("tags {}", tags.join(" "))));
    }
    lines.push(("run_untagged", format!("run_untagged #{}", rr.run_untagged)));
    lines.push(("paused", format!("paused #{}", rr.paused)));
    lines.push(("locked", format!("locked #{}", rr.locked)));
    if AccessLevel::parse(&rr.access_level).is_some() {
        lines.push((
            "access_level",
            format!("access_level {}", quote(&rr.access_level)),
        ));
    }
    match rr.maximum_timeout {
        Some(t) if t >= 600 => lines.push(("maximum_timeout", format!("maximum_timeout {t}"))),
        Some(t) => notes.push(format!(
            "GitLab's maximum_timeout of {t} seconds is below the 600 that can be declared; \
             left out"
        )),
        None => {}
    }
    if !rr.maintenance_note.is_empty() {
        lines.push((
            "maintenance_note",
            format!("maintenance_note {}", quote(&rr.maintenance_note)),
        ));
    }
    (lines, notes)
}

/// One imported runner before it is written.
struct Draft<'a> {
    found: &'a Found,
    notes: Vec<String>,
    gitlab: Vec<(&'static str, String)>,
    settings: Table,
}

pub fn render(survey: &Survey, opts: &Options, answers: &Answers) -> Imported {
    let inv = inventory();
    let mut env = EnvNames::default();
    let mut out = String::new();
    let mut skipped = Vec::new();

    let mut drafts: Vec<Draft> = Vec::new();
    for f in &survey.entries {
        if let Some(why) = &f.skipped {
            skipped.push((f.name.clone(), why.clone()));
            continue;
        }
        let mut notes = Vec::new();
        let mut gitlab = Vec::new();
        match answers {
            Answers::NotAsked(why) => notes.push(format!("GitLab scope unknown: {why}")),
            Answers::Asked(view) => {
                let id = if f.id > 0 {
                    Ok(f.id)
                } else {
                    match view.verified.get(&f.token_value()) {
                        Some(Ok(id)) => Ok(*id),
                        Some(Err((status, message))) => Err(format!(
                            "GitLab rejects this runner's token ({status}: {message}): the first \
                             online plan registers a new one"
                        )),
                        None => Err("GitLab scope unknown: config.toml has neither an id nor a \
                                     usable token for this runner"
                            .to_string()),
                    }
                };
                match id.map(|id| (id, view.runner(id))) {
                    Err(note) => notes.push(note),
                    Ok((_, Some(RemoteState::Exists(rr)))) => {
                        let (lines, more) = gitlab_lines(rr);
                        gitlab = lines;
                        notes.extend(more);
                    }
                    Ok((id, Some(RemoteState::Gone { status, message }))) => notes.push(format!(
                        "GitLab answered {status} for runner {id} ({message}): the first \
                             online plan registers a new one"
                    )),
                    Ok((id, None)) => notes.push(format!("GitLab said nothing of runner {id}")),
                }
            }
        }
        let mut settings = f.table.clone();
        for k in RUNNER_IDENTITY_KEYS {
            settings.remove(k);
        }
        if settings.get("executor").is_none() {
            notes.push(
                "config.toml names no executor for this runner, and gitlab-runner needs one: \
                 add executor \"…\""
                    .to_string(),
            );
        }
        drafts.push(Draft {
            found: f,
            notes,
            gitlab,
            settings,
        });
    }

    let tables: Vec<Table> = drafts.iter().map(|d| d.settings.clone()).collect();
    let factored = factor::factor(&tables, inv.runner());
    for (d, own) in drafts.iter_mut().zip(factored.own) {
        d.settings = own;
    }
    let shared_gitlab = shared_lines(&mut drafts);

    // The body of the file first: the env vars it names are listed above it.
    let mut body = String::new();
    let url = survey.url.as_deref().unwrap_or(PLACEHOLDER_URL);
    if !drafts.is_empty() || survey.url.is_some() {
        if let Some(note) = &survey.url_note {
            body.push_str(&comment(0, note));
        }
        let _ = writeln!(
            body,
            "gitlab {} {{\n    token env={}\n}}\n",
            quote(url),
            quote(opts.gitlab_token_env)
        );
    }
    let mut globals = String::new();
    let mut namer = |key: &crate::keys::Key, value: &str| {
        env.name(
            &format!("GITLAB_RUNNER_{}", env_part(&key.path)),
            value,
            format!("`{}` of config.toml", key.path),
        )
    };
    table_body_referencing(
        &survey.root,
        &inv.root,
        1,
        &["runners"],
        &mut globals,
        &mut namer,
    );
    let _ = writeln!(body, "config {} {{\n{globals}}}", quote(opts.config_path));
    if let Some(service) = opts.service {
        body.push('\n');
        body.push_str(service);
    }

    if !factored.common.is_empty() || !shared_gitlab.is_empty() {
        let _ = writeln!(
            body,
            "\n// What every runner below shares; a runner's own value overrides it."
        );
        let _ = writeln!(body, "defaults {{");
        for line in &shared_gitlab {
            let _ = writeln!(body, "    {line}");
        }
        let mut namer = |key: &crate::keys::Key, value: &str| {
            let path = key.path.strip_prefix("runners.").unwrap_or(&key.path);
            env.name(
                &format!("RUNNERS_{}", env_part(path)),
                value,
                format!("`{path}` shared by the runners"),
            )
        };
        table_body_referencing(
            &factored.common,
            inv.runner(),
            1,
            &[],
            &mut body,
            &mut namer,
        );
        let _ = writeln!(body, "}}");
    }

    for d in &drafts {
        let f = d.found;
        let _ = writeln!(body, "\nrunner {} {{", quote(&f.name));
        for note in &d.notes {
            body.push_str(&comment(1, note));
        }
        if f.unnamed {
            body.push_str(&comment(
                1,
                &format!(
                    "config.toml's entry has no name: the first apply names it {}",
                    quote(&f.name)
                ),
            ));
            let _ = writeln!(body, "    renamed_from \"\"");
        }
        for (_, line) in &d.gitlab {
            let _ = writeln!(body, "    {line}");
        }
        let var = match env_reference(&f.token) {
            // gitlab-runner already reads this token from the environment: the same variable.
            Some(var) => env.name(var, var, format!("the token of runner `{}`", f.name)),
            None => env.name(
                &format!("RUNNER_TOKEN_{}", env_part(&f.name)),
                if f.token.is_empty() {
                    &f.name
                } else {
                    &f.token
                },
                format!("the token of runner `{}`", f.name),
            ),
        };
        if f.token.is_empty() {
            body.push_str(&comment(
                1,
                &format!(
                    "config.toml has no token for this runner: it was never registered. Set \
                     {var} to adopt an existing runner, or replace this line with its scope \
                     (instance, group or project) to register one"
                ),
            ));
        }
        let _ = writeln!(
            body,
            "    token env={}    // needed only where config.toml lacks this entry",
            quote(&var)
        );
        let name = f.name.clone();
        let mut namer = |key: &crate::keys::Key, value: &str| {
            let path = key.path.strip_prefix("runners.").unwrap_or(&key.path);
            env.name(
                &format!("RUNNER_{}_{}", env_part(&name), env_part(path)),
                value,
                format!("`{path}` of runner `{name}`"),
            )
        };
        table_body_referencing(&d.settings, inv.runner(), 1, &[], &mut body, &mut namer);
        let _ = writeln!(body, "}}");
    }
    for (name, why) in &skipped {
        body.push('\n');
        body.push_str(&comment(0, &format!("Not imported: `{name}`. {why}")));
    }

    let _ = writeln!(
        out,
        "// Imported by runnerform {} from {}.",
        env!("CARGO_PKG_VERSION"),
        opts.config_path
    );
    let _ = writeln!(
        out,
        "// Planned against that host, every runner is adopted as it is: nothing is \
         registered,\n// and no key of config.toml changes."
    );
    if !env.listed.is_empty() {
        let _ = writeln!(
            out,
            "// Secrets are never copied here. This file reads them from these env vars:"
        );
        for (var, what) in &env.listed {
            let _ = writeln!(out, "//   {var}: {what}");
        }
        let _ = writeln!(
            out,
            "// Runner tokens are needed only on a host whose config.toml lacks the runner."
        );
    }
    out.push('\n');
    out.push_str(&body);
    Imported {
        kdl: out,
        env: env.listed,
        skipped,
    }
}

/// A KDL comment at `depth`, wrapped to stay readable beside the code.
fn comment(depth: usize, text: &str) -> String {
    let pad = "    ".repeat(depth);
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && pad.len() + 3 + line.len() + 1 + word.len() > 96 {
            let _ = writeln!(out, "{pad}// {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "{pad}// {line}");
    out
}

/// GitLab lines that every runner has with the same most common value move to `defaults`;
/// runners with another value keep theirs.
fn shared_lines(drafts: &mut [Draft]) -> Vec<String> {
    let mut shared = Vec::new();
    if drafts.len() < 2 {
        return shared;
    }
    let keys: Vec<&'static str> = drafts[0].gitlab.iter().map(|(k, _)| *k).collect();
    for key in keys {
        let values: Option<Vec<String>> = drafts
            .iter()
            .map(|d| {
                d.gitlab
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
            })
            .collect();
        let Some(values) = values else { continue };
        let best = values
            .iter()
            .max_by_key(|v| {
                let n = values.iter().filter(|x| x == v).count();
                let first = values.iter().position(|x| x == *v).unwrap_or(0);
                (n, std::cmp::Reverse(first))
            })
            .expect("at least two runners")
            .clone();
        if values.iter().filter(|v| **v == best).count() < 2 {
            continue;
        }
        for d in drafts.iter_mut() {
            d.gitlab.retain(|(k, v)| !(*k == key && *v == best));
        }
        shared.push(best);
    }
    shared
}

/// Whether any part of `text` is a GitLab token: the last check before a file is written.
pub fn leaks_token(text: &str) -> bool {
    crate::secrets::mask(text) != text
}
