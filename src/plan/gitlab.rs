//! The GitLab side of a runner: declared attributes against GitLab's, and the request bodies
//! that make GitLab match.

use serde_json::{Value, json};

use super::{Change, Side};
use crate::desired::{Runner, Scope, Target};
use crate::local::edit::KeyChange;
use crate::remote::{RemoteRunner, RemoteView};

/// The description GitLab should show: declared, else the runner's name.
pub fn description(r: &Runner) -> String {
    r.body
        .description
        .as_ref()
        .map_or_else(|| r.name.value.clone(), |d| d.value.clone())
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn tag_list(tags: &[String]) -> String {
    let shown: Vec<String> = tags.iter().map(|t| quoted(t)).collect();
    format!("[{}]", shown.join(", "))
}

/// Differences between the declared attributes and GitLab's, for those declared.
pub fn attr_changes(r: &Runner, rr: &RemoteRunner) -> Vec<Change> {
    let b = &r.body;
    let mut out = Vec::new();
    let mut push = |path: &str, old: String, new: String| {
        out.push(Change {
            side: Side::Gitlab,
            key: KeyChange {
                path: path.into(),
                old: Some(old),
                new: Some(new),
            },
        })
    };
    let want = description(r);
    if rr.description != want {
        push("description", quoted(&rr.description), quoted(&want));
    }
    if let Some(tags) = &b.tags {
        let mut have = rr.tags.clone();
        let mut want = tags.value.clone();
        have.sort();
        want.sort();
        if have != want {
            push("tags", tag_list(&rr.tags), tag_list(&tags.value));
        }
    }
    for (name, declared, actual) in [
        ("run_untagged", &b.run_untagged, rr.run_untagged),
        ("paused", &b.paused, rr.paused),
        ("locked", &b.locked, rr.locked),
    ] {
        if let Some(d) = declared
            && d.value != actual
        {
            push(name, actual.to_string(), d.value.to_string());
        }
    }
    if let Some(a) = &b.access_level
        && a.value.as_str() != rr.access_level
    {
        push(
            "access_level",
            quoted(&rr.access_level),
            quoted(a.value.as_str()),
        );
    }
    if let Some(t) = &b.maximum_timeout
        && rr.maximum_timeout != Some(i64::from(t.value))
    {
        push(
            "maximum_timeout",
            rr.maximum_timeout.map_or("none".into(), |v| v.to_string()),
            t.value.to_string(),
        );
    }
    // A claim marker left by a registration whose apply stopped before clearing it is never
    // the declared note.
    let declared_note = b.maintenance_note.as_ref().map(|n| n.value.as_str());
    let want_note = declared_note.or_else(|| {
        rr.maintenance_note
            .starts_with(crate::plan::steps::MARKER_PREFIX)
            .then_some("")
    });
    if let Some(n) = want_note
        && n != rr.maintenance_note
    {
        push("maintenance_note", quoted(&rr.maintenance_note), quoted(n));
    }
    out
}

/// What a new runner gets on GitLab, as changes from nothing: its owner, the description
/// and every declared attribute.
pub fn declared_attributes(r: &Runner, view: Option<&RemoteView>) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |path: &str, new: String| {
        out.push(Change {
            side: Side::Gitlab,
            key: KeyChange {
                path: path.into(),
                old: None,
                new: Some(new),
            },
        })
    };
    if let Some(scope) = &r.body.scope {
        let id = match &scope.value {
            Scope::Instance => None,
            Scope::Group(t) => view.and_then(|v| target_id("groups", t, v)),
            Scope::Project(t) => view.and_then(|v| target_id("projects", t, v)),
        };
        push(
            "owner",
            match id {
                Some(id) if !matches!(scope.value, Scope::Instance) => {
                    format!("{} (id {id})", scope.value)
                }
                _ => scope.value.to_string(),
            },
        );
    }
    for (k, v) in attributes(r) {
        push(if k == "tag_list" { "tags" } else { &k }, v.to_string());
    }
    out
}

/// The attributes to send: everything declared, and the description.
pub fn attributes(r: &Runner) -> serde_json::Map<String, Value> {
    let b = &r.body;
    let mut m = serde_json::Map::new();
    m.insert("description".into(), description(r).into());
    if let Some(t) = &b.tags {
        m.insert("tag_list".into(), json!(t.value));
    }
    if let Some(v) = &b.run_untagged {
        m.insert("run_untagged".into(), v.value.into());
    }
    if let Some(v) = &b.paused {
        m.insert("paused".into(), v.value.into());
    }
    if let Some(v) = &b.locked {
        m.insert("locked".into(), v.value.into());
    }
    if let Some(v) = &b.access_level {
        m.insert("access_level".into(), v.value.as_str().into());
    }
    if let Some(v) = &b.maximum_timeout {
        m.insert("maximum_timeout".into(), v.value.into());
    }
    if let Some(v) = &b.maintenance_note {
        m.insert("maintenance_note".into(), v.value.clone().into());
    }
    m
}

/// The id of a declared group or project, from the refresh.
pub fn target_id(kind: &str, t: &Target, view: &RemoteView) -> Option<i64> {
    match t {
        Target::Id(id) => i64::try_from(*id).ok(),
        Target::Path(p) => view.namespace(kind, p),
    }
}

/// `POST /user/runners` body for a declared runner.
pub fn create_body(r: &Runner, view: &RemoteView) -> Option<Value> {
    let mut m = attributes(r);
    match &r.body.scope.as_ref()?.value {
        Scope::Instance => {
            m.insert("runner_type".into(), "instance_type".into());
        }
        Scope::Group(t) => {
            m.insert("runner_type".into(), "group_type".into());
            m.insert("group_id".into(), target_id("groups", t, view)?.into());
        }
        Scope::Project(t) => {
            m.insert("runner_type".into(), "project_type".into());
            m.insert("project_id".into(), target_id("projects", t, view)?.into());
        }
    }
    Some(Value::Object(m))
}

/// Whether GitLab's runner belongs where the declaration says. `None` when the declaration
/// says nothing (adopted by token).
pub fn scope_matches(r: &Runner, rr: &RemoteRunner, view: &RemoteView) -> Option<bool> {
    let scope = &r.body.scope.as_ref()?.value;
    Some(match scope {
        Scope::Instance => rr.runner_type == "instance_type",
        Scope::Group(t) => {
            rr.runner_type == "group_type"
                && target_id("groups", t, view).is_some_and(|id| rr.owners.contains(&id))
        }
        Scope::Project(t) => {
            rr.runner_type == "project_type"
                && target_id("projects", t, view).is_some_and(|id| rr.owners.first() == Some(&id))
        }
    })
}
