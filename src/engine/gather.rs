//! Gathering GitLab's view for a plan: the access token is checked first (its scopes decide
//! what may be asked), then every runner, group and project the plan is about is read, at most
//! `concurrency` requests at a time (fewer while GitLab throttles or slows down).

use std::time::Duration;

use crate::desired::{Desired, GitLab, SecretRef};
use crate::diag::Problem;
use crate::local::expand::Environment;
use crate::remote::{Client, ClientOptions, RemoteView, TokenInfo, refresh};
use crate::views::{self, LocalViews};

/// GitLab, as far as an online plan and its apply need it.
pub struct Online {
    pub client: Client,
    pub remote: RemoteView,
    pub runtime: tokio::runtime::Runtime,
    /// What the access token may do.
    pub token: TokenInfo,
}

/// The declared GitLab and its access token, or a diagnostic saying what to declare.
pub fn gitlab_node(d: &Desired) -> Result<(&GitLab, &SecretRef), Problem> {
    let Some(g) = &d.gitlab else {
        return Err(
            Problem::error("no_gitlab", "the KDL file declares no GitLab instance")
                .help("add gitlab \"https://…\" { token env=\"GITLAB_TOKEN\" }, or pass --offline"),
        );
    };
    let Some(token_ref) = &g.token else {
        return Err(Problem::error("no_token", "the gitlab node has no access token")
            .at(&d.sources, g.loc, "no token")
            .help("add token env=\"GITLAB_TOKEN\" (a token with the api scope, or create_runner and manage_runner), or pass --offline"));
    };
    Ok((g, token_ref))
}

/// Checks the access token, then asks GitLab about every runner the plan is about.
pub fn connect(
    d: &Desired,
    views: &LocalViews,
    env: &Environment,
    concurrency: usize,
    verify_tokens: bool,
    observer: Option<&std::sync::Arc<dyn super::Observer>>,
) -> Result<Online, Problem> {
    let (g, token_ref) = gitlab_node(d)?;
    let (client, runtime) = client_for(d, g, token_ref)?;
    // One pace for the whole plan and its apply: what GitLab said of its limits while
    // refreshing still holds when applying.
    let mut client = client.with_pace(crate::remote::Pace::new(concurrency));
    if let Some(o) = observer {
        client.observe(o.clone());
    }
    let mut q =
        crate::plan::questions::questions(d, &views.local, &views.state, env, verify_tokens);
    if verify_tokens {
        // A runner declared with its token and not in config.toml: its token says which
        // runner it is.
        let entries = crate::plan::matcher::entries(&views.local, env);
        let in_file: std::collections::HashSet<&str> =
            entries.iter().map(|e| e.name.as_str()).collect();
        for r in &d.runners {
            let renamed_in_file = r
                .body
                .renamed_from
                .as_ref()
                .is_some_and(|o| in_file.contains(o.value.as_str()));
            if let Some(t) = &r.body.token
                && !in_file.contains(r.name.value.as_str())
                && !renamed_in_file
            {
                q.adopt.push((r.name.value.clone(), views::resolve(d, t)?));
            }
        }
    }
    q.system_id = system_id(&views.local.path);
    if let Some(o) = observer {
        // The token check, one request per question, and a GET for each runner a verify
        // may name.
        let verifies = q.tokens.len() + q.adopt.len();
        o.reading(
            1 + q.namespaces.len()
                + verifies
                + q.check_tokens.len()
                + q.intents.len()
                + q.runner_ids.len()
                + verifies,
        );
    }
    let (remote, token) = runtime.block_on(async {
        let token = check_token(&client, &g.url.value, !q.namespaces.is_empty()).await?;
        let remote = refresh(&client, q, concurrency).await.map_err(|e| {
            let a = crate::remote::advice::refresh(&g.url.value, &e);
            Problem::error("gitlab", a.message).help(a.hint)
        })?;
        Ok::<_, Problem>((remote, token))
    })?;
    Ok(Online {
        client,
        remote,
        runtime,
        token,
    })
}

/// gitlab-runner's id for this host, from `.runner_system_id` beside config.toml.
pub fn system_id(config_toml: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(config_toml.parent()?.join(".runner_system_id")).ok()?;
    let id = text.trim();
    let valid = id.len() == 14
        && (id.starts_with("s_") || id.starts_with("r_"))
        && id[2..].chars().all(|c| c.is_ascii_alphanumeric());
    valid.then(|| id.to_string())
}

/// A GitLab client and a runtime to drive it, from the gitlab node.
pub fn client_for(
    d: &Desired,
    g: &GitLab,
    token_ref: &SecretRef,
) -> Result<(Client, tokio::runtime::Runtime), Problem> {
    let token = views::resolve(d, token_ref)?;
    let client = Client::new(&ClientOptions {
        token: Some(token),
        // Relative to the KDL file, like secret files.
        ca_file: g.ca_file.as_ref().map(|c| {
            let base = d
                .sources
                .get(c.loc.file)
                .path
                .parent()
                .map(|p| p.to_path_buf());
            base.unwrap_or_default().join(&c.value)
        }),
        timeout: Duration::from_secs(g.timeout.as_ref().map_or(30, |t| t.value)),
        ..ClientOptions::new(&g.url.value)
    })
    .map_err(|e| Problem::error("gitlab", e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Problem::error("runtime", e.to_string()))?;
    Ok((client, runtime))
}

/// `needs_read`: group or project paths must be resolved to ids, which takes `read_api`.
async fn check_token(client: &Client, url: &str, needs_read: bool) -> Result<TokenInfo, Problem> {
    let info = client.token_info().await.map_err(|e| {
        let a = crate::remote::advice::token_check(url, &e);
        Problem::error("gitlab_token", a.message).help(a.hint)
    })?;
    let has = |s: &str| info.scopes.iter().any(|x| x == s);
    let missing: Vec<&str> = if has("api") {
        Vec::new()
    } else {
        ["create_runner", "manage_runner", "read_api"]
            .into_iter()
            .filter(|s| *s != "read_api" || needs_read)
            .filter(|s| !has(s))
            .collect()
    };
    if !missing.is_empty() || !info.active {
        return Err(Problem::error(
            "gitlab_token",
            if info.active {
                format!(
                    "the access token lacks the {} scope{}",
                    missing.join(", "),
                    if missing.len() > 1 { "s" } else { "" }
                )
            } else {
                "the access token is not active".to_string()
            },
        )
        .help(format!(
            "runnerform needs a token with the api scope, or with create_runner and manage_runner (and read_api to look up groups and projects by path; or name them by id) (it has: {})",
            info.scopes.join(", ")
        )));
    }
    Ok(info)
}
