//! Projects and groups: lookup by id or URL-encoded path, their runner lists, assigning a
//! project runner to another project, and their legacy registration tokens.

use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::runners::{ALL_SCOPES, Filters, list_response};
use super::{check_unmodified_since, int_id};
use crate::sim::Shared;
use crate::sim::auth::{Caller, Credentials, READ, WRITE};
use crate::sim::entities::{self, BaseUrl};
use crate::sim::error::{ApiError, ApiResult};
use crate::sim::params::Params;
use crate::sim::state::{RunnerType, State as Db};

/// `:id` may be numeric or a full path (`acme/app`, sent as `acme%2Fapp`). Invisible
/// projects are as absent as missing ones.
fn find_project(st: &Db, c: &Caller, raw: &str) -> ApiResult<u64> {
    let id = match raw.parse::<u64>() {
        Ok(id) => Some(id),
        Err(_) => st.project_by_path(raw).map(|p| p.id),
    };
    id.filter(|&id| st.can_see_project(c, id))
        .ok_or_else(|| ApiError::not_found("Project"))
}

fn find_group(st: &Db, c: &Caller, raw: &str) -> ApiResult<u64> {
    let id = match raw.parse::<u64>() {
        Ok(id) => Some(id),
        Err(_) => st.group_by_path(raw).map(|g| g.id),
    };
    id.filter(|&id| st.can_see_group(c, id))
        .ok_or_else(|| ApiError::not_found("Group"))
}

/// `GET /projects/:id`.
pub async fn project(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, READ)?;
        let id = find_project(st, &caller, &id)?;
        Ok(Json(entities::project(st, &st.projects[&id], &base)).into_response())
    })
}

/// `GET /groups/:id`.
pub async fn group(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, READ)?;
        let id = find_group(st, &caller, &id)?;
        Ok(Json(entities::group(st, &st.groups[&id], &base)).into_response())
    })
}

/// GitLab's numeric access level of a role.
fn access_level(role: crate::sim::state::Role) -> u32 {
    use crate::sim::state::Role;
    match role {
        Role::Guest => 10,
        Role::Reporter => 20,
        Role::Developer => 30,
        Role::Maintainer => 40,
        Role::Owner => 50,
    }
}

/// A member as `members/all/:user_id` shows it: inherited memberships count. `find` finds
/// the project or group the caller may see; `role` is the user's role in it.
fn member(
    st: &mut Db,
    cred: &Credentials,
    id: &str,
    user_id: &str,
    find: fn(&Db, &Caller, &str) -> ApiResult<u64>,
    role: fn(&Db, u64, u64) -> Option<crate::sim::state::Role>,
) -> ApiResult<Response> {
    let caller = st.authenticate(cred, READ)?;
    let id = find(st, &caller, id)?;
    let user = user_id
        .parse::<u64>()
        .map_err(|_| ApiError::not_found("Member"))?;
    let (Some(role), Some(u)) = (role(st, user, id), st.users.get(&user)) else {
        return Err(ApiError::not_found("Member"));
    };
    Ok(Json(serde_json::json!({
        "id": u.id,
        "username": u.username,
        "name": u.name,
        "state": "active",
        "access_level": access_level(role),
    }))
    .into_response())
}

/// `GET /projects/:id/members/all/:user_id`: the user's role in the project, inherited from
/// its groups too.
pub async fn project_member(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    app.with(|st| member(st, &cred, &id, &user_id, find_project, Db::project_role))
}

/// `GET /groups/:id/members/all/:user_id`.
pub async fn group_member(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    app.with(|st| member(st, &cred, &id, &user_id, find_group, Db::group_role))
}

/// `GET /projects/:id/runners`: the project's own runners, its groups' and the instance's.
pub async fn project_runners(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, READ)?;
        let id = find_project(st, &caller, &id)?;
        if !st.can_admin_project_runners(&caller, id) {
            return Err(ApiError::forbidden(None));
        }
        let f = Filters::read(&params, true)?;
        let runners = f.apply(st, st.runners_for_project(id), ALL_SCOPES)?;
        Ok(list_response(st, runners, &f, &base, &uri))
    })
}

/// `GET /groups/:id/runners`: the group's runners, its ancestors' and the instance's.
pub async fn group_runners(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, READ)?;
        let id = find_group(st, &caller, &id)?;
        if !st.can_read_group_runners(&caller, id) {
            return Err(ApiError::forbidden(None));
        }
        let f = Filters::read(&params, false)?;
        let runners = f.apply(st, st.runners_for_group(id), ALL_SCOPES)?;
        Ok(list_response(st, runners, &f, &base, &uri))
    })
}

/// `POST /projects/:id/runners`: assign an existing project runner to this project too.
pub async fn assign_runner(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, WRITE)?;
        let project = find_project(st, &caller, &id)?;
        let mut c = params.check();
        let runner_id = c.require_int("runner_id");
        c.finish()?;
        if !st.can_create_project_runner(&caller, project) {
            return Err(ApiError::forbidden(None));
        }
        let r = runner_id
            .and_then(|i| u64::try_from(i).ok())
            .and_then(|i| st.runners.get(&i))
            .ok_or_else(|| ApiError::not_found("Runner"))?;
        if r.runner_type == RunnerType::GroupType {
            return Err(ApiError::forbidden(Some("Runner is a group runner")));
        }
        if !caller.admin {
            if r.locked {
                return Err(ApiError::forbidden(Some("Runner is locked")));
            }
            if !st.can_update_runner(&caller, r) {
                return Err(ApiError::forbidden(Some("No access granted")));
            }
        }
        if r.runner_type == RunnerType::InstanceType {
            return Err(ApiError::bad_request(
                "Transitioning an instance runner to a project runner is not supported",
            ));
        }
        if r.project_ids.contains(&project) {
            return Err(ApiError::bad_request("Runner has already been taken"));
        }
        let rid = r.id;
        let now = st.now();
        let r = st.runners.get_mut(&rid).expect("runner exists");
        r.project_ids.push(project);
        r.updated_at = now;
        st.touch();
        Ok((
            StatusCode::CREATED,
            Json(entities::runner(st, &st.runners[&rid], &base)),
        )
            .into_response())
    })
}

/// `DELETE /projects/:id/runners/:runner_id`: unassign; the last project cannot be.
pub async fn unassign_runner(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    headers: HeaderMap,
    Path((id, runner_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, WRITE)?;
        let project = find_project(st, &caller, &id)?;
        let runner_id = int_id(&runner_id, "runner_id")?;
        if !st.can_admin_project_runners(&caller, project) {
            return Err(ApiError::forbidden(None));
        }
        let r = st
            .runners
            .get(&runner_id)
            .filter(|r| r.project_ids.contains(&project))
            .ok_or_else(|| ApiError::not_found("Runner"))?;
        check_unmodified_since(&headers, r.updated_at)?;
        if r.project_ids.len() == 1 {
            return Err(ApiError::forbidden(Some(
                "Only one project associated with the runner. Please remove the runner instead",
            )));
        }
        let now = st.now();
        let r = st.runners.get_mut(&runner_id).expect("runner exists");
        r.project_ids.retain(|&p| p != project);
        r.updated_at = now;
        st.touch();
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// `POST /projects/:id/runners/reset_registration_token` (Maintainer).
pub async fn reset_project_registration_token(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, WRITE)?;
        let project = find_project(st, &caller, &id)?;
        if !st.can_admin_project_runners(&caller, project) {
            return Err(ApiError::forbidden(None));
        }
        let token = crate::sim::tokens::registration_token(&mut st.rng);
        st.projects
            .get_mut(&project)
            .expect("project exists")
            .runners_token = token.clone();
        st.touch();
        Ok((
            StatusCode::CREATED,
            Json(entities::reset_token(&token, None)),
        )
            .into_response())
    })
}

/// `POST /groups/:id/runners/reset_registration_token` (Owner).
pub async fn reset_group_registration_token(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, WRITE)?;
        let group = find_group(st, &caller, &id)?;
        if !st.can_reset_group_registration_token(&caller, group) {
            return Err(ApiError::forbidden(None));
        }
        let token = crate::sim::tokens::registration_token(&mut st.rng);
        st.groups
            .get_mut(&group)
            .expect("group exists")
            .runners_token = token.clone();
        st.touch();
        Ok((
            StatusCode::CREATED,
            Json(entities::reset_token(&token, None)),
        )
            .into_response())
    })
}
