//! Endpoints a runner host calls with its own token in the body (reference §2.2–2.5, 2.10,
//! 2.11): legacy registration, verify, delete by token, delete a manager, reset by token,
//! and the job request poll.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{
    RunnerFields, check_unmodified_since, host_info, root_group, validate_runner, validation_error,
};
use crate::sim::Shared;
use crate::sim::entities;
use crate::sim::error::{ApiError, ApiResult};
use crate::sim::params::Params;
use crate::sim::server::Connection;
use crate::sim::state::{AccessLevel, NewRunner, RunnerType, State as Db};
use crate::sim::tokens::TokenFamily;

fn peer_ip(conn: &Option<Extension<Connection>>) -> Option<String> {
    conn.as_ref().map(|c| c.peer.ip().to_string())
}

/// `requires :token`, then the runner it authenticates or `403 Forbidden`.
fn runner_from(st: &Db, p: &Params) -> ApiResult<u64> {
    let mut c = p.check();
    c.require_string("token");
    c.finish()?;
    p.str("token")
        .and_then(|t| st.runner_by_token(&t))
        .ok_or_else(|| ApiError::forbidden(None))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /runners`: register with a registration token (legacy, reference §2.2).
pub async fn register(State(app): State<Arc<Shared>>, params: Params) -> ApiResult<Response> {
    let mut c = params.check();
    c.require_string("token");
    let fields = RunnerFields::read(&mut c, &params);
    let deprecated_note = c.string("maintainer_note");
    c.mutually_exclusive(&["maintainer_note", "maintenance_note"]);
    let info = if params.has("info") {
        c.hash("info")
    } else {
        None
    };
    c.finish()?;
    let token = params.str("token").unwrap_or_default();

    app.with(|st| {
        let instance_allowed = st.settings.legacy_registration;
        let matched = if token == st.instance_runners_token {
            Some((RunnerType::InstanceType, None, None, instance_allowed))
        } else if let Some(p) = st.projects.values().find(|p| p.runners_token == token) {
            let root = root_group(st, p.namespace_id);
            let allowed = instance_allowed
                && st
                    .groups
                    .get(&root)
                    .is_some_and(|g| g.allow_runner_registration_token);
            Some((RunnerType::ProjectType, None, Some(p.id), allowed))
        } else if let Some(g) = st.groups.values().find(|g| g.runners_token == token) {
            let root = root_group(st, g.id);
            let allowed = instance_allowed
                && st
                    .groups
                    .get(&root)
                    .is_some_and(|g| g.allow_runner_registration_token);
            Some((RunnerType::GroupType, Some(g.id), None, allowed))
        } else {
            None
        };
        let (runner_type, group_id, project_id) = match matched {
            Some((_, _, _, false)) => return Err(ApiError::gone("runner registration disallowed")),
            None if !instance_allowed => {
                return Err(ApiError::gone("runner registration disallowed"));
            }
            None => return Err(ApiError::forbidden(Some("invalid token supplied"))),
            Some((t, g, p, true)) => (t, g, p),
        };

        let tags = fields.tag_list.clone().unwrap_or_default();
        let run_untagged = fields.run_untagged.unwrap_or(true);
        let note = fields.maintenance_note.clone().or(deprecated_note);
        let errors = validate_runner(
            run_untagged,
            &tags,
            true,
            fields.description.as_deref(),
            fields.maximum_timeout,
            note.as_deref(),
        );
        if !errors.is_empty() {
            return Err(validation_error(&errors));
        }
        let name = info
            .as_ref()
            .and_then(|i| i.get("name"))
            .and_then(|n| n.as_str())
            .map(String::from);
        let id = st.create_runner(NewRunner {
            runner_type,
            group_id,
            project_id,
            name,
            description: fields.description,
            maintenance_note: note,
            paused: fields.paused.unwrap_or(false),
            locked: fields.locked.unwrap_or(false),
            run_untagged,
            tag_list: tags,
            access_level: fields
                .access_level
                .as_deref()
                .and_then(AccessLevel::parse)
                .unwrap_or(AccessLevel::NotProtected),
            maximum_timeout: fields.maximum_timeout,
            creator_id: None,
            family: TokenFamily::Registered,
            token_expires_at: None,
            token_rotation_deadline: None,
        });
        Ok((
            StatusCode::CREATED,
            Json(entities::registration(&st.runners[&id])),
        )
            .into_response())
    })
}

/// `POST /runners/verify`: checks a token and records the host as a runner manager. A
/// created runner (`glrt-`) only counts as contacted once it polls for jobs.
pub async fn verify(
    State(app): State<Arc<Shared>>,
    conn: Option<Extension<Connection>>,
    params: Params,
) -> ApiResult<Response> {
    let host = host_info(&params, peer_ip(&conn));
    app.with(|st| {
        let id = runner_from(st, &params)?;
        if st.orphaned(&st.runners[&id]) {
            return Err(ApiError::unprocessable("Runner is orphaned"));
        }
        let created = params.str("token").is_some_and(|t| t.starts_with("glrt-"));
        st.heartbeat(id, &host, !created);
        Ok((
            StatusCode::OK,
            Json(entities::registration(&st.runners[&id])),
        )
            .into_response())
    })
}

/// `DELETE /runners`: the token is the authority to delete the whole runner.
pub async fn delete(
    State(app): State<Arc<Shared>>,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    app.with(|st| {
        let id = runner_from(st, &params)?;
        check_unmodified_since(&headers, st.runners[&id].updated_at)?;
        st.delete_runner(id);
        Ok(no_content())
    })
}

/// `DELETE /runners/managers`: what `gitlab-runner unregister` does for `glrt-` tokens; the
/// runner itself survives.
pub async fn delete_manager(
    State(app): State<Arc<Shared>>,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    let mut c = params.check();
    c.require_string("token");
    c.require_string("system_id");
    c.finish()?;
    let system_id = params.str("system_id").unwrap_or_default();
    app.with(|st| {
        let id = runner_from(st, &params)?;
        let r = &st.runners[&id];
        let Some(pos) = r.managers.iter().position(|m| m.system_id == system_id) else {
            return Err(ApiError::not_found("Runner manager not found"));
        };
        check_unmodified_since(&headers, r.updated_at)?;
        let now = st.now();
        let r = st.runners.get_mut(&id).expect("runner exists");
        r.managers.remove(pos);
        r.updated_at = now;
        st.touch();
        Ok(no_content())
    })
}

/// Refuses a reset past the runner's rotation deadline (EE 18.10+); equal expiry and
/// deadline mean rotation is disabled.
pub fn check_rotation_allowed(st: &Db, id: u64) -> ApiResult<()> {
    let r = &st.runners[&id];
    match r.token_rotation_deadline {
        Some(d) if st.now() >= d || Some(d) == r.token_expires_at => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({ "message": "Token rotation deadline has passed" }),
        )),
        _ => Ok(()),
    }
}

/// `POST /runners/reset_authentication_token`: a runner rotating its own token.
pub async fn reset_token(
    State(app): State<Arc<Shared>>,
    conn: Option<Extension<Connection>>,
    params: Params,
) -> ApiResult<Response> {
    let host = host_info(&params, peer_ip(&conn));
    app.with(|st| {
        let id = runner_from(st, &params)?;
        check_rotation_allowed(st, id)?;
        st.heartbeat(id, &host, true);
        let (token, expires) = st.reset_runner_token(id).expect("runner exists");
        Ok((
            StatusCode::CREATED,
            Json(entities::reset_token(&token, expires)),
        )
            .into_response())
    })
}

/// `POST /jobs/request`: the poll that makes a runner online. The simulator never has jobs,
/// so the answer is always 204.
pub async fn request_job(
    State(app): State<Arc<Shared>>,
    conn: Option<Extension<Connection>>,
    params: Params,
) -> ApiResult<Response> {
    let host = host_info(&params, peer_ip(&conn));
    let queue_marker = app.with(|st| {
        let id = runner_from(st, &params)?;
        if st.orphaned(&st.runners[&id]) {
            return Err(ApiError::unprocessable("Runner is orphaned"));
        }
        st.heartbeat(id, &host, true);
        let r = st.runners.get_mut(&id).expect("runner exists");
        r.creation_state = "finished".into();
        Ok(params
            .str("last_update")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| st.rng.hex(32)))
    })?;
    let mut res = no_content();
    if let Ok(v) = HeaderValue::from_str(&queue_marker) {
        res.headers_mut().insert("x-gitlab-last-update", v);
    }
    Ok(res)
}
