//! Who is calling and what they may do: access-token lookup, scopes per endpoint, and the
//! role rules of reference §2 (project runner → Maintainer, group runner → Owner, instance
//! runner → admin).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::{ApiError, ApiResult};
use super::state::{Role, Runner, RunnerType, State};

pub const API: &str = "api";
pub const READ_API: &str = "read_api";
pub const READ_USER: &str = "read_user";
pub const CREATE_RUNNER: &str = "create_runner";
pub const MANAGE_RUNNER: &str = "manage_runner";

/// Scopes a token may be created with in the simulator.
pub const KNOWN_SCOPES: &[&str] = &[
    API,
    READ_API,
    READ_USER,
    CREATE_RUNNER,
    MANAGE_RUNNER,
    "read_repository",
    "write_repository",
    "sudo",
    "admin_mode",
];

/// Scopes for reading lists and projects.
pub const READ: &[&str] = &[API, READ_API];
/// Scopes for `/runners/:id…` reads; `manage_runner` covers them (reference §2.8).
pub const READ_BY_ID: &[&str] = &[API, READ_API, MANAGE_RUNNER];
/// Scopes for `/runners/:id…` writes.
pub const WRITE_BY_ID: &[&str] = &[API, MANAGE_RUNNER];
pub const WRITE: &[&str] = &[API];

/// The user token a request carries, if any: `PRIVATE-TOKEN`, `Authorization: Bearer`, or
/// the `private_token` / `access_token` query parameters.
#[derive(Debug, Clone, Default)]
pub struct Credentials(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Credentials {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Credentials(token_of(&parts.headers, &parts.uri)))
    }
}

/// The user token of a request, wherever GitLab accepts it; also what the rate limit counts
/// requests by.
pub fn token_of(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    if let Some(t) = header("private-token") {
        return Some(t);
    }
    if let Some(b) = header("authorization")
        && let Some((scheme, t)) = b.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(t.trim().to_string());
    }
    uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "private_token" || k == "access_token")
            .map(|(_, v)| v.into_owned())
    })
}

#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: u64,
    pub admin: bool,
    pub token_id: u64,
}

impl State {
    /// Finds the caller behind a token and checks that one of its scopes is `allowed`
    /// (an empty list allows any scope).
    pub fn authenticate(&mut self, cred: &Credentials, allowed: &[&str]) -> ApiResult<Caller> {
        let secret = cred.0.as_deref().ok_or_else(ApiError::unauthorized)?;
        let now = self.now();
        let token = self
            .access_token_mut(secret)
            .ok_or_else(ApiError::unauthorized)?;
        if token.revoked {
            return Err(ApiError::token_revoked());
        }
        if token.expired(now) {
            return Err(ApiError::token_expired());
        }
        if !allowed.is_empty() && !token.scopes.iter().any(|s| allowed.contains(&s.as_str())) {
            return Err(ApiError::insufficient_scope(allowed));
        }
        // Not a change worth saving or reporting: GitLab updates it lazily too.
        token.last_used_at = Some(now);
        let (user_id, token_id) = (token.user_id, token.id);
        let user = self
            .users
            .get(&user_id)
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Caller {
            user_id,
            admin: user.is_admin,
            token_id,
        })
    }

    /// The caller's role in a group: the highest membership in it or an ancestor.
    pub fn group_role(&self, user: u64, group: u64) -> Option<Role> {
        self.group_and_ancestors(group)
            .iter()
            .filter_map(|g| self.groups.get(g)?.members.get(&user).copied())
            .max()
    }

    pub fn project_role(&self, user: u64, project: u64) -> Option<Role> {
        let p = self.projects.get(&project)?;
        let direct = p.members.get(&user).copied();
        direct.max(self.group_role(user, p.namespace_id))
    }

    pub fn can_see_project(&self, c: &Caller, project: u64) -> bool {
        self.projects.contains_key(&project)
            && (c.admin || self.project_role(c.user_id, project).is_some())
    }

    /// Groups are visible to members, and to members of anything inside them.
    pub fn can_see_group(&self, c: &Caller, group: u64) -> bool {
        if !self.groups.contains_key(&group) {
            return false;
        }
        c.admin
            || self.group_role(c.user_id, group).is_some()
            || self.groups.values().any(|g| {
                g.members.contains_key(&c.user_id)
                    && self.group_and_ancestors(g.id).contains(&group)
            })
            || self.projects.values().any(|p| {
                p.members.contains_key(&c.user_id)
                    && self.group_and_ancestors(p.namespace_id).contains(&group)
            })
    }

    fn has_project_role(&self, c: &Caller, project: u64, min: Role) -> bool {
        self.project_role(c.user_id, project)
            .is_some_and(|r| r >= min)
    }

    fn has_group_role(&self, c: &Caller, group: u64, min: Role) -> bool {
        self.group_role(c.user_id, group).is_some_and(|r| r >= min)
    }

    /// `read_runner`: instance runners for anyone signed in; otherwise Maintainer of one of
    /// the runner's projects or of its group.
    pub fn can_read_runner(&self, c: &Caller, r: &Runner) -> bool {
        c.admin
            || match r.runner_type {
                RunnerType::InstanceType => true,
                RunnerType::GroupType => r
                    .group_id
                    .is_some_and(|g| self.has_group_role(c, g, Role::Maintainer)),
                RunnerType::ProjectType => r
                    .project_ids
                    .iter()
                    .any(|&p| self.has_project_role(c, p, Role::Maintainer)),
            }
    }

    /// `update_runner` / `delete_runner`: Maintainer of the owner project, Owner of the group,
    /// admin for instance runners.
    pub fn can_update_runner(&self, c: &Caller, r: &Runner) -> bool {
        c.admin
            || match r.runner_type {
                RunnerType::InstanceType => false,
                RunnerType::GroupType => r
                    .group_id
                    .is_some_and(|g| self.has_group_role(c, g, Role::Owner)),
                RunnerType::ProjectType => r
                    .project_ids
                    .first()
                    .is_some_and(|&p| self.has_project_role(c, p, Role::Maintainer)),
            }
    }

    /// `create_runner` on a project (Maintainer+) unless an admin restricted it.
    pub fn can_create_project_runner(&self, c: &Caller, project: u64) -> bool {
        c.admin
            || (!self.settings.restrict_project_runner_creation
                && self.has_project_role(c, project, Role::Maintainer))
    }

    pub fn can_create_group_runner(&self, c: &Caller, group: u64) -> bool {
        c.admin
            || (!self.settings.restrict_group_runner_creation
                && self.has_group_role(c, group, Role::Owner))
    }

    pub fn can_admin_project_runners(&self, c: &Caller, project: u64) -> bool {
        c.admin || self.has_project_role(c, project, Role::Maintainer)
    }

    pub fn can_read_group_runners(&self, c: &Caller, group: u64) -> bool {
        c.admin || self.has_group_role(c, group, Role::Maintainer)
    }

    pub fn can_reset_group_registration_token(&self, c: &Caller, group: u64) -> bool {
        c.admin || self.has_group_role(c, group, Role::Owner)
    }

    /// `ci_owned_runners`: what `GET /runners` lists. Project runners of projects where the
    /// user is Maintainer+, group runners of groups (and their subgroups) the user owns.
    pub fn owned_runners(&self, c: &Caller) -> Vec<&Runner> {
        self.runners
            .values()
            .filter(|r| match r.runner_type {
                RunnerType::InstanceType => false,
                RunnerType::GroupType => r
                    .group_id
                    .is_some_and(|g| self.has_group_role(c, g, Role::Owner)),
                RunnerType::ProjectType => r
                    .project_ids
                    .iter()
                    .any(|&p| self.has_project_role(c, p, Role::Maintainer)),
            })
            .collect()
    }
}
