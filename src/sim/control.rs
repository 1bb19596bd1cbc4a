//! Steering the simulator from a test: users, tokens, projects and groups, settings, faults,
//! "someone changed this runner in the UI", the clock, and the request log.
//!
//! Every operation is a method on [`Simulator`] (for in-process tests) and an HTTP endpoint
//! under `/-/sim/` (for a `runnerform sim` in another process):
//!
//! | endpoint | does |
//! |---|---|
//! | `GET /-/sim` | overview: clock, settings, users, groups, projects, runner count |
//! | `POST /-/sim/users` `{"username","admin"}` | a user |
//! | `POST /-/sim/users/:id/tokens` `{"scopes":[..],"expires_at":"YYYY-MM-DD"}` | a personal access token `{"id","token"}` |
//! | `POST /-/sim/tokens/revoke` `{"token"}` | revokes it |
//! | `POST /-/sim/groups` / `POST /-/sim/projects` `{"path":"acme/new"}` | a group / project |
//! | `DELETE /-/sim/groups/:id` / `DELETE /-/sim/projects/:id` | deletes it, orphaning its runners |
//! | `POST /-/sim/members` `{"user_id","project_id"\|"group_id","role"}` | a membership |
//! | `PUT /-/sim/settings` | `legacy_registration`, `*_token_expiration` (seconds or null), `restrict_*_runner_creation`, `omit_pagination_totals`, `version` |
//! | `PUT /-/sim/groups/:id/registration` `{"allowed"}` | the group's "allow registration token" |
//! | `GET /-/sim/registration_token[?project_id=\|group_id=]` | a legacy registration token |
//! | `GET`/`POST`/`DELETE /-/sim/faults` | injected failures ([`Fault`] as JSON) |
//! | `GET`/`PUT`/`DELETE /-/sim/latency` `{"path","millis"}` | injected latency |
//! | `GET`/`PUT`/`DELETE /-/sim/rate_limit` `{"requests","period_seconds"}` | a fixed-window rate limit per token ([`RateLimit`]) |
//! | `GET`/`PUT`/`DELETE /-/sim/workers` `{"workers"}` | at most this many API requests served at once |
//! | `GET /-/sim/runners`, `GET /-/sim/runners/:id` | runners as stored (no tokens) |
//! | `PATCH /-/sim/runners/:id` | edit "in the UI": tags, paused, description, ... |
//! | `DELETE /-/sim/runners/:id` | delete "in the UI" |
//! | `POST /-/sim/runners/:id/reset_token` | reset the token out of band `{"token","token_expires_at"}` |
//! | `POST /-/sim/runners/:id/contact` `{"system_id"}` | the runner polls once (it goes online) |
//! | `POST /-/sim/clock/advance` `{"seconds"}` | moves time forward |
//! | `GET`/`DELETE /-/sim/requests` | the request log ([`LoggedRequest`]) |
//!
//! The control endpoints need no token: the simulator only listens where its user runs it,
//! and its data is throwaway.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::api::RunnerFields;
use super::api::runners::apply_update;
use super::clock::{self, iso};
use super::faults::{Fault, Latency};
use super::observe::LoggedRequest;
use super::state::{Role, Runner, Settings, State as Db};
use super::throttle::RateLimit;
use super::{Shared, SimError, Simulator, lock};

/// Where a membership applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberOf {
    Project(u64),
    Group(u64),
}

/// Which legacy registration token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationScope {
    Instance,
    Group(u64),
    Project(u64),
}

/// A change made "in the UI" behind the client's back. Absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunnerEdit {
    pub description: Option<String>,
    pub paused: Option<bool>,
    pub tag_list: Option<Vec<String>>,
    pub locked: Option<bool>,
    pub run_untagged: Option<bool>,
    pub access_level: Option<String>,
    pub maximum_timeout: Option<i64>,
    pub maintenance_note: Option<String>,
}

/// A runner as the simulator stores it, without its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerSnapshot {
    pub id: u64,
    pub runner_type: String,
    pub group_id: Option<u64>,
    pub project_ids: Vec<u64>,
    pub description: Option<String>,
    pub maintenance_note: Option<String>,
    pub paused: bool,
    pub locked: bool,
    pub run_untagged: bool,
    pub tag_list: Vec<String>,
    pub access_level: String,
    pub maximum_timeout: Option<i64>,
    pub status: String,
    pub created_at: String,
    pub contacted_at: Option<String>,
    pub token_expires_at: Option<String>,
    /// `glrt-` or `glrtr-`: the token family, not the token.
    pub token_prefix: String,
    pub registration_type: String,
    pub creator_id: Option<u64>,
    pub managers: Vec<String>,
    pub orphaned: bool,
}

fn snapshot(st: &Db, r: &Runner) -> RunnerSnapshot {
    let now = st.now();
    RunnerSnapshot {
        id: r.id,
        runner_type: r.runner_type.as_str().into(),
        group_id: r.group_id,
        project_ids: r.project_ids.clone(),
        description: r.description.clone(),
        maintenance_note: r.maintenance_note.clone(),
        paused: r.paused,
        locked: r.locked,
        run_untagged: r.run_untagged,
        tag_list: r.tag_list.clone(),
        access_level: r.access_level.as_str().into(),
        maximum_timeout: r.maximum_timeout,
        status: r.rest_status(now).into(),
        created_at: iso(r.created_at),
        contacted_at: r.contacted_at.map(iso),
        token_expires_at: r.token_expires_at.map(iso),
        token_prefix: r
            .token
            .split_once('-')
            .map(|(p, _)| format!("{p}-"))
            .unwrap_or_default(),
        registration_type: r.registration_type.clone(),
        creator_id: r.creator_id,
        managers: r.managers.iter().map(|m| m.system_id.clone()).collect(),
        orphaned: st.orphaned(r),
    }
}

type Ctl<T> = Result<T, String>;

impl Shared {
    pub fn create_user(&self, username: &str, admin: bool) -> Ctl<u64> {
        self.with(|st| {
            if username.is_empty() || st.user_by_name(username).is_some() {
                return Err(format!("username {username:?} is empty or taken"));
            }
            Ok(st.create_user(username, username, admin))
        })
    }

    pub fn create_token(
        &self,
        user_id: u64,
        scopes: &[String],
        expires_at: Option<&str>,
    ) -> Ctl<(u64, String)> {
        let expires = match expires_at {
            Some(s) => {
                Some(clock::parse_iso(s).ok_or_else(|| format!("expires_at {s:?} is not a date"))?)
            }
            None => None,
        };
        for s in scopes {
            if !super::auth::KNOWN_SCOPES.contains(&s.as_str()) {
                return Err(format!("unknown scope {s:?}"));
            }
        }
        self.with(|st| {
            if !st.users.contains_key(&user_id) {
                return Err(format!("no user {user_id}"));
            }
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            Ok(st.create_access_token(user_id, "sim-token", &scopes, expires))
        })
    }

    pub fn revoke_token(&self, token: &str) -> Ctl<()> {
        self.with(|st| {
            let t = st.access_token_mut(token).ok_or("no such token")?;
            t.revoked = true;
            st.touch();
            Ok(())
        })
    }

    pub fn create_group(&self, path: &str) -> Ctl<u64> {
        self.with(|st| st.create_group(path))
    }

    pub fn create_project(&self, path: &str) -> Ctl<u64> {
        self.with(|st| st.create_project(path))
    }

    pub fn project_id(&self, path: &str) -> Option<u64> {
        self.with(|st| st.project_by_path(path).map(|p| p.id))
    }

    pub fn group_id(&self, path: &str) -> Option<u64> {
        self.with(|st| st.group_by_path(path).map(|g| g.id))
    }

    pub fn add_member(&self, user_id: u64, of: MemberOf, role: Role) -> Ctl<()> {
        self.with(|st| {
            if !st.users.contains_key(&user_id) {
                return Err(format!("no user {user_id}"));
            }
            let members = match of {
                MemberOf::Project(p) => {
                    &mut st
                        .projects
                        .get_mut(&p)
                        .ok_or(format!("no project {p}"))?
                        .members
                }
                MemberOf::Group(g) => {
                    &mut st
                        .groups
                        .get_mut(&g)
                        .ok_or(format!("no group {g}"))?
                        .members
                }
            };
            members.insert(user_id, role);
            st.touch();
            Ok(())
        })
    }

    pub fn delete_project(&self, id: u64) -> Ctl<()> {
        self.with(|st| {
            st.delete_project(id)
                .then_some(())
                .ok_or(format!("no project {id}"))
        })
    }

    pub fn delete_group(&self, id: u64) -> Ctl<()> {
        self.with(|st| {
            st.delete_group(id)
                .then_some(())
                .ok_or(format!("no group {id}"))
        })
    }

    pub fn configure(&self, f: impl FnOnce(&mut Settings)) {
        self.with(|st| {
            f(&mut st.settings);
            st.touch();
        })
    }

    pub fn settings(&self) -> Settings {
        self.with(|st| st.settings.clone())
    }

    pub fn set_group_registration(&self, group: u64, allowed: bool) -> Ctl<()> {
        self.with(|st| {
            st.groups
                .get_mut(&group)
                .ok_or(format!("no group {group}"))?
                .allow_runner_registration_token = allowed;
            st.touch();
            Ok(())
        })
    }

    pub fn registration_token(&self, scope: RegistrationScope) -> Ctl<String> {
        self.with(|st| match scope {
            RegistrationScope::Instance => Ok(st.instance_runners_token.clone()),
            RegistrationScope::Group(g) => st
                .groups
                .get(&g)
                .map(|g| g.runners_token.clone())
                .ok_or(format!("no group {g}")),
            RegistrationScope::Project(p) => st
                .projects
                .get(&p)
                .map(|p| p.runners_token.clone())
                .ok_or(format!("no project {p}")),
        })
    }

    pub fn edit_runner(&self, id: u64, edit: &RunnerEdit) -> Ctl<()> {
        let fields = RunnerFields {
            description: edit.description.clone(),
            maintenance_note: edit.maintenance_note.clone(),
            paused: edit.paused,
            locked: edit.locked,
            run_untagged: edit.run_untagged,
            tag_list: edit.tag_list.clone(),
            access_level: edit.access_level.clone(),
            maximum_timeout: edit.maximum_timeout,
        };
        if let Some(a) = &edit.access_level
            && super::state::AccessLevel::parse(a).is_none()
        {
            return Err(format!("access_level {a:?} is not valid"));
        }
        self.with(|st| {
            if !st.runners.contains_key(&id) {
                return Err(format!("no runner {id}"));
            }
            apply_update(st, id, &fields).map_err(|e| e.body.to_string())
        })
    }

    pub fn delete_runner(&self, id: u64) -> Ctl<()> {
        self.with(|st| {
            st.delete_runner(id)
                .then_some(())
                .ok_or(format!("no runner {id}"))
        })
    }

    pub fn reset_runner_token(&self, id: u64) -> Ctl<(String, Option<String>)> {
        self.with(|st| {
            st.reset_runner_token(id)
                .map(|(t, e)| (t, e.map(iso)))
                .ok_or(format!("no runner {id}"))
        })
    }

    pub fn contact_runner(&self, id: u64, system_id: Option<&str>) -> Ctl<()> {
        self.with(|st| {
            if !st.runners.contains_key(&id) {
                return Err(format!("no runner {id}"));
            }
            let info = super::state::HostInfo {
                system_id: system_id.map(String::from),
                ..Default::default()
            };
            st.heartbeat(id, &info, true);
            st.runners
                .get_mut(&id)
                .expect("runner exists")
                .creation_state = "finished".into();
            Ok(())
        })
    }

    pub fn snapshot(&self, id: u64) -> Option<RunnerSnapshot> {
        self.with(|st| st.runners.get(&id).map(|r| snapshot(st, r)))
    }

    pub fn snapshots(&self) -> Vec<RunnerSnapshot> {
        self.with(|st| st.runners.values().map(|r| snapshot(st, r)).collect())
    }

    pub fn runner_for_token(&self, token: &str) -> Option<u64> {
        self.with(|st| st.runner_by_token(token))
    }

    /// Moves the clock forward; returns the new simulated time.
    pub fn advance_clock(&self, by: Duration) -> String {
        self.with(|st| {
            st.clock_offset_ms += by.as_millis() as i64;
            st.touch();
            iso(st.now())
        })
    }

    pub fn now_iso(&self) -> String {
        self.with(|st| iso(st.now()))
    }

    pub fn inject(&self, f: Fault) {
        lock(&self.faults).add(f);
    }

    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.faults).pending()
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub fn set_latency(&self, l: Latency) {
        lock(&self.faults).set_latency(l);
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.log).entries()
    }

    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        lock(&self.limiter).set(limit);
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        lock(&self.limiter).get()
    }

    pub fn set_workers(&self, workers: Option<usize>) {
        lock(&self.workers).set(workers);
    }

    pub fn workers(&self) -> Option<usize> {
        lock(&self.workers).get()
    }

    pub fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    fn overview(&self) -> Value {
        self.with(|st| {
            json!({
                "now": iso(st.now()),
                "clock_offset_seconds": st.clock_offset_ms / 1000,
                "settings": st.settings,
                "admin_user_id": st.admin_user_id,
                "users": st.users.values().map(|u| json!({"id": u.id, "username": u.username, "is_admin": u.is_admin})).collect::<Vec<_>>(),
                "groups": st.groups.values().map(|g| json!({"id": g.id, "full_path": st.group_full_path(g.id), "parent_id": g.parent_id, "allow_runner_registration_token": g.allow_runner_registration_token})).collect::<Vec<_>>(),
                "projects": st.projects.values().map(|p| json!({"id": p.id, "path_with_namespace": st.project_full_path(p.id), "namespace_id": p.namespace_id})).collect::<Vec<_>>(),
                "runners": st.runners.len(),
                "rate_limit": lock(&self.limiter).get(),
                "workers": lock(&self.workers).get(),
            })
        })
    }
}

/// The same control surface for in-process tests.
impl Simulator {
    pub fn create_user(&self, username: &str, admin: bool) -> Result<u64, SimError> {
        self.shared()
            .create_user(username, admin)
            .map_err(SimError::Control)
    }

    /// A personal access token for `user_id`; `expires_at` is a date (`YYYY-MM-DD`).
    pub fn create_token(
        &self,
        user_id: u64,
        scopes: &[&str],
        expires_at: Option<&str>,
    ) -> Result<String, SimError> {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.shared()
            .create_token(user_id, &scopes, expires_at)
            .map(|(_, t)| t)
            .map_err(SimError::Control)
    }

    /// A new user with a token: the usual way a test gets a caller with a given role.
    pub fn user_with_token(
        &self,
        username: &str,
        scopes: &[&str],
    ) -> Result<(u64, String), SimError> {
        let id = self.create_user(username, false)?;
        Ok((id, self.create_token(id, scopes, None)?))
    }

    pub fn revoke_token(&self, token: &str) -> Result<(), SimError> {
        self.shared().revoke_token(token).map_err(SimError::Control)
    }

    pub fn create_group(&self, full_path: &str) -> Result<u64, SimError> {
        self.shared()
            .create_group(full_path)
            .map_err(SimError::Control)
    }

    pub fn create_project(&self, full_path: &str) -> Result<u64, SimError> {
        self.shared()
            .create_project(full_path)
            .map_err(SimError::Control)
    }

    pub fn project_id(&self, full_path: &str) -> Option<u64> {
        self.shared().project_id(full_path)
    }

    pub fn group_id(&self, full_path: &str) -> Option<u64> {
        self.shared().group_id(full_path)
    }

    pub fn add_member(&self, user_id: u64, of: MemberOf, role: Role) -> Result<(), SimError> {
        self.shared()
            .add_member(user_id, of, role)
            .map_err(SimError::Control)
    }

    pub fn delete_project(&self, id: u64) -> Result<(), SimError> {
        self.shared().delete_project(id).map_err(SimError::Control)
    }

    pub fn delete_group(&self, id: u64) -> Result<(), SimError> {
        self.shared().delete_group(id).map_err(SimError::Control)
    }

    pub fn configure(&self, f: impl FnOnce(&mut Settings)) {
        self.shared().configure(f)
    }

    pub fn settings(&self) -> Settings {
        self.shared().settings()
    }

    pub fn set_group_registration(&self, group: u64, allowed: bool) -> Result<(), SimError> {
        self.shared()
            .set_group_registration(group, allowed)
            .map_err(SimError::Control)
    }

    pub fn registration_token(&self, scope: RegistrationScope) -> Result<String, SimError> {
        self.shared()
            .registration_token(scope)
            .map_err(SimError::Control)
    }

    pub fn edit_runner(&self, id: u64, edit: &RunnerEdit) -> Result<(), SimError> {
        self.shared()
            .edit_runner(id, edit)
            .map_err(SimError::Control)
    }

    pub fn delete_runner(&self, id: u64) -> Result<(), SimError> {
        self.shared().delete_runner(id).map_err(SimError::Control)
    }

    /// Resets a runner's token as someone in the UI would; returns the new token.
    pub fn reset_runner_token(&self, id: u64) -> Result<String, SimError> {
        self.shared()
            .reset_runner_token(id)
            .map(|(t, _)| t)
            .map_err(SimError::Control)
    }

    /// The runner polls once from `system_id`, as a live gitlab-runner would.
    pub fn contact_runner(&self, id: u64, system_id: Option<&str>) -> Result<(), SimError> {
        self.shared()
            .contact_runner(id, system_id)
            .map_err(SimError::Control)
    }

    pub fn runner(&self, id: u64) -> Option<RunnerSnapshot> {
        self.shared().snapshot(id)
    }

    pub fn runners(&self) -> Vec<RunnerSnapshot> {
        self.shared().snapshots()
    }

    /// The runner a token currently authenticates (none once deleted, reset or expired).
    pub fn runner_for_token(&self, token: &str) -> Option<u64> {
        self.shared().runner_for_token(token)
    }

    pub fn advance_clock(&self, by: Duration) -> String {
        self.shared().advance_clock(by)
    }

    pub fn now(&self) -> String {
        self.shared().now_iso()
    }

    pub fn inject(&self, fault: Fault) {
        self.shared().inject(fault)
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.shared().faults()
    }

    /// Removes pending faults and latency.
    pub fn clear_faults(&self) {
        self.shared().clear_faults()
    }

    /// Delays requests whose path matches `path` (`*` for all); zero removes the delay.
    pub fn set_latency(&self, path: &str, delay: Duration) {
        self.shared().set_latency(Latency {
            path: path.into(),
            millis: delay.as_millis() as u64,
        })
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared().requests()
    }

    pub fn clear_requests(&self) {
        self.shared().clear_requests()
    }

    /// Limits every token to `limit.requests` API requests per `limit.period_seconds`, in
    /// fixed windows, answering 429 with GitLab's `RateLimit-*` headers and `Retry-After`
    /// beyond; `None` lifts the limit.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.shared().set_rate_limit(limit)
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.shared().rate_limit()
    }

    /// Serves at most `workers` API requests at once; the others wait (`None`: no bound).
    pub fn set_workers(&self, workers: Option<usize>) {
        self.shared().set_workers(workers)
    }
}

// ---- HTTP ------------------------------------------------------------------------------

type App = State<Arc<Shared>>;

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

fn respond<T: Serialize>(r: Ctl<T>, status: StatusCode) -> Response {
    match r {
        Ok(v) => (status, Json(v)).into_response(),
        Err(e) if e.starts_with("no ") => err(StatusCode::NOT_FOUND, e),
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

async fn overview(State(app): App) -> Response {
    Json(app.overview()).into_response()
}

#[derive(Deserialize)]
struct NewUser {
    username: String,
    #[serde(default)]
    admin: bool,
}

async fn new_user(State(app): App, Json(b): Json<NewUser>) -> Response {
    respond(
        app.create_user(&b.username, b.admin)
            .map(|id| json!({"id": id, "username": b.username})),
        StatusCode::CREATED,
    )
}

#[derive(Deserialize)]
struct NewToken {
    scopes: Vec<String>,
    expires_at: Option<String>,
}

async fn new_token(State(app): App, Path(user): Path<u64>, Json(b): Json<NewToken>) -> Response {
    respond(
        app.create_token(user, &b.scopes, b.expires_at.as_deref())
            .map(|(id, token)| json!({"id": id, "token": token})),
        StatusCode::CREATED,
    )
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn revoke(State(app): App, Json(b): Json<TokenBody>) -> Response {
    respond(
        app.revoke_token(&b.token).map(|_| json!({})),
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct PathBody {
    path: String,
}

async fn new_group(State(app): App, Json(b): Json<PathBody>) -> Response {
    respond(
        app.create_group(&b.path)
            .map(|id| json!({"id": id, "full_path": b.path})),
        StatusCode::CREATED,
    )
}

async fn new_project(State(app): App, Json(b): Json<PathBody>) -> Response {
    respond(
        app.create_project(&b.path)
            .map(|id| json!({"id": id, "path_with_namespace": b.path})),
        StatusCode::CREATED,
    )
}

async fn remove_group(State(app): App, Path(id): Path<u64>) -> Response {
    respond(app.delete_group(id).map(|_| json!({})), StatusCode::OK)
}

async fn remove_project(State(app): App, Path(id): Path<u64>) -> Response {
    respond(app.delete_project(id).map(|_| json!({})), StatusCode::OK)
}

#[derive(Deserialize)]
struct Member {
    user_id: u64,
    project_id: Option<u64>,
    group_id: Option<u64>,
    role: String,
}

async fn member(State(app): App, Json(b): Json<Member>) -> Response {
    let Some(role) = Role::parse(&b.role) else {
        return err(
            StatusCode::BAD_REQUEST,
            format!("unknown role {:?}", b.role),
        );
    };
    let of = match (b.project_id, b.group_id) {
        (Some(p), None) => MemberOf::Project(p),
        (None, Some(g)) => MemberOf::Group(g),
        _ => {
            return err(
                StatusCode::BAD_REQUEST,
                "give exactly one of project_id, group_id",
            );
        }
    };
    respond(
        app.add_member(b.user_id, of, role).map(|_| json!({})),
        StatusCode::CREATED,
    )
}

async fn settings(State(app): App, Json(b): Json<Map<String, Value>>) -> Response {
    let mut problems = Vec::new();
    let seconds = |v: &Value| -> Result<Option<i64>, ()> {
        match v {
            Value::Null => Ok(None),
            Value::Number(n) => n.as_i64().map(Some).ok_or(()),
            _ => Err(()),
        }
    };
    let mut s = app.settings();
    for (k, v) in &b {
        let ok = match k.as_str() {
            "legacy_registration" => v.as_bool().map(|x| s.legacy_registration = x).is_some(),
            "restrict_group_runner_creation" => v
                .as_bool()
                .map(|x| s.restrict_group_runner_creation = x)
                .is_some(),
            "omit_pagination_totals" => v.as_bool().map(|x| s.omit_pagination_totals = x).is_some(),
            "restrict_project_runner_creation" => v
                .as_bool()
                .map(|x| s.restrict_project_runner_creation = x)
                .is_some(),
            "instance_token_expiration" => {
                seconds(v).map(|x| s.instance_token_expiration = x).is_ok()
            }
            "group_token_expiration" => seconds(v).map(|x| s.group_token_expiration = x).is_ok(),
            "project_token_expiration" => {
                seconds(v).map(|x| s.project_token_expiration = x).is_ok()
            }
            "version" => v.as_str().map(|x| s.version = x.into()).is_some(),
            _ => false,
        };
        if !ok {
            problems.push(k.clone());
        }
    }
    if !problems.is_empty() {
        return err(
            StatusCode::BAD_REQUEST,
            format!("unknown setting or bad value: {}", problems.join(", ")),
        );
    }
    app.configure(|cur| *cur = s.clone());
    Json(s).into_response()
}

#[derive(Deserialize)]
struct Allowed {
    allowed: bool,
}

async fn group_registration(
    State(app): App,
    Path(id): Path<u64>,
    Json(b): Json<Allowed>,
) -> Response {
    respond(
        app.set_group_registration(id, b.allowed).map(|_| json!({})),
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct ScopeQuery {
    project_id: Option<u64>,
    group_id: Option<u64>,
}

async fn registration(State(app): App, Query(q): Query<ScopeQuery>) -> Response {
    let scope = match (q.project_id, q.group_id) {
        (Some(p), None) => RegistrationScope::Project(p),
        (None, Some(g)) => RegistrationScope::Group(g),
        (None, None) => RegistrationScope::Instance,
        _ => {
            return err(
                StatusCode::BAD_REQUEST,
                "give at most one of project_id, group_id",
            );
        }
    };
    respond(
        app.registration_token(scope).map(|t| json!({"token": t})),
        StatusCode::OK,
    )
}

async fn list_faults(State(app): App) -> Response {
    Json(app.faults()).into_response()
}

async fn add_fault(State(app): App, Json(f): Json<Fault>) -> Response {
    app.inject(f.clone());
    (StatusCode::CREATED, Json(f)).into_response()
}

async fn clear_faults(State(app): App) -> Response {
    app.clear_faults();
    Json(json!({})).into_response()
}

async fn get_latency(State(app): App) -> Response {
    Json(lock(&app.faults).latency()).into_response()
}

async fn clear_latency(State(app): App) -> Response {
    lock(&app.faults).clear_latency();
    Json(json!({})).into_response()
}

async fn put_latency(State(app): App, Json(l): Json<Latency>) -> Response {
    app.set_latency(l.clone());
    Json(l).into_response()
}

async fn get_rate_limit(State(app): App) -> Response {
    Json(app.rate_limit()).into_response()
}

async fn put_rate_limit(State(app): App, Json(l): Json<RateLimit>) -> Response {
    if l.requests == 0 || l.period_seconds == 0 {
        return err(
            StatusCode::BAD_REQUEST,
            "requests and period_seconds must be positive (DELETE lifts the limit)",
        );
    }
    app.set_rate_limit(Some(l));
    Json(l).into_response()
}

async fn clear_rate_limit(State(app): App) -> Response {
    app.set_rate_limit(None);
    Json(json!({})).into_response()
}

#[derive(Deserialize)]
struct WorkersBody {
    workers: usize,
}

async fn get_workers(State(app): App) -> Response {
    Json(json!({ "workers": app.workers() })).into_response()
}

async fn put_workers(State(app): App, Json(b): Json<WorkersBody>) -> Response {
    if b.workers == 0 {
        return err(
            StatusCode::BAD_REQUEST,
            "workers must be positive (DELETE lifts the bound)",
        );
    }
    app.set_workers(Some(b.workers));
    Json(json!({ "workers": b.workers })).into_response()
}

async fn clear_workers(State(app): App) -> Response {
    app.set_workers(None);
    Json(json!({})).into_response()
}

async fn list_runners(State(app): App) -> Response {
    Json(app.snapshots()).into_response()
}

async fn get_runner(State(app): App, Path(id): Path<u64>) -> Response {
    respond(
        app.snapshot(id).ok_or(format!("no runner {id}")),
        StatusCode::OK,
    )
}

async fn edit_runner(State(app): App, Path(id): Path<u64>, Json(e): Json<RunnerEdit>) -> Response {
    respond(
        app.edit_runner(id, &e)
            .and_then(|_| app.snapshot(id).ok_or(format!("no runner {id}"))),
        StatusCode::OK,
    )
}

async fn delete_runner(State(app): App, Path(id): Path<u64>) -> Response {
    respond(app.delete_runner(id).map(|_| json!({})), StatusCode::OK)
}

async fn reset_runner(State(app): App, Path(id): Path<u64>) -> Response {
    respond(
        app.reset_runner_token(id)
            .map(|(t, e)| json!({"token": t, "token_expires_at": e})),
        StatusCode::CREATED,
    )
}

#[derive(Deserialize, Default)]
struct Contact {
    system_id: Option<String>,
}

async fn contact(State(app): App, Path(id): Path<u64>, body: Option<Json<Contact>>) -> Response {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    respond(
        app.contact_runner(id, b.system_id.as_deref())
            .map(|_| json!({})),
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance(State(app): App, Json(b): Json<Advance>) -> Response {
    Json(json!({"now": app.advance_clock(Duration::from_secs(b.seconds))})).into_response()
}

async fn requests(State(app): App) -> Response {
    Json(app.requests()).into_response()
}

async fn clear_requests(State(app): App) -> Response {
    app.clear_requests();
    Json(json!({})).into_response()
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(overview))
        .route("/users", post(new_user))
        .route("/users/{id}/tokens", post(new_token))
        .route("/tokens/revoke", post(revoke))
        .route("/groups", post(new_group))
        .route("/groups/{id}", axum::routing::delete(remove_group))
        .route("/groups/{id}/registration", put(group_registration))
        .route("/projects", post(new_project))
        .route("/projects/{id}", axum::routing::delete(remove_project))
        .route("/members", post(member))
        .route("/settings", put(settings))
        .route("/registration_token", get(registration))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route(
            "/latency",
            get(get_latency).put(put_latency).delete(clear_latency),
        )
        .route(
            "/rate_limit",
            get(get_rate_limit)
                .put(put_rate_limit)
                .delete(clear_rate_limit),
        )
        .route(
            "/workers",
            get(get_workers).put(put_workers).delete(clear_workers),
        )
        .route("/runners", get(list_runners))
        .route(
            "/runners/{id}",
            get(get_runner).patch(edit_runner).delete(delete_runner),
        )
        .route("/runners/{id}/reset_token", post(reset_runner))
        .route("/runners/{id}/contact", post(contact))
        .route("/clock/advance", post(advance))
        .route("/requests", get(requests).delete(clear_requests))
        .fallback(|| async { err(StatusCode::NOT_FOUND, "no such control endpoint") })
}
