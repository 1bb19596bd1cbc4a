//! Error responses in the shapes GitLab's API helpers produce (reference §0): `message` for
//! helper errors and model validation, `error` for parameter validation and OAuth-style
//! token errors.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, body: Value) -> Self {
        ApiError { status, body }
    }

    fn message(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::new(status, json!({ "message": message.into() }))
    }

    /// `render_api_error!(message, status)`: the message as given.
    pub fn api(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::message(status, message)
    }

    /// `unauthorized!`: an unknown or missing token.
    pub fn unauthorized() -> Self {
        ApiError::message(StatusCode::UNAUTHORIZED, "401 Unauthorized")
    }

    /// `forbidden!(reason)`.
    pub fn forbidden(reason: Option<&str>) -> Self {
        ApiError::message(
            StatusCode::FORBIDDEN,
            match reason {
                Some(r) => format!("403 Forbidden - {r}"),
                None => "403 Forbidden".into(),
            },
        )
    }

    /// `bad_request!(reason)`.
    pub fn bad_request(reason: &str) -> Self {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("400 Bad request - {reason}"),
        )
    }

    /// `not_found!(resource)`: `404 Runner Not Found`.
    pub fn not_found(resource: &str) -> Self {
        ApiError::message(StatusCode::NOT_FOUND, format!("404 {resource} Not Found"))
    }

    /// Grape's parameter validation: `{"error": "runner_type is missing"}`.
    pub fn param(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, json!({ "error": message.into() }))
    }

    /// A model's validation errors: `{"message": {"tags_list": ["..."]}}`.
    pub fn validation(errors: &BTreeMap<String, Vec<String>>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, json!({ "message": errors }))
    }

    pub fn unprocessable(message: &str) -> Self {
        ApiError::message(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn gone(reason: &str) -> Self {
        ApiError::message(StatusCode::GONE, format!("410 Gone - {reason}"))
    }

    pub fn precondition_failed() -> Self {
        ApiError::message(StatusCode::PRECONDITION_FAILED, "412 Precondition Failed")
    }

    /// A route GitLab does not have.
    pub fn no_route() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, json!({ "error": "404 Not Found" }))
    }

    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "error": "405 Not Allowed" }),
        )
    }

    pub fn token_expired() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            json!({
                "error": "invalid_token",
                "error_description": "Token is expired. You can either do re-authorization or token refresh."
            }),
        )
    }

    pub fn token_revoked() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            json!({
                "error": "invalid_token",
                "error_description": "Token was revoked. You have to re-authorize from the user."
            }),
        )
    }

    /// The token is fine but its scopes do not cover the endpoint; `scope` lists what would.
    pub fn insufficient_scope(allowed: &[&str]) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            json!({
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": allowed.join(" "),
            }),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;
