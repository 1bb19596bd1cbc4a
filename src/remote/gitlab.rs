//! The runner endpoints runnerform uses, with their answers decoded into what planning needs.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Client, RemoteError};

/// GitLab's view of one runner (`GET /runners/:id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRunner {
    pub id: i64,
    pub description: String,
    pub paused: bool,
    pub tags: Vec<String>,
    pub run_untagged: bool,
    pub locked: bool,
    pub access_level: String,
    pub maximum_timeout: Option<i64>,
    pub maintenance_note: String,
    /// `instance_type`, `group_type` or `project_type`.
    pub runner_type: String,
    /// Ids of the projects (project runners) or groups (group runners) it belongs to.
    pub owners: Vec<i64>,
    pub status: String,
    pub contacted_at: Option<String>,
}

/// What became of an interrupted registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This runner carries the registration's marker: it is runnerform's.
    Proven(i64),
    /// No runner carries it: GitLab never acted on the registration.
    NotFound,
    /// A candidate runner could not be read, so the marker cannot be checked.
    Unreadable {
        id: i64,
        status: u16,
        message: String,
    },
}

/// Credentials GitLab hands out once.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: i64,
    pub token: String,
    pub expires_at: Option<String>,
}

/// The access token's own description (`GET /personal_access_tokens/self`).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub scopes: Vec<String>,
    /// The user the token acts for.
    pub user_id: Option<i64>,
    pub active: bool,
    pub expires_at: Option<String>,
}

fn malformed(what: &str) -> RemoteError {
    RemoteError::Malformed {
        what: what.to_string(),
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Client {
    pub async fn token_info(&self) -> Result<TokenInfo, RemoteError> {
        let a = self
            .call(Method::GET, "/personal_access_tokens/self", &[], None)
            .await?;
        let scopes = a
            .body
            .get("scopes")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed("the token's scopes are missing"))?
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        Ok(TokenInfo {
            scopes,
            user_id: a.body.get("user_id").and_then(Value::as_i64),
            active: a
                .body
                .get("active")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            expires_at: a
                .body
                .get("expires_at")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// The numeric id of a project or group given by full path.
    /// Whether the token's user is an administrator (`GET /user`).
    pub async fn is_admin(&self) -> Result<bool, RemoteError> {
        let a = self.call(Method::GET, "/user", &[], None).await?;
        Ok(a.body
            .get("is_admin")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }

    /// The access level (10 guest … 50 owner) a user holds in a group or project, inherited
    /// memberships included; `None` when the user is no member.
    pub async fn member_access(
        &self,
        kind: &str,
        id: i64,
        user_id: i64,
    ) -> Result<Option<u32>, RemoteError> {
        match self
            .call(
                Method::GET,
                &format!("/{kind}/{id}/members/all/{user_id}"),
                &[],
                None,
            )
            .await
        {
            Ok(a) => Ok(a
                .body
                .get("access_level")
                .and_then(Value::as_u64)
                .map(|l| l as u32)),
            Err(RemoteError::Definite { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn namespace_id(&self, kind: &str, path: &str) -> Result<i64, RemoteError> {
        let encoded: String = path
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let a = self
            .call(Method::GET, &format!("/{kind}/{encoded}"), &[], None)
            .await?;
        a.body
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| malformed(&format!("{kind} {path} has no id")))
    }

    pub async fn runner(&self, id: i64) -> Result<RemoteRunner, RemoteError> {
        let a = self
            .call(Method::GET, &format!("/runners/{id}"), &[], None)
            .await?;
        let b = &a.body;
        let tags = b
            .get("tag_list")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let ids = |key: &str| -> Vec<i64> {
            b.get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.get("id")?.as_i64()).collect())
                .unwrap_or_default()
        };
        let runner_type = str_of(b, "runner_type");
        let owners = match runner_type.as_str() {
            "project_type" => ids("projects"),
            "group_type" => ids("groups"),
            _ => Vec::new(),
        };
        Ok(RemoteRunner {
            id: b
                .get("id")
                .and_then(Value::as_i64)
                .ok_or_else(|| malformed("a runner without id"))?,
            description: str_of(b, "description"),
            paused: b.get("paused").and_then(Value::as_bool).unwrap_or(false),
            tags,
            run_untagged: b
                .get("run_untagged")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            locked: b.get("locked").and_then(Value::as_bool).unwrap_or(false),
            access_level: str_of(b, "access_level"),
            maximum_timeout: b.get("maximum_timeout").and_then(Value::as_i64),
            maintenance_note: str_of(b, "maintenance_note"),
            runner_type,
            owners,
            status: str_of(b, "status"),
            contacted_at: b
                .get("contacted_at")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// `POST /user/runners`: the new runner workflow. The token is returned only here.
    pub async fn create_runner(&self, body: &Value) -> Result<Credentials, RemoteError> {
        let a = self
            .call_once(Method::POST, "/user/runners", &[], Some(body))
            .await?;
        credentials(&a.body)
    }

    /// `POST /runners`: the legacy workflow with a registration token. 410 means GitLab has
    /// registration tokens disabled (the default since 17.0).
    pub async fn register_legacy(&self, body: &Value) -> Result<Credentials, RemoteError> {
        let a = self
            .call_once(Method::POST, "/runners", &[], Some(body))
            .await?;
        credentials(&a.body)
    }

    /// `DELETE /runners` with the runner's own token, for entries that have no id.
    pub async fn delete_by_token(&self, token: &str) -> Result<(), RemoteError> {
        self.call(
            Method::DELETE,
            "/runners",
            &[],
            Some(&json!({ "token": token })),
        )
        .await
        .map(|_| ())
    }

    /// `POST /runners/:id/reset_authentication_token`: a new token for an existing runner.
    pub async fn reset_token(&self, id: i64) -> Result<Credentials, RemoteError> {
        let a = self
            .call_once(
                Method::POST,
                &format!("/runners/{id}/reset_authentication_token"),
                &[],
                None,
            )
            .await?;
        let mut b = a.body.clone();
        if let Some(o) = b.as_object_mut() {
            o.insert("id".into(), id.into());
        }
        credentials(&b)
    }

    /// Runners of one scope with the given description that never contacted GitLab: the
    /// candidates for a registration whose answer was lost.
    /// The runner an interrupted registration made, proven by the claim marker it was
    /// registered with: among the scope's never-contacted runners with the same description,
    /// the one whose `maintenance_note` is the marker. A look-alike without the marker is
    /// someone else's and is never taken.
    pub async fn claim(
        &self,
        list_path: &str,
        runner_type: &str,
        description: &str,
        marker: &str,
    ) -> Result<Claim, RemoteError> {
        if marker.is_empty() {
            return Ok(Claim::NotFound);
        }
        let all = self
            .list_all(list_path, &[("type", runner_type.to_string())])
            .await?;
        let candidates: Vec<i64> = all
            .iter()
            .filter(|r| r.get("description").and_then(Value::as_str) == Some(description))
            .filter(|r| r.get("status").and_then(Value::as_str) == Some("never_contacted"))
            .filter_map(|r| r.get("id").and_then(Value::as_i64))
            .collect();
        for id in candidates {
            match self.runner(id).await {
                Ok(r) if r.maintenance_note == marker => return Ok(Claim::Proven(id)),
                Ok(_) => {}
                Err(RemoteError::Definite { status, message }) if status != 404 => {
                    return Ok(Claim::Unreadable {
                        id,
                        status,
                        message,
                    });
                }
                Err(RemoteError::Definite { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Claim::NotFound)
    }

    pub async fn update_runner(&self, id: i64, body: &Value) -> Result<(), RemoteError> {
        self.call(Method::PUT, &format!("/runners/{id}"), &[], Some(body))
            .await
            .map(|_| ())
    }

    pub async fn delete_runner(&self, id: i64) -> Result<(), RemoteError> {
        self.call(Method::DELETE, &format!("/runners/{id}"), &[], None)
            .await
            .map(|_| ())
    }

    /// The hosts running a runner (`GET /runners/:id/managers`): system id and status.
    pub async fn managers(&self, id: i64) -> Result<Vec<(String, String)>, RemoteError> {
        let a = self
            .call(Method::GET, &format!("/runners/{id}/managers"), &[], None)
            .await?;
        Ok(a.body
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| (str_of(m, "system_id"), str_of(m, "status")))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `POST /runners/verify`: whether a runner token is valid, and whose it is.
    /// `system_id` is this host's (`.runner_system_id` beside config.toml), so the runner
    /// manager GitLab records is the one gitlab-runner itself uses, not a `<legacy>` one.
    pub async fn verify(&self, token: &str, system_id: Option<&str>) -> Result<i64, RemoteError> {
        let mut body = json!({ "token": token });
        if let Some(s) = system_id {
            body["system_id"] = s.into();
        }
        let a = self
            .call(Method::POST, "/runners/verify", &[], Some(&body))
            .await?;
        a.body
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| malformed("verify answered without an id"))
    }
}

fn credentials(b: &Value) -> Result<Credentials, RemoteError> {
    Ok(Credentials {
        id: b
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| malformed("a new runner without id"))?,
        token: b
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| malformed("a new runner without token"))?
            .to_string(),
        expires_at: b
            .get("token_expires_at")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}
