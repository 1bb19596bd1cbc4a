//! `POST /user/runners`: create a runner with a user token (the new workflow, reference §2.1).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{RunnerFields, sentence, validate_runner};
use crate::sim::Shared;
use crate::sim::auth::{API, CREATE_RUNNER, Credentials};
use crate::sim::clock::{self, DAY, MINUTE};
use crate::sim::entities;
use crate::sim::error::{ApiError, ApiResult};
use crate::sim::params::Params;
use crate::sim::state::{AccessLevel, NewRunner, RunnerType};
use crate::sim::tokens::TokenFamily;

pub async fn create(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    params: Params,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, &[API, CREATE_RUNNER])?;

        let mut c = params.check();
        let runner_type = c.require_one_of("runner_type", &RunnerType::ALL);
        let group_id = match runner_type.as_deref() {
            Some("group_type") => c.require_int("group_id"),
            _ => None,
        };
        let project_id = match runner_type.as_deref() {
            Some("project_type") => c.require_int("project_id"),
            _ => None,
        };
        let fields = RunnerFields::read(&mut c, &params);
        let expires_raw = c.string("token_expires_at");
        let deadline_raw = c.string("token_rotation_deadline");
        let expires_at = expires_raw.as_deref().and_then(|s| {
            let t = clock::parse_iso(s);
            if t.is_none() {
                c.error("token_expires_at is invalid".into());
            }
            t
        });
        let rotation_deadline = deadline_raw.as_deref().and_then(|s| {
            let t = clock::parse_iso(s);
            if t.is_none() {
                c.error("token_rotation_deadline is invalid".into());
            }
            t
        });
        c.finish()?;
        let runner_type = runner_type
            .as_deref()
            .and_then(RunnerType::parse)
            .ok_or_else(|| ApiError::param("runner_type is missing"))?;

        // CreateRunnerService: the scope must exist, then the user must be allowed there.
        let (group_id, project_id) = match runner_type {
            RunnerType::InstanceType => {
                if !caller.admin {
                    return Err(ApiError::forbidden(Some("Insufficient permissions")));
                }
                (None, None)
            }
            RunnerType::GroupType => {
                let g = group_id
                    .and_then(|g| u64::try_from(g).ok())
                    .filter(|g| st.groups.contains_key(g))
                    .ok_or_else(|| ApiError::bad_request("Missing/invalid group"))?;
                if !st.can_create_group_runner(&caller, g) {
                    return Err(ApiError::forbidden(Some("Insufficient permissions")));
                }
                (Some(g), None)
            }
            RunnerType::ProjectType => {
                let p = project_id
                    .and_then(|p| u64::try_from(p).ok())
                    .filter(|p| st.projects.contains_key(p))
                    .ok_or_else(|| ApiError::bad_request("Missing/invalid project"))?;
                if !st.can_create_project_runner(&caller, p) {
                    return Err(ApiError::forbidden(Some("Insufficient permissions")));
                }
                (None, Some(p))
            }
        };

        let tags = fields.tag_list.clone().unwrap_or_default();
        let run_untagged = fields.run_untagged.unwrap_or(true);
        let mut errors = validate_runner(
            run_untagged,
            &tags,
            true,
            fields.description.as_deref(),
            fields.maximum_timeout,
            fields.maintenance_note.as_deref(),
        );
        // EE 18.10+: an explicit first-token expiry, 5 minutes to 15 days ahead, and an
        // optional rotation deadline no later than it.
        let now = st.now();
        if let Some(e) = expires_at
            && (e < now + 5 * MINUTE || e > now + 15 * DAY)
        {
            errors.push((
                "token_expires_at",
                "must be between 5 minutes and 15 days from now".to_string(),
            ));
        }
        match (rotation_deadline, expires_at) {
            (Some(_), None) => errors.push((
                "token_rotation_deadline",
                "requires token_expires_at".to_string(),
            )),
            (Some(d), Some(e)) if d > e => errors.push((
                "token_rotation_deadline",
                "must not be after token_expires_at".to_string(),
            )),
            _ => {}
        }
        if !errors.is_empty() {
            return Err(ApiError::bad_request(&sentence(&errors)));
        }

        let id = st.create_runner(NewRunner {
            runner_type,
            group_id,
            project_id,
            name: None,
            description: fields.description,
            maintenance_note: fields.maintenance_note,
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
            creator_id: Some(caller.user_id),
            family: TokenFamily::Created,
            token_expires_at: expires_at,
            token_rotation_deadline: rotation_deadline,
        });
        Ok((
            StatusCode::CREATED,
            Json(entities::registration(&st.runners[&id])),
        )
            .into_response())
    })
}
