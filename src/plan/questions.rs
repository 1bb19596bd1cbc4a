//! What a plan needs to ask GitLab. Only `GET` requests, unless `--verify-tokens` asks for
//! token checks (each `POST /runners/verify` makes GitLab record a runner manager). Runners
//! registered with another GitLab than the declared one are never asked about: their ids mean
//! something else there.

use std::collections::HashSet;

use super::make::same_url;
use super::matcher;
use crate::desired::{Desired, Scope, Target};
use crate::local::LocalView;
use crate::local::expand::Environment;
use crate::local::state::State;
use crate::remote::Questions;

pub fn questions(
    d: &Desired,
    local: &LocalView,
    state: &State,
    env: &Environment,
    verify_tokens: bool,
) -> Questions {
    let mut q = Questions::default();
    for r in &d.runners {
        match r.body.scope.as_ref().map(|s| &s.value) {
            Some(Scope::Group(Target::Path(p))) => q.namespaces.push(("groups".into(), p.clone())),
            Some(Scope::Project(Target::Path(p))) => {
                q.namespaces.push(("projects".into(), p.clone()))
            }
            _ => {}
        }
    }
    q.namespaces.sort();
    q.namespaces.dedup();
    let url = d.gitlab.as_ref().map_or("", |g| g.url.value.as_str());
    let here = |u: &str| {
        let u = env.expand(u);
        u.is_empty() || same_url(&u, url)
    };
    let mut names: HashSet<&str> = HashSet::new();
    for r in &d.runners {
        names.insert(&r.name.value);
        if let Some(o) = &r.body.renamed_from {
            names.insert(&o.value);
        }
    }
    names.extend(state.runners.iter().map(|m| m.name.as_str()));
    for e in matcher::entries(local, env) {
        if !names.contains(e.name.as_str()) || !here(&e.url) {
            continue;
        }
        if e.id > 0 {
            q.runner_ids.push(e.id);
            if verify_tokens && !e.token.is_empty() && !e.token_unseen {
                q.check_tokens.push((e.id, e.token));
            }
        } else if verify_tokens && !e.token.is_empty() && !e.token_unseen {
            q.tokens.push(e.token);
        }
    }
    q.runner_ids.extend(
        state
            .runners
            .iter()
            .chain(&state.pending_deletes)
            .filter(|m| here(&m.url))
            .map(|m| m.id),
    );
    q.intents = state
        .pending_creates
        .iter()
        .filter(|i| here(&i.url))
        .cloned()
        .collect();
    q
}
