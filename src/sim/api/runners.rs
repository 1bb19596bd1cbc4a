//! Runner endpoints called with a user token (reference §2.6–2.10): lists with filters,
//! details, managers, update, delete and reset by id.

use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::runner_token::check_rotation_allowed;
use super::{RunnerFields, check_unmodified_since, int_id, validate_runner, validation_error};
use crate::sim::Shared;
use crate::sim::auth::{Caller, Credentials, READ, READ_BY_ID, WRITE, WRITE_BY_ID};
use crate::sim::entities::{self, BaseUrl};
use crate::sim::error::{ApiError, ApiResult};
use crate::sim::pagination::{self, Page};
use crate::sim::params::Params;
use crate::sim::state::{AccessLevel, Runner, RunnerType, State as Db};

/// `AVAILABLE_TYPES_LEGACY + AVAILABLE_TYPES + AVAILABLE_STATUSES_INCL_DEPRECATED`.
pub const ALL_SCOPES: &[&str] = &[
    "specific",
    "shared",
    "instance_type",
    "group_type",
    "project_type",
    "active",
    "paused",
    "online",
    "offline",
    "never_contacted",
    "stale",
];
pub const STATUSES_INCL_DEPRECATED: &[&str] = &[
    "active",
    "paused",
    "online",
    "offline",
    "never_contacted",
    "stale",
];

/// The list filters of reference §2.7, validated as Grape does before the list is built.
#[derive(Debug, Clone)]
pub struct Filters {
    pub scope: Option<String>,
    pub runner_type: Option<String>,
    pub status: Option<String>,
    pub paused: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub version_prefix: Option<String>,
    pub page: Page,
}

impl Filters {
    /// `with_scope`: the deprecated `scope` parameter exists on this endpoint (not on groups).
    pub fn read(p: &Params, with_scope: bool) -> ApiResult<Filters> {
        let mut c = p.check();
        let scope = if with_scope {
            c.one_of("scope", ALL_SCOPES)
        } else {
            None
        };
        let runner_type = c.one_of("type", &RunnerType::ALL);
        let paused = c.bool("paused");
        let status = c.one_of("status", STATUSES_INCL_DEPRECATED);
        let tags = if p.has("tag_list") {
            c.tags("tag_list")
        } else {
            None
        };
        let version_prefix = c.string("version_prefix");
        let version_ok = version_prefix.as_deref().is_none_or(|v| {
            v.starts_with(|ch: char| ch.is_ascii_digit() || ch == '+' || ch == '.')
        });
        if !version_ok {
            c.error("version_prefix is invalid".into());
        }
        let page = pagination::page_params(&mut c);
        c.finish()?;
        Ok(Filters {
            scope,
            runner_type,
            status,
            paused,
            tags,
            version_prefix,
            page,
        })
    }

    /// `apply_filter` (and the deprecated `scope` first, limited to `scopes`).
    pub fn apply<'a>(
        &self,
        st: &Db,
        runners: Vec<&'a Runner>,
        scopes: &[&str],
    ) -> ApiResult<Vec<&'a Runner>> {
        let now = st.now();
        let by = |name: &str, r: &Runner| -> bool {
            match name {
                "specific" => r.runner_type != RunnerType::InstanceType,
                "shared" => r.runner_type == RunnerType::InstanceType,
                "active" => !r.paused,
                "paused" => r.paused,
                "online" => r.online(now),
                "offline" => r.contacted_at.is_some() && !r.online(now),
                "never_contacted" => r.contacted_at.is_none(),
                "stale" => r.stale(now),
                ty => r.runner_type.as_str() == ty,
            }
        };
        if let Some(s) = &self.scope
            && !scopes.contains(&s.as_str())
        {
            return Err(ApiError::api(
                StatusCode::BAD_REQUEST,
                "Scope contains invalid value",
            ));
        }
        Ok(runners
            .into_iter()
            .filter(|r| self.scope.as_deref().is_none_or(|s| by(s, r)))
            .filter(|r| self.runner_type.as_deref().is_none_or(|t| by(t, r)))
            .filter(|r| self.status.as_deref().is_none_or(|s| by(s, r)))
            .filter(|r| self.paused.is_none_or(|p| r.paused == p))
            .filter(|r| {
                self.version_prefix.as_deref().is_none_or(|v| {
                    r.managers
                        .iter()
                        .any(|m| m.version.as_deref().is_some_and(|mv| mv.starts_with(v)))
                })
            })
            .filter(|r| {
                self.tags
                    .as_ref()
                    .is_none_or(|tags| tags.iter().all(|t| r.tag_list.contains(t)))
            })
            .collect())
    }
}

/// Renders and paginates a filtered list.
pub fn list_response(
    st: &Db,
    runners: Vec<&Runner>,
    f: &Filters,
    base: &str,
    uri: &Uri,
) -> Response {
    let items: Vec<Value> = runners
        .into_iter()
        .map(|r| entities::runner(st, r, base))
        .collect();
    pagination::respond(
        items,
        f.page,
        !st.settings.omit_pagination_totals,
        base,
        uri,
    )
}

/// `GET /runners`: runners the user owns (Maintainer of their project, Owner of their group).
pub async fn list_owned(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, READ)?;
        let f = Filters::read(&params, true)?;
        let runners = f.apply(st, st.owned_runners(&caller), STATUSES_INCL_DEPRECATED)?;
        Ok(list_response(st, runners, &f, &base, &uri))
    })
}

/// `GET /runners/all`: every runner, administrators only.
pub async fn list_all(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, READ)?;
        let f = Filters::read(&params, true)?;
        if !caller.admin {
            return Err(ApiError::forbidden(None));
        }
        let runners = f.apply(st, st.runners.values().collect(), ALL_SCOPES)?;
        Ok(list_response(st, runners, &f, &base, &uri))
    })
}

fn get_runner<'a>(st: &'a Db, raw_id: &str) -> ApiResult<&'a Runner> {
    let id = int_id(raw_id, "id")?;
    st.runners
        .get(&id)
        .ok_or_else(|| ApiError::not_found("Runner"))
}

fn show_allowed(st: &Db, c: &Caller, r: &Runner) -> ApiResult<()> {
    if st.can_read_runner(c, r) {
        Ok(())
    } else {
        Err(ApiError::forbidden(Some("No access granted")))
    }
}

fn update_allowed(st: &Db, c: &Caller, r: &Runner) -> ApiResult<()> {
    if st.can_update_runner(c, r) {
        Ok(())
    } else {
        Err(ApiError::forbidden(Some("No access granted")))
    }
}

/// `GET /runners/:id`.
pub async fn show(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, READ_BY_ID)?;
        let r = get_runner(st, &id)?;
        show_allowed(st, &caller, r)?;
        Ok(Json(entities::runner_details(st, r, &caller, &base)).into_response())
    })
}

/// `GET /runners/:id/managers`.
pub async fn managers(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, READ_BY_ID)?;
        let r = get_runner(st, &id)?;
        show_allowed(st, &caller, r)?;
        let now = st.now();
        let list: Vec<Value> = r
            .managers
            .iter()
            .map(|m| entities::manager(m, now))
            .collect();
        Ok(Json(list).into_response())
    })
}

const UPDATABLE: &[&str] = &[
    "description",
    "active",
    "paused",
    "tag_list",
    "run_untagged",
    "locked",
    "access_level",
    "maximum_timeout",
    "maintenance_note",
];

/// `PUT /runners/:id`: `tag_list` replaces the whole list; validation as the model does it.
pub async fn update(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, WRITE_BY_ID)?;
        let mut c = params.check();
        let id = match id.trim().parse::<u64>() {
            Ok(i) => Some(i),
            Err(_) => {
                c.error("id is invalid".into());
                None
            }
        };
        let fields = RunnerFields::read(&mut c, &params);
        c.at_least_one_of(UPDATABLE);
        c.finish()?;
        let id = id.ok_or_else(|| ApiError::param("id is invalid"))?;
        let r = st
            .runners
            .get(&id)
            .ok_or_else(|| ApiError::not_found("Runner"))?;
        update_allowed(st, &caller, r)?;
        apply_update(st, id, &fields)?;
        Ok(Json(entities::runner_details(
            st,
            &st.runners[&id],
            &caller,
            &base,
        ))
        .into_response())
    })
}

/// Validates and applies an update; shared with the simulator's "edit in the UI" control.
pub fn apply_update(st: &mut Db, id: u64, f: &RunnerFields) -> ApiResult<()> {
    let r = &st.runners[&id];
    let tags = f.tag_list.clone().unwrap_or_else(|| r.tag_list.clone());
    let run_untagged = f.run_untagged.unwrap_or(r.run_untagged);
    let description = f.description.clone().or_else(|| r.description.clone());
    let note = f
        .maintenance_note
        .clone()
        .or_else(|| r.maintenance_note.clone());
    let timeout = f.maximum_timeout.or(r.maximum_timeout);
    let errors = validate_runner(
        run_untagged,
        &tags,
        f.tag_list.is_some(),
        f.description.as_deref(),
        timeout,
        f.maintenance_note.as_deref(),
    );
    if !errors.is_empty() {
        return Err(validation_error(&errors));
    }
    let now = st.now();
    let r = st.runners.get_mut(&id).expect("runner exists");
    r.tag_list = tags;
    r.run_untagged = run_untagged;
    r.description = description;
    r.maintenance_note = note;
    r.maximum_timeout = timeout;
    if let Some(p) = f.paused {
        r.paused = p;
    }
    if let Some(l) = f.locked {
        r.locked = l;
    }
    if let Some(a) = f.access_level.as_deref().and_then(AccessLevel::parse) {
        r.access_level = a;
    }
    r.updated_at = now;
    st.touch();
    Ok(())
}

/// `DELETE /runners/:id`.
pub async fn delete(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, WRITE_BY_ID)?;
        let r = get_runner(st, &id)?;
        if !caller.admin {
            if r.project_ids.len() > 1 {
                return Err(ApiError::forbidden(Some(
                    "Runner associated with more than one project",
                )));
            }
            update_allowed(st, &caller, r)?;
        }
        check_unmodified_since(&headers, r.updated_at)?;
        let id = r.id;
        st.delete_runner(id);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// `POST /runners/:id/reset_authentication_token`.
pub async fn reset_token(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, WRITE_BY_ID)?;
        let r = get_runner(st, &id)?;
        update_allowed(st, &caller, r)?;
        let id = r.id;
        check_rotation_allowed(st, id)?;
        let (token, expires) = st.reset_runner_token(id).expect("runner exists");
        Ok((
            StatusCode::CREATED,
            Json(entities::reset_token(&token, expires)),
        )
            .into_response())
    })
}

/// `POST /runners/reset_registration_token`: the instance registration token (admins).
pub async fn reset_instance_registration_token(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, WRITE)?;
        if !caller.admin {
            return Err(ApiError::forbidden(None));
        }
        st.instance_runners_token = crate::sim::tokens::registration_token(&mut st.rng);
        st.touch();
        Ok((
            StatusCode::CREATED,
            Json(entities::reset_token(&st.instance_runners_token, None)),
        )
            .into_response())
    })
}
