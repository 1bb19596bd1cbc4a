//! Fleets: one file for several hosts. Everything outside `host` blocks applies to every
//! host; a `host "NAME"` block adds that host's runners, overrides its config.toml path
//! and global keys, and may replace the shared `service` node. Each host sees the shared part plus its own block, and nothing of the
//! others.

use super::Runner;
use super::decode::Decoded;
use super::{Spanned, suggest_name};
use crate::diag::{Problem, Sources};

/// Which host's view to read.
#[derive(Debug, Clone, Copy)]
pub enum HostChoice<'a> {
    /// Every host in turn (`validate` without `--host`).
    All,
    One(&'a str),
}

/// The shared part of `d` with `host`'s block laid over it.
pub(super) fn select(d: &Decoded, host: &str) -> Decoded {
    let mut view = d.clone();
    view.hosts.clear();
    if let Some(h) = d.hosts.iter().find(|h| h.name.value == host) {
        if let Some(c) = &h.config {
            if c.path.is_some() {
                view.config.path.clone_from(&c.path);
            }
            view.config.globals.merge_from(&c.globals);
            view.config.loc = view.config.loc.or(c.loc);
        }
        if h.service.is_some() {
            view.service.clone_from(&h.service);
        }
        view.runners.extend(h.runners.iter().cloned());
    }
    view
}

/// The same runner on several hosts is several GitLab runners; their descriptions say which
/// host each is on, unless one is declared.
pub(super) fn describe(runners: &mut [Runner], host: &str) {
    for r in runners {
        if r.body.description.is_none() {
            r.body.description = Some(Spanned::new(
                format!("{} on {host}", r.name.value),
                r.name.loc,
            ));
        }
    }
}

/// A host that the file does not name: applying only the shared part there would be a
/// guess, and could delete what another block declares for it under a misspelt name.
pub(super) fn unknown(sources: &Sources, d: &Decoded, host: &str) -> Problem {
    let names: Vec<&str> = d.hosts.iter().map(|h| h.name.value.as_str()).collect();
    let hint = match suggest_name(host, &names) {
        Some(s) => format!("did you mean `{s}`? "),
        None => String::new(),
    };
    let first = &d.hosts[0];
    Problem::error(
        "unknown_host",
        format!("this file declares no host `{host}`"),
    )
    .at(sources, first.name.loc, "hosts are declared from here")
    .help(format!(
        "{hint}declared hosts: {}. Pass --host NAME (or set RUNNERFORM_HOST); without it the \
         machine's hostname is used",
        names.join(", ")
    ))
}
