//! Refresh: what GitLab says of every runner a plan is about, gathered concurrently.
//!
//! Only definite answers end up in the view. A runner that GitLab does not answer for (after
//! retries) makes the whole refresh fail: planning on a partial view could turn "GitLab was
//! slow" into "the runner is gone", which is how other tools delete runners by accident.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

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

/// One question to GitLab.
enum Ask {
    Namespace(String, String),
    /// An entry's token, to learn its runner's id.
    Verify(String),
    /// A declared token to adopt, by declared name.
    Adopt(String, String),
    /// An entry's token to check (`--verify-tokens`), by runner id.
    Check(i64, String),
    /// An interrupted registration, with its claim marker.
    Intent(crate::local::state::Intent),
    Runner(i64),
}

/// GitLab's answer to one question.
enum Heard {
    Namespace(String, String, Result<i64, RemoteError>),
    Verify(String, Result<i64, RemoteError>),
    Adopt(String, Result<i64, RemoteError>),
    Check(i64, Result<i64, RemoteError>),
    Intent(String, Result<Claim, RemoteError>),
    Runner(i64, Result<RemoteRunner, RemoteError>),
}

async fn ask(c: Client, q: Ask, system_id: Option<Arc<str>>) -> Heard {
    let sid = system_id.as_deref();
    match q {
        Ask::Namespace(kind, path) => {
            let r = c.namespace_id(&kind, &path).await;
            Heard::Namespace(kind, path, r)
        }
        Ask::Verify(token) => {
            let r = c.verify(&token, sid).await;
            Heard::Verify(token, r)
        }
        Ask::Adopt(name, token) => Heard::Adopt(name, c.verify(&token, sid).await),
        Ask::Check(id, token) => Heard::Check(id, c.verify(&token, sid).await),
        Ask::Intent(i) => {
            let r = c
                .claim(&i.list_path, &i.runner_type, &i.description, &i.marker)
                .await;
            Heard::Intent(i.name, r)
        }
        Ask::Runner(id) => Heard::Runner(id, c.runner(id).await),
    }
}

/// Asks GitLab every question, at most `concurrency` requests at a time, fewer when GitLab
/// throttles or slows down (the client's [`super::Pace`], when it has one, decides; one is
/// made for this refresh otherwise).
///
/// Every question is asked at once, in one stream: a runner's id learned from a token is
/// read as soon as it is known, and what GitLab answers is decoded while other requests are
/// in flight. At most `concurrency` questions exist at any time, so memory does not grow
/// with the number of runners.
pub async fn refresh(
    client: &Client,
    q: Questions,
    concurrency: usize,
) -> Result<RemoteView, RefreshError> {
    let cap = concurrency.max(1);
    let client = match client.pace() {
        Some(_) => client.clone(),
        None => client.clone().with_pace(super::Pace::new(cap)),
    };
    let system_id: Option<Arc<str>> = q.system_id.as_deref().map(Arc::from);
    let mut view = RemoteView::default();

    let mut asked: HashSet<i64> = HashSet::new();
    let mut queue: VecDeque<Ask> = VecDeque::new();
    queue.extend(q.namespaces.into_iter().map(|(k, p)| Ask::Namespace(k, p)));
    queue.extend(q.tokens.into_iter().map(Ask::Verify));
    queue.extend(q.adopt.into_iter().map(|(n, t)| Ask::Adopt(n, t)));
    queue.extend(q.check_tokens.into_iter().map(|(i, t)| Ask::Check(i, t)));
    queue.extend(q.intents.into_iter().map(Ask::Intent));
    for id in q.runner_ids {
        if id > 0 && asked.insert(id) {
            queue.push_back(Ask::Runner(id));
        }
    }

    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.len() < cap
            && let Some(next) = queue.pop_front()
        {
            tasks.spawn(ask(client.clone(), next, system_id.clone()));
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let mut learned = None;
        match done.expect("refresh task") {
            Heard::Namespace(kind, path, r) => match r {
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
            },
            Heard::Verify(token, r) => match r {
                Ok(id) => {
                    learned = Some(id);
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
            },
            Heard::Adopt(name, r) => match r {
                Ok(id) => {
                    learned = Some(id);
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
            },
            Heard::Check(id, r) => match r {
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
            },
            Heard::Intent(name, r) => match r {
                Ok(claim) => {
                    view.claims.insert(name, claim);
                }
                Err(error) => {
                    return Err(RefreshError::Unanswered {
                        what: format!(
                            "looking for the runner an interrupted apply registered for {name}"
                        ),
                        error,
                    });
                }
            },
            Heard::Runner(id, r) => match r {
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
            },
        }
        if let Some(id) = learned.filter(|id| *id > 0)
            && asked.insert(id)
        {
            queue.push_back(Ask::Runner(id));
        }
    }
    Ok(view)
}
