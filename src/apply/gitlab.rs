//! The GitLab half of apply: each request step sent as the plan shows it, and GitLab's
//! refusals turned into diagnostics that say what to do.

use serde_json::Value;

use super::Context;
use crate::desired::{Runner, Scope};
use crate::diag::Problem;
use crate::plan::Request;
use crate::remote::{Client, Credentials, RemoteError};

fn gitlab<'a>(cx: &'a Context) -> Result<&'a Client, Problem> {
    cx.gitlab.map(|(c, _)| c).ok_or_else(|| {
        Problem::error(
            "internal",
            "the plan has GitLab steps but apply has no GitLab client",
        )
    })
}

pub(super) fn problem(what: &str, e: RemoteError) -> Problem {
    let help = match &e {
        RemoteError::Transient { .. } => {
            "GitLab did not answer definitely; what was done so far is on disk, and running apply \
             again continues from there without duplicating anything"
        }
        _ => "what was done so far is on disk; fix the cause and run apply again",
    };
    Problem::error("gitlab", format!("{what}: {e}")).help(help)
}

/// The list endpoint of a registration's scope, where an interrupted one is looked for.
pub(super) fn list_path(body: &Value) -> String {
    if let Some(id) = body.get("project_id").and_then(Value::as_i64) {
        format!("/projects/{id}/runners")
    } else if let Some(id) = body.get("group_id").and_then(Value::as_i64) {
        format!("/groups/{id}/runners")
    } else {
        "/runners/all".to_string()
    }
}

/// The role a registration needs, for a 403.
pub(super) fn role_help(r: &Runner) -> &'static str {
    match r.body.scope.as_ref().map(|s| &s.value) {
        Some(Scope::Instance) => "instance runners need an administrator's token",
        Some(Scope::Group(_)) => "group runners need the Owner role in the group",
        _ => "project runners need the Maintainer role (or higher) in the project",
    }
}

pub(super) async fn register(
    cx: &Context<'_>,
    r: &Runner,
    body: &Value,
) -> Result<Credentials, Problem> {
    let client = gitlab(cx)?;
    let name = &r.name.value;
    client
        .create_runner(body)
        .await
        .map_err(|e| match e.status() {
            Some(403) => Problem::error(
                "gitlab_role",
                format!("GitLab does not let this token register {name}: {e}"),
            )
            .help(role_help(r)),
            _ => problem(&format!("registering {name}"), e),
        })
}

pub(super) async fn register_legacy(
    cx: &Context<'_>,
    r: &Runner,
    request: &Request,
) -> Result<Credentials, Problem> {
    let client = gitlab(cx)?;
    let name = &r.name.value;
    let reg = r.body.registration_token.as_ref().ok_or_else(|| {
        Problem::error("internal", format!("{name} declares no registration token"))
    })?;
    let mut body = request.body.clone().unwrap_or_default();
    body["token"] = crate::views::resolve(cx.desired, reg)?.into();
    client
        .register_legacy(&body)
        .await
        .map_err(|e| match e.status() {
            Some(410) => Problem::error(
                "legacy_registration_disabled",
                format!("GitLab refuses registration tokens (410 Gone) for {name}"),
            )
            .help(
                "GitLab 17.0 and later disable the legacy workflow by default: remove \
                 registration_token and give the gitlab node an access token with the \
                 create_runner scope, so runnerform registers with POST /user/runners",
            ),
            Some(403) => Problem::error(
                "legacy_registration",
                format!("GitLab rejects the registration token of {name} (403)"),
            )
            .help("check the token under the scope's CI/CD settings, Runners"),
            _ => problem(&format!("registering {name}"), e),
        })
}

pub(super) async fn reset_token(
    cx: &Context<'_>,
    name: &str,
    id: i64,
) -> Result<Credentials, Problem> {
    gitlab(cx)?
        .reset_token(id)
        .await
        .map_err(|e| problem(&format!("resetting the token of {name} (runner {id})"), e))
}

/// Verifies the token a runner is declared with; returns the runner's id and the token.
pub(super) async fn verify_declared(
    cx: &Context<'_>,
    r: &Runner,
    system_id: Option<&str>,
) -> Result<(i64, String), Problem> {
    let client = gitlab(cx)?;
    let name = &r.name.value;
    let t = r
        .body
        .token
        .as_ref()
        .ok_or_else(|| Problem::error("internal", format!("{name} declares no token")))?;
    let token = crate::views::resolve(cx.desired, t)?;
    match client.verify(&token, system_id).await {
        Ok(id) => Ok((id, token)),
        Err(RemoteError::Definite { status, message }) => Err(Problem::error(
            "token_rejected",
            format!("GitLab rejects the token declared for runner {name} ({status}: {message})"),
        )
        .at(&cx.desired.sources, t.loc, "this token")
        .help(
            "a token for adoption must be a live runner authentication token (glrt-…); remove \
             the token line to register a new runner instead",
        )),
        Err(e) => Err(problem(&format!("verifying the token of {name}"), e)),
    }
}

pub(super) async fn update(
    cx: &Context<'_>,
    name: &str,
    id: i64,
    request: &Request,
) -> Result<(), Problem> {
    let body = request.body.clone().unwrap_or_default();
    gitlab(cx)?
        .update_runner(id, &body)
        .await
        .map_err(|e| problem(&format!("updating {name} (runner {id})"), e))
}

pub(super) async fn delete(cx: &Context<'_>, id: i64) -> Result<(), Problem> {
    match gitlab(cx)?.delete_runner(id).await {
        // Already gone is what a delete wants.
        Ok(()) | Err(RemoteError::Definite { status: 404, .. }) => Ok(()),
        Err(e) => Err(problem(&format!("deleting runner {id}"), e)),
    }
}

pub(super) async fn delete_by_token(
    cx: &Context<'_>,
    name: &str,
    token: &str,
) -> Result<(), Problem> {
    match gitlab(cx)?.delete_by_token(token).await {
        // 403: GitLab no longer knows the token, so nothing is left to delete.
        Ok(()) | Err(RemoteError::Definite { status: 403, .. }) => Ok(()),
        Err(e) => Err(problem(&format!("deleting {name}"), e)),
    }
}
