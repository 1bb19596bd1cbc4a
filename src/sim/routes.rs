//! The route table: GitLab's API under `/api/v4`, the simulator's control under `/-/sim`.

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};

use super::api::{meta, namespaces, runner_token, runners, user_runners};
use super::error::ApiError;
use super::{Shared, control, observe};

async fn no_route() -> Response {
    ApiError::no_route().into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::method_not_allowed().into_response()
}

/// Grape routes a word like `verify` with another method to `/:id`, which then fails the
/// integer check.
async fn id_is_invalid() -> Response {
    ApiError::param("id is invalid").into_response()
}

async fn runner_id_is_invalid() -> Response {
    ApiError::param("runner_id is invalid").into_response()
}

fn m(r: MethodRouter<Arc<Shared>>) -> MethodRouter<Arc<Shared>> {
    r.fallback(method_not_allowed)
}

fn word(r: MethodRouter<Arc<Shared>>) -> MethodRouter<Arc<Shared>> {
    r.fallback(id_is_invalid)
}

pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/user", m(get(meta::current_user)))
        .route("/user/runners", m(post(user_runners::create)))
        .route("/version", m(get(meta::version)))
        .route("/metadata", m(get(meta::version)))
        .route("/personal_access_tokens/self", m(get(meta::token_self)))
        .route(
            "/runners",
            m(get(runners::list_owned)
                .post(runner_token::register)
                .delete(runner_token::delete)),
        )
        .route("/runners/all", word(get(runners::list_all)))
        .route("/runners/verify", word(post(runner_token::verify)))
        .route(
            "/runners/managers",
            word(delete(runner_token::delete_manager)),
        )
        .route(
            "/runners/reset_authentication_token",
            word(post(runner_token::reset_token)),
        )
        .route(
            "/runners/reset_registration_token",
            word(post(runners::reset_instance_registration_token)),
        )
        .route(
            "/runners/{id}",
            m(get(runners::show)
                .put(runners::update)
                .delete(runners::delete)),
        )
        .route("/runners/{id}/managers", m(get(runners::managers)))
        .route(
            "/runners/{id}/reset_authentication_token",
            m(post(runners::reset_token)),
        )
        .route("/jobs/request", m(post(runner_token::request_job)))
        .route("/projects/{id}", m(get(namespaces::project)))
        .route(
            "/projects/{id}/runners",
            m(get(namespaces::project_runners).post(namespaces::assign_runner)),
        )
        .route(
            "/projects/{id}/runners/reset_registration_token",
            post(namespaces::reset_project_registration_token).fallback(runner_id_is_invalid),
        )
        .route(
            "/projects/{id}/runners/{runner_id}",
            m(delete(namespaces::unassign_runner)),
        )
        .route(
            "/projects/{id}/members/all/{user_id}",
            m(get(namespaces::project_member)),
        )
        .route("/groups/{id}", m(get(namespaces::group)))
        .route(
            "/groups/{id}/members/all/{user_id}",
            m(get(namespaces::group_member)),
        )
        .route("/groups/{id}/runners", m(get(namespaces::group_runners)))
        .route(
            "/groups/{id}/runners/reset_registration_token",
            m(post(namespaces::reset_group_registration_token)),
        );

    Router::new()
        .nest("/api/v4", api)
        .nest(observe::CONTROL_PREFIX, control::routes())
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            observe::observe,
        ))
        .with_state(shared)
}
