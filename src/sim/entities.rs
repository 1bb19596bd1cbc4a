//! Response bodies, written from the reference's entity descriptions (`Entities::Ci::Runner`,
//! `RunnerDetails`, `RunnerManager`, `RunnerRegistrationDetails`, ...). These are the
//! simulator's own shapes; nothing here is shared with a GitLab client.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde_json::{Value, json};

use super::auth::Caller;
use super::clock::{date, iso};
use super::state::{AccessToken, Group, Manager, Project, Runner, RunnerType, State, User};

/// `http://host:port` as the client addressed us, for `web_url` and pagination links.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        Ok(BaseUrl(format!("http://{host}")))
    }
}

fn opt_time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(iso(t)))
}

pub fn user_basic(u: &User, base: &str) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "name": u.name,
        "state": "active",
        "locked": false,
        "avatar_url": null,
        "web_url": format!("{base}/{}", u.username),
    })
}

/// `GET /user`.
pub fn current_user(u: &User, base: &str) -> Value {
    let mut v = user_basic(u, base);
    let o = v.as_object_mut().expect("object");
    o.insert("is_admin".into(), json!(u.is_admin));
    o.insert("created_at".into(), json!(iso(u.created_at)));
    o.insert("bot".into(), json!(false));
    o.insert("email".into(), json!(format!("{}@sim.invalid", u.username)));
    v
}

/// `Entities::Ci::Runner`: the list item.
pub fn runner(st: &State, r: &Runner, base: &str) -> Value {
    let now = st.now();
    let mut v = json!({
        "id": r.id,
        "description": r.description,
        "ip_address": null,
        "active": !r.paused,
        "paused": r.paused,
        "is_shared": r.runner_type == RunnerType::InstanceType,
        "runner_type": r.runner_type.as_str(),
        "name": r.name,
        "online": r.online(now),
        "created_at": iso(r.created_at),
        "status": r.rest_status(now),
        "job_execution_status": "idle",
    });
    if let Some(u) = r.creator_id.and_then(|id| st.users.get(&id)) {
        v["created_by"] = user_basic(u, base);
    }
    v
}

/// `Entities::Ci::RunnerDetails`: the list item plus configuration, contact and owners.
/// `maintenance_note` only for callers who may update the runner; never the token.
pub fn runner_details(st: &State, r: &Runner, caller: &Caller, base: &str) -> Value {
    let mut v = runner(st, r, base);
    let latest = State::latest_manager(r);
    let pick = |f: fn(&Manager) -> &Option<String>| latest.and_then(|m| f(m).clone());
    let projects: Vec<Value> = r
        .project_ids
        .iter()
        .filter(|&&p| st.can_see_project(caller, p))
        .map(|&p| project_basic(st, &st.projects[&p], base))
        .collect();
    let groups: Vec<Value> = r
        .group_id
        .filter(|&g| st.can_see_group(caller, g))
        .map(|g| group_basic(st, &st.groups[&g], base))
        .into_iter()
        .collect();
    let note = st
        .can_update_runner(caller, r)
        .then(|| r.maintenance_note.clone())
        .flatten();
    let o = v.as_object_mut().expect("object");
    o.insert("tag_list".into(), json!(r.tag_list));
    o.insert("run_untagged".into(), json!(r.run_untagged));
    o.insert("locked".into(), json!(r.locked));
    o.insert("maximum_timeout".into(), json!(r.maximum_timeout));
    o.insert("access_level".into(), json!(r.access_level.as_str()));
    o.insert("version".into(), json!(pick(|m| &m.version)));
    o.insert("revision".into(), json!(pick(|m| &m.revision)));
    o.insert("platform".into(), json!(pick(|m| &m.platform)));
    o.insert("architecture".into(), json!(pick(|m| &m.architecture)));
    o.insert("contacted_at".into(), opt_time(r.contacted_at));
    o.insert("maintenance_note".into(), json!(note));
    o.insert("projects".into(), Value::Array(projects));
    o.insert("groups".into(), Value::Array(groups));
    v
}

pub fn manager(m: &Manager, now: i64) -> Value {
    json!({
        "id": m.id,
        "system_id": m.system_id,
        "version": m.version,
        "revision": m.revision,
        "platform": m.platform,
        "architecture": m.architecture,
        "created_at": iso(m.created_at),
        "contacted_at": opt_time(m.contacted_at),
        "ip_address": m.ip_address,
        "status": m.status(now),
        "job_execution_status": "idle",
    })
}

/// `RunnerRegistrationDetails`: the only place a runner token is ever shown.
pub fn registration(r: &Runner) -> Value {
    json!({
        "id": r.id,
        "token": r.token,
        "token_expires_at": opt_time(r.token_expires_at),
    })
}

/// `ResetTokenResult`.
pub fn reset_token(token: &str, expires: Option<i64>) -> Value {
    json!({ "token": token, "token_expires_at": opt_time(expires) })
}

pub fn project_basic(st: &State, p: &Project, base: &str) -> Value {
    let full = st.project_full_path(p.id);
    let ns = st.group_full_path(p.namespace_id);
    json!({
        "id": p.id,
        "description": null,
        "name": p.name,
        "name_with_namespace": full.replace('/', " / "),
        "path": p.path,
        "path_with_namespace": full,
        "created_at": iso(p.created_at),
        "default_branch": "main",
        "web_url": format!("{base}/{full}"),
        "namespace": {
            "id": p.namespace_id,
            "name": st.groups.get(&p.namespace_id).map(|g| g.name.clone()),
            "path": st.groups.get(&p.namespace_id).map(|g| g.path.clone()),
            "kind": "group",
            "full_path": ns,
            "parent_id": st.groups.get(&p.namespace_id).and_then(|g| g.parent_id),
            "web_url": format!("{base}/groups/{ns}"),
        },
    })
}

/// `GET /projects/:id`.
pub fn project(st: &State, p: &Project, base: &str) -> Value {
    let mut v = project_basic(st, p, base);
    let o = v.as_object_mut().expect("object");
    o.insert("visibility".into(), json!("private"));
    o.insert(
        "shared_runners_enabled".into(),
        json!(p.shared_runners_enabled),
    );
    o.insert(
        "group_runners_enabled".into(),
        json!(p.group_runners_enabled),
    );
    o.insert("archived".into(), json!(false));
    v
}

pub fn group_basic(st: &State, g: &Group, base: &str) -> Value {
    let full = st.group_full_path(g.id);
    json!({
        "id": g.id,
        "name": g.name,
        "path": g.path,
        "full_name": full.replace('/', " / "),
        "full_path": full,
        "parent_id": g.parent_id,
        "created_at": iso(g.created_at),
        "web_url": format!("{base}/groups/{full}"),
    })
}

/// `GET /groups/:id`.
pub fn group(st: &State, g: &Group, base: &str) -> Value {
    let mut v = group_basic(st, g, base);
    let o = v.as_object_mut().expect("object");
    o.insert("visibility".into(), json!("private"));
    o.insert("description".into(), json!(""));
    o.insert(
        "shared_runners_setting".into(),
        json!(if g.shared_runners_enabled {
            "enabled"
        } else {
            "disabled_and_unoverridable"
        }),
    );
    v
}

/// `GET /personal_access_tokens/self`.
pub fn access_token(t: &AccessToken, now: i64) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "revoked": t.revoked,
        "created_at": iso(t.created_at),
        "description": null,
        "scopes": t.scopes,
        "user_id": t.user_id,
        "last_used_at": opt_time(t.last_used_at),
        "active": !t.revoked && !t.expired(now),
        "expires_at": t.expires_at.map(date),
    })
}
