//! Refresh: what GitLab says of every runner a plan is about, gathered concurrently.
//!
//! Only definite answers end up in the view. A runner that GitLab does not answer for (after
//! retries) makes the whole refresh fail: planning on a partial view could turn "GitLab was
//! slow" into "the runner is gone", which is how other tools delete runners by accident.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{Claim, Client, RemoteError, RemoteRunner};

/// GitLab's definite answer about one runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteState {
    Exists(RemoteRunner),
    /// 403/404/410/422: deleted, or its owner is gone, or its token is rejected.
    Gone {
        status: u16,
        message: String,
    },
}

/// Everything the plan needs from GitLab.
#[derive(Debug, Clone, Default)]
pub struct RemoteView {
    /// Declared groups and projects: (`groups`|`projects`, full path) to id.
    pub namespaces: BTreeMap<(String, String), i64>,
    /// Runners by id.
    pub runners: BTreeMap<i64, RemoteState>,
    /// Runner ids learned by verifying tokens of entries that have no id, by token.
    pub verified: BTreeMap<String, Result<i64, (u16, String)>>,
    /// For registrations an earlier apply started: what became of each, by declared name.
    pub claims: BTreeMap<String, Claim>,
    /// Runners declared with an existing token: what verifying it said, by declared name.
    pub adopted: BTreeMap<String, Result<i64, (u16, String)>>,
    /// Entry tokens GitLab rejected although their runner exists (reset elsewhere), by id.
    pub rejected: BTreeMap<i64, (u16, String)>,
    /// When the view was taken (Unix seconds), and how close to expiry a token is rotated.
    pub now: i64,
    pub rotate_within: i64,
}

impl RemoteView {
    pub fn runner(&self, id: i64) -> Option<&RemoteState> {
        self.runners.get(&id)
    }

    /// What became of the registration an interrupted apply started for `name`.
    pub fn claim_for(&self, name: &str) -> Option<&Claim> {
        self.claims.get(name)
    }

    pub fn namespace(&self, kind: &str, path: &str) -> Option<i64> {
        self.namespaces
            .get(&(kind.to_string(), path.to_string()))
            .copied()
    }
}

/// What to ask GitLab about.
#[derive(Debug, Default)]
pub struct Questions {
    pub namespaces: Vec<(String, String)>,
    pub runner_ids: Vec<i64>,
    /// Entry tokens to verify (entries that have no id).
    pub tokens: Vec<String>,
    /// Interrupted registrations, with the marker each was registered with.
    pub intents: Vec<crate::local::state::Intent>,
    /// Declared runners to adopt by token: (name, token).
    pub adopt: Vec<(String, String)>,
    /// Entry tokens to check (`--verify-tokens`): (runner id, token).
    pub check_tokens: Vec<(i64, String)>,
    /// This host's gitlab-runner system id, sent with every verify.
    pub system_id: Option<String>,
}

/// Why a refresh failed.
#[derive(Debug)]
pub enum RefreshError {
    /// A declared group or project does not exist (or the token cannot see it).
    UnknownNamespace {
        kind: String,
        path: String,
        error: RemoteError,
    },
    /// No definite answer: nothing may be planned on this.
    Unanswered { what: String, error: RemoteError },
}

impl std::fmt::Display for RefreshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefreshError::UnknownNamespace { kind, path, error } => {
                let kind = kind.trim_end_matches('s');
                if error.status() == Some(403) {
                    write!(
                        f,
                        "{kind} {path} cannot be read with this access token ({error})"
                    )
                } else {
                    write!(f, "{kind} {path} cannot be found on GitLab ({error})")
                }
            }
            RefreshError::Unanswered { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

/// Asks GitLab every question, at most `concurrency` requests at a time.
pub async fn refresh(
    client: &Client,
    q: Questions,
    concurrency: usize,
) -> Result<RemoteView, RefreshError> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut view = RemoteView::default();

    let mut tasks = tokio::task::JoinSet::new();
    for (kind, path) in q.namespaces {
        let (c, sem) = (client.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = c.namespace_id(&kind, &path).await;
            (kind, path, r)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (kind, path, r) = done.expect("refresh task");
        match r {
            Ok(id) => {
                view.namespaces.insert((kind, path), id);
            }
            Err(error @ RemoteError::Definite { .. }) => {
                return Err(RefreshError::UnknownNamespace { kind, path, error });
            }
            Err(error) => {
                return Err(RefreshError::Unanswered {
                    what: format!("looking up {path}"),
                    error,
                });
            }
        }
    }

    let system_id = q.system_id.clone();
    let mut verifies = tokio::task::JoinSet::new();
    for token in q.tokens {
        let (c, sem, sid) = (client.clone(), sem.clone(), system_id.clone());
        verifies.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = c.verify(&token, sid.as_deref()).await;
            (token, r)
        });
    }
    let mut ids = q.runner_ids;
    while let Some(done) = verifies.join_next().await {
        let (token, r) = done.expect("verify task");
        match r {
            Ok(id) => {
                ids.push(id);
                view.verified.insert(token, Ok(id));
            }
            Err(RemoteError::Definite { status, message }) => {
                view.verified.insert(token, Err((status, message)));
            }
            Err(error) => {
                return Err(RefreshError::Unanswered {
                    what: "verifying a runner token".into(),
                    error,
                });
            }
        }
    }

    for (name, token) in q.adopt {
        match client.verify(&token, system_id.as_deref()).await {
            Ok(id) => {
                ids.push(id);
                view.adopted.insert(name, Ok(id));
            }
            Err(RemoteError::Definite { status, message }) => {
                view.adopted.insert(name, Err((status, message)));
            }
            Err(error) => {
                return Err(RefreshError::Unanswered {
                    what: format!("verifying the token declared for {name}"),
                    error,
                });
            }
        }
    }
    for (id, token) in q.check_tokens {
        match client.verify(&token, system_id.as_deref()).await {
            Ok(_) => {}
            Err(RemoteError::Definite {
                status: status @ (401 | 403),
                message,
            }) => {
                view.rejected.insert(id, (status, message));
            }
            Err(RemoteError::Definite { .. }) => {}
            Err(error) => {
                return Err(RefreshError::Unanswered {
                    what: format!("verifying the token of runner {id}"),
                    error,
                });
            }
        }
    }
    for i in q.intents {
        match client
            .claim(&i.list_path, &i.runner_type, &i.description, &i.marker)
            .await
        {
            Ok(claim) => {
                view.claims.insert(i.name, claim);
            }
            Err(error) => {
                return Err(RefreshError::Unanswered {
                    what: format!(
                        "looking for the runner an interrupted apply registered for {}",
                        i.name
                    ),
                    error,
                });
            }
        }
    }

    ids.sort_unstable();
    ids.dedup();
    let mut gets = tokio::task::JoinSet::new();
    for id in ids.into_iter().filter(|id| *id > 0) {
        let (c, sem) = (client.clone(), sem.clone());
        gets.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (id, c.runner(id).await)
        });
    }
    while let Some(done) = gets.join_next().await {
        let (id, r) = done.expect("runner task");
        match r {
            Ok(runner) => {
                view.runners.insert(id, RemoteState::Exists(runner));
            }
            // With an access token, 403 means "you may not look", not "it is gone".
            Err(RemoteError::Definite {
                status: status @ (404 | 410),
                message,
            }) => {
                view.runners
                    .insert(id, RemoteState::Gone { status, message });
            }
            Err(error) => {
                return Err(RefreshError::Unanswered {
                    what: format!("reading runner {id}"),
                    error,
                });
            }
        }
    }
    Ok(view)
}
