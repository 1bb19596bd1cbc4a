//! Probing endpoints (reference §2.12): version, the current user, and a token's own
//! description (which works with any scope, so a client can check its scopes first).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::sim::Shared;
use crate::sim::auth::{API, Credentials, READ_API, READ_USER};
use crate::sim::entities::{self, BaseUrl};
use crate::sim::error::{ApiError, ApiResult};

/// `GET /version` and `GET /metadata`.
pub async fn version(State(app): State<Arc<Shared>>, cred: Credentials) -> ApiResult<Response> {
    app.with(|st| {
        st.authenticate(&cred, &[API, READ_API, READ_USER])?;
        Ok(Json(json!({
            "version": st.settings.version,
            "revision": st.settings.revision,
            "kas": {
                "enabled": false,
                "externalUrl": null,
                "externalK8sProxyUrl": null,
                "version": null,
            },
            "enterprise": st.settings.version.ends_with("-ee"),
        }))
        .into_response())
    })
}

/// `GET /user`.
pub async fn current_user(
    State(app): State<Arc<Shared>>,
    cred: Credentials,
    BaseUrl(base): BaseUrl,
) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, &[API, READ_API, READ_USER])?;
        let user = st
            .users
            .get(&caller.user_id)
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Json(entities::current_user(user, &base)).into_response())
    })
}

/// `GET /personal_access_tokens/self`.
pub async fn token_self(State(app): State<Arc<Shared>>, cred: Credentials) -> ApiResult<Response> {
    app.with(|st| {
        let caller = st.authenticate(&cred, &[])?;
        let now = st.now();
        let token = &st.tokens[&caller.token_id];
        Ok(Json(entities::access_token(token, now)).into_response())
    })
}
