//! The simulated GitLab's data: users and their access tokens, groups, projects, runners and
//! runner managers, instance settings, and the clock. Everything the HTTP layer answers is
//! computed from this one value, which is also what `--state` saves.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::clock::{self, DAY, HOUR};
use super::tokens::{self, Rng, TokenFamily};

/// `ONLINE_CONTACT_TIMEOUT`: a runner that contacted GitLab within 2 h is online.
pub const ONLINE_TIMEOUT: i64 = 2 * HOUR;
/// `STALE_TIMEOUT` (7 days since GitLab 17.1).
pub const STALE_TIMEOUT: i64 = 7 * DAY;
pub const TAG_LIST_MAX: usize = 50;
/// Requests without `system_id` map to this manager.
pub const LEGACY_SYSTEM_ID: &str = "<legacy>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerType {
    InstanceType,
    GroupType,
    ProjectType,
}

impl RunnerType {
    pub const ALL: [&str; 3] = ["instance_type", "group_type", "project_type"];

    pub fn as_str(self) -> &'static str {
        match self {
            RunnerType::InstanceType => "instance_type",
            RunnerType::GroupType => "group_type",
            RunnerType::ProjectType => "project_type",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "instance_type" => Some(RunnerType::InstanceType),
            "group_type" => Some(RunnerType::GroupType),
            "project_type" => Some(RunnerType::ProjectType),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    NotProtected,
    RefProtected,
}

impl AccessLevel {
    pub const ALL: [&str; 2] = ["not_protected", "ref_protected"];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::NotProtected => "not_protected",
            AccessLevel::RefProtected => "ref_protected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "not_protected" => Some(AccessLevel::NotProtected),
            "ref_protected" => Some(AccessLevel::RefProtected),
            _ => None,
        }
    }
}

/// Membership roles, ordered as GitLab's access levels (10..50).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Guest,
    Reporter,
    Developer,
    Maintainer,
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "guest" | "10" => Some(Role::Guest),
            "reporter" | "20" => Some(Role::Reporter),
            "developer" | "30" => Some(Role::Developer),
            "maintainer" | "40" => Some(Role::Maintainer),
            "owner" | "50" => Some(Role::Owner),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub name: String,
    pub is_admin: bool,
    pub created_at: i64,
}

/// A personal access token. Scopes are kept as GitLab's names (`api`, `read_api`,
/// `create_runner`, `manage_runner`, `read_user`, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: u64,
    pub user_id: u64,
    pub name: String,
    pub token: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    /// Start (00:00 UTC) of the day the token expires; it is dead from then on.
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub last_used_at: Option<i64>,
}

impl AccessToken {
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: u64,
    pub name: String,
    pub path: String,
    pub parent_id: Option<u64>,
    pub members: BTreeMap<u64, Role>,
    pub runners_token: String,
    /// The group's "Allow runner registration token" setting.
    pub allow_runner_registration_token: bool,
    pub shared_runners_enabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    pub id: u64,
    pub name: String,
    pub path: String,
    pub namespace_id: u64,
    pub members: BTreeMap<u64, Role>,
    pub runners_token: String,
    pub shared_runners_enabled: bool,
    pub group_runners_enabled: bool,
    pub created_at: i64,
}

/// A runner manager: one host (`system_id`) using a runner's token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manager {
    pub id: u64,
    pub system_id: String,
    pub name: Option<String>,
    pub version: Option<String>,
    pub revision: Option<String>,
    pub platform: Option<String>,
    pub architecture: Option<String>,
    pub executor: Option<String>,
    pub ip_address: Option<String>,
    pub created_at: i64,
    pub contacted_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Runner {
    pub id: u64,
    pub runner_type: RunnerType,
    /// The owning group of a group runner.
    pub group_id: Option<u64>,
    /// Projects a project runner is assigned to; the first is the owner.
    pub project_ids: Vec<u64>,
    /// Set from `info.name` when registered with a registration token.
    #[serde(default)]
    pub name: Option<String>,
    pub description: Option<String>,
    pub maintenance_note: Option<String>,
    pub paused: bool,
    pub locked: bool,
    pub run_untagged: bool,
    pub tag_list: Vec<String>,
    pub access_level: AccessLevel,
    pub maximum_timeout: Option<i64>,
    pub token: String,
    pub token_family: TokenFamily,
    pub token_expires_at: Option<i64>,
    pub token_rotation_deadline: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub contacted_at: Option<i64>,
    pub creator_id: Option<u64>,
    /// `authenticated_user` or `registration_token`.
    pub registration_type: String,
    /// `started` until the first `POST /jobs/request`, then `finished`.
    pub creation_state: String,
    pub managers: Vec<Manager>,
}

impl Runner {
    pub fn online(&self, now: i64) -> bool {
        self.contacted_at.is_some_and(|c| c > now - ONLINE_TIMEOUT)
    }

    pub fn stale(&self, now: i64) -> bool {
        let deadline = now - STALE_TIMEOUT;
        self.created_at <= deadline && self.contacted_at.is_none_or(|c| c <= deadline)
    }

    /// The REST `status`, which still uses GitLab's deprecated computation (it can say
    /// `paused`).
    pub fn rest_status(&self, now: i64) -> &'static str {
        if self.stale(now) {
            "stale"
        } else if self.contacted_at.is_none() {
            "never_contacted"
        } else if !self.paused {
            if self.online(now) {
                "online"
            } else {
                "offline"
            }
        } else {
            "paused"
        }
    }

    pub fn token_expired(&self, now: i64) -> bool {
        self.token_expires_at.is_some_and(|e| e <= now)
    }
}

impl Manager {
    pub fn status(&self, now: i64) -> &'static str {
        let deadline = now - STALE_TIMEOUT;
        if self.created_at <= deadline && self.contacted_at.is_none_or(|c| c <= deadline) {
            "stale"
        } else {
            match self.contacted_at {
                None => "never_contacted",
                Some(c) if c > now - ONLINE_TIMEOUT => "online",
                Some(_) => "offline",
            }
        }
    }
}

/// Instance-wide settings a test may change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// "Allow runner registration token" (instance). Off by default since GitLab 17.0.
    pub legacy_registration: bool,
    /// `runner_token_expiration_interval` and friends, in seconds; `None` = never expires.
    pub instance_token_expiration: Option<i64>,
    pub group_token_expiration: Option<i64>,
    pub project_token_expiration: Option<i64>,
    /// "Restrict runner registration by all users": only admins create group/project runners.
    pub restrict_group_runner_creation: bool,
    pub restrict_project_runner_creation: bool,
    /// Leave out `X-Total`, `X-Total-Pages` and `rel="last"`, as GitLab.com does for large
    /// collections: clients must follow `X-Next-Page` instead.
    #[serde(default)]
    pub omit_pagination_totals: bool,
    pub version: String,
    pub revision: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            legacy_registration: false,
            instance_token_expiration: None,
            group_token_expiration: None,
            project_token_expiration: None,
            restrict_group_runner_creation: false,
            restrict_project_runner_creation: false,
            omit_pagination_totals: false,
            version: "18.10.0-ee".into(),
            revision: "5d0c1e2a4f1".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    pub user: u64,
    pub token: u64,
    pub group: u64,
    pub project: u64,
    pub runner: u64,
    pub manager: u64,
}

/// Fields of a runner being created, already validated by the caller.
#[derive(Debug, Clone)]
pub struct NewRunner {
    pub runner_type: RunnerType,
    pub group_id: Option<u64>,
    pub project_id: Option<u64>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub maintenance_note: Option<String>,
    pub paused: bool,
    pub locked: bool,
    pub run_untagged: bool,
    pub tag_list: Vec<String>,
    pub access_level: AccessLevel,
    pub maximum_timeout: Option<i64>,
    pub creator_id: Option<u64>,
    pub family: TokenFamily,
    pub token_expires_at: Option<i64>,
    pub token_rotation_deadline: Option<i64>,
}

/// What a runner reports about itself on verify and job requests.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    pub system_id: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub revision: Option<String>,
    pub platform: Option<String>,
    pub architecture: Option<String>,
    pub executor: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// Added to the wall clock: tests move time forward instead of sleeping.
    pub clock_offset_ms: i64,
    pub settings: Settings,
    pub instance_runners_token: String,
    pub admin_user_id: u64,
    pub admin_token_id: u64,
    pub users: BTreeMap<u64, User>,
    pub tokens: BTreeMap<u64, AccessToken>,
    pub groups: BTreeMap<u64, Group>,
    pub projects: BTreeMap<u64, Project>,
    pub runners: BTreeMap<u64, Runner>,
    pub counters: Counters,
    #[serde(skip)]
    runner_token_index: HashMap<String, u64>,
    #[serde(skip)]
    access_token_index: HashMap<String, u64>,
    /// Bumped by every change; the server saves and logs "changed" when it moves.
    #[serde(skip)]
    pub generation: u64,
    #[serde(skip)]
    pub rng: Rng,
}

pub const STATE_FORMAT: u32 = 1;

/// The namespaces and projects every simulator starts with.
const SEED_GROUPS: &[&str] = &["acme", "acme/platform"];
const SEED_PROJECTS: &[&str] = &["acme/app", "acme/web", "acme/platform/infra"];

impl State {
    /// A fresh instance: an administrator (`root`, owner of the seeded groups, as the user
    /// who created them would be) with an `api` token, and the seeded groups and projects.
    pub fn seeded() -> Self {
        let mut rng = Rng::default();
        let mut st = State {
            format: STATE_FORMAT,
            clock_offset_ms: 0,
            settings: Settings::default(),
            instance_runners_token: tokens::registration_token(&mut rng),
            admin_user_id: 0,
            admin_token_id: 0,
            users: BTreeMap::new(),
            tokens: BTreeMap::new(),
            groups: BTreeMap::new(),
            projects: BTreeMap::new(),
            runners: BTreeMap::new(),
            // Distinct id ranges make a group id passed as a project id (or the reverse)
            // fail loudly instead of hitting the wrong object.
            counters: Counters {
                user: 0,
                token: 0,
                group: 100,
                project: 1000,
                runner: 0,
                manager: 0,
            },
            runner_token_index: HashMap::new(),
            access_token_index: HashMap::new(),
            generation: 0,
            rng,
        };
        let admin = st.create_user("root", "Administrator", true);
        st.admin_user_id = admin;
        st.admin_token_id = st.create_access_token(admin, "sim-admin", &["api"], None).0;
        for g in SEED_GROUPS {
            let id = st.create_group(g).expect("seed groups are valid");
            if st.groups[&id].parent_id.is_none() {
                st.groups
                    .get_mut(&id)
                    .unwrap()
                    .members
                    .insert(admin, Role::Owner);
            }
        }
        for p in SEED_PROJECTS {
            st.create_project(p).expect("seed projects are valid");
        }
        st
    }

    /// Rebuilds what is not saved (indexes, random state) after loading from a file.
    pub fn reindex(&mut self) {
        self.runner_token_index = self
            .runners
            .values()
            .map(|r| (r.token.clone(), r.id))
            .collect();
        self.access_token_index = self
            .tokens
            .values()
            .map(|t| (t.token.clone(), t.id))
            .collect();
    }

    pub fn now(&self) -> i64 {
        clock::wall_ms() + self.clock_offset_ms
    }

    pub fn touch(&mut self) {
        self.generation += 1;
    }

    pub fn admin_token(&self) -> &str {
        &self.tokens[&self.admin_token_id].token
    }

    // ---- users and access tokens -------------------------------------------------------

    pub fn create_user(&mut self, username: &str, name: &str, is_admin: bool) -> u64 {
        self.counters.user += 1;
        let id = self.counters.user;
        let now = self.now();
        self.users.insert(
            id,
            User {
                id,
                username: username.into(),
                name: name.into(),
                is_admin,
                created_at: now,
            },
        );
        self.touch();
        id
    }

    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.users
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// Returns the new token's id and secret.
    pub fn create_access_token(
        &mut self,
        user_id: u64,
        name: &str,
        scopes: &[&str],
        expires_at: Option<i64>,
    ) -> (u64, String) {
        let token = loop {
            let t = tokens::personal_access_token(&mut self.rng);
            if !self.access_token_index.contains_key(&t) {
                break t;
            }
        };
        self.counters.token += 1;
        let id = self.counters.token;
        let now = self.now();
        self.tokens.insert(
            id,
            AccessToken {
                id,
                user_id,
                name: name.into(),
                token: token.clone(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                created_at: now,
                expires_at: expires_at.map(|e| e.div_euclid(DAY) * DAY),
                revoked: false,
                last_used_at: None,
            },
        );
        self.access_token_index.insert(token.clone(), id);
        self.touch();
        (id, token)
    }

    pub fn access_token(&self, secret: &str) -> Option<&AccessToken> {
        self.access_token_index
            .get(secret)
            .and_then(|id| self.tokens.get(id))
    }

    pub fn access_token_mut(&mut self, secret: &str) -> Option<&mut AccessToken> {
        let id = *self.access_token_index.get(secret)?;
        self.tokens.get_mut(&id)
    }

    // ---- groups and projects -----------------------------------------------------------

    /// Creates a group from its full path; the parent (all but the last segment) must exist.
    pub fn create_group(&mut self, full_path: &str) -> Result<u64, String> {
        let full_path = full_path.trim_matches('/');
        if full_path.is_empty() || self.group_by_path(full_path).is_some() {
            return Err(format!("group path {full_path:?} is empty or taken"));
        }
        let (parent_id, path) = match full_path.rsplit_once('/') {
            Some((parent, last)) => (
                Some(
                    self.group_by_path(parent)
                        .ok_or_else(|| format!("parent group {parent:?} does not exist"))?
                        .id,
                ),
                last,
            ),
            None => (None, full_path),
        };
        self.counters.group += 1;
        let id = self.counters.group;
        let runners_token = tokens::registration_token(&mut self.rng);
        let now = self.now();
        self.groups.insert(
            id,
            Group {
                id,
                name: path.into(),
                path: path.into(),
                parent_id,
                members: BTreeMap::new(),
                runners_token,
                allow_runner_registration_token: true,
                shared_runners_enabled: true,
                created_at: now,
            },
        );
        self.touch();
        Ok(id)
    }

    /// Creates a project from its full path (`group/.../project`).
    pub fn create_project(&mut self, full_path: &str) -> Result<u64, String> {
        let full_path = full_path.trim_matches('/');
        let (ns, path) = full_path
            .rsplit_once('/')
            .ok_or_else(|| format!("project path {full_path:?} needs a group"))?;
        let namespace_id = self
            .group_by_path(ns)
            .ok_or_else(|| format!("group {ns:?} does not exist"))?
            .id;
        if self.project_by_path(full_path).is_some() {
            return Err(format!("project {full_path:?} already exists"));
        }
        self.counters.project += 1;
        let id = self.counters.project;
        let runners_token = tokens::registration_token(&mut self.rng);
        let now = self.now();
        self.projects.insert(
            id,
            Project {
                id,
                name: path.into(),
                path: path.into(),
                namespace_id,
                members: BTreeMap::new(),
                runners_token,
                shared_runners_enabled: true,
                group_runners_enabled: true,
                created_at: now,
            },
        );
        self.touch();
        Ok(id)
    }

    pub fn group_full_path(&self, id: u64) -> String {
        let mut parts = Vec::new();
        let mut cur = self.groups.get(&id);
        while let Some(g) = cur {
            parts.push(g.path.as_str());
            cur = g.parent_id.and_then(|p| self.groups.get(&p));
        }
        parts.reverse();
        parts.join("/")
    }

    pub fn project_full_path(&self, id: u64) -> String {
        let p = &self.projects[&id];
        format!("{}/{}", self.group_full_path(p.namespace_id), p.path)
    }

    pub fn group_by_path(&self, path: &str) -> Option<&Group> {
        self.groups
            .values()
            .find(|g| self.group_full_path(g.id).eq_ignore_ascii_case(path))
    }

    pub fn project_by_path(&self, path: &str) -> Option<&Project> {
        self.projects
            .values()
            .find(|p| self.project_full_path(p.id).eq_ignore_ascii_case(path))
    }

    /// The group's id followed by its ancestors', nearest first.
    pub fn group_and_ancestors(&self, id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut cur = self.groups.get(&id);
        while let Some(g) = cur {
            out.push(g.id);
            cur = g.parent_id.and_then(|p| self.groups.get(&p));
        }
        out
    }

    /// Deletes a project. Runners assigned elsewhere move to their next project; a runner
    /// left with none stays behind orphaned, as GitLab's runner rows do until its
    /// asynchronous cleanup runs (verify then answers 422).
    pub fn delete_project(&mut self, id: u64) -> bool {
        if self.projects.remove(&id).is_none() {
            return false;
        }
        for r in self.runners.values_mut() {
            r.project_ids.retain(|&p| p != id);
        }
        self.touch();
        true
    }

    /// Deletes a group with its subgroups and projects; its group runners stay orphaned.
    pub fn delete_group(&mut self, id: u64) -> bool {
        if !self.groups.contains_key(&id) {
            return false;
        }
        let doomed: Vec<u64> = self
            .groups
            .keys()
            .copied()
            .filter(|&g| self.group_and_ancestors(g).contains(&id))
            .collect();
        let projects: Vec<u64> = self
            .projects
            .values()
            .filter(|p| doomed.contains(&p.namespace_id))
            .map(|p| p.id)
            .collect();
        for p in projects {
            self.delete_project(p);
        }
        for g in doomed {
            self.groups.remove(&g);
        }
        self.touch();
        true
    }

    // ---- runners -----------------------------------------------------------------------

    fn fresh_runner_token(&mut self, family: TokenFamily, ty: RunnerType) -> String {
        loop {
            let t = tokens::runner_token(&mut self.rng, family, ty);
            if !self.runner_token_index.contains_key(&t) {
                return t;
            }
        }
    }

    /// The expiry a new or reset token gets from the instance settings (reference §4).
    pub fn token_expiry(&self, ty: RunnerType) -> Option<i64> {
        let interval = match ty {
            RunnerType::InstanceType => self.settings.instance_token_expiration,
            RunnerType::GroupType => self.settings.group_token_expiration,
            RunnerType::ProjectType => self.settings.project_token_expiration,
        }?;
        Some(self.now() + interval * 1000)
    }

    pub fn create_runner(&mut self, new: NewRunner) -> u64 {
        let token = self.fresh_runner_token(new.family, new.runner_type);
        self.counters.runner += 1;
        let id = self.counters.runner;
        let now = self.now();
        let token_expires_at = new
            .token_expires_at
            .or_else(|| self.token_expiry(new.runner_type));
        let runner = Runner {
            id,
            runner_type: new.runner_type,
            group_id: new.group_id,
            project_ids: new.project_id.into_iter().collect(),
            name: new.name,
            description: new.description,
            maintenance_note: new.maintenance_note,
            paused: new.paused,
            locked: new.locked,
            run_untagged: new.run_untagged,
            tag_list: new.tag_list,
            access_level: new.access_level,
            maximum_timeout: new.maximum_timeout,
            token: token.clone(),
            token_family: new.family,
            token_expires_at,
            token_rotation_deadline: new.token_rotation_deadline,
            created_at: now,
            updated_at: now,
            contacted_at: None,
            creator_id: new.creator_id,
            registration_type: match new.family {
                TokenFamily::Created => "authenticated_user".into(),
                TokenFamily::Registered => "registration_token".into(),
            },
            creation_state: "started".into(),
            managers: Vec::new(),
        };
        self.runners.insert(id, runner);
        self.runner_token_index.insert(token, id);
        self.touch();
        id
    }

    /// The runner a token authenticates, if the token is current and not expired.
    pub fn runner_by_token(&self, token: &str) -> Option<u64> {
        let id = *self.runner_token_index.get(token)?;
        let r = self.runners.get(&id)?;
        (!r.token_expired(self.now())).then_some(id)
    }

    pub fn delete_runner(&mut self, id: u64) -> bool {
        match self.runners.remove(&id) {
            Some(r) => {
                self.runner_token_index.remove(&r.token);
                self.touch();
                true
            }
            None => false,
        }
    }

    /// Gives the runner a new token of the same family; the old one stops working at once.
    pub fn reset_runner_token(&mut self, id: u64) -> Option<(String, Option<i64>)> {
        let (family, ty, old) = {
            let r = self.runners.get(&id)?;
            (r.token_family, r.runner_type, r.token.clone())
        };
        let token = self.fresh_runner_token(family, ty);
        let expires = self.token_expiry(ty);
        let now = self.now();
        let r = self.runners.get_mut(&id)?;
        r.token = token.clone();
        r.token_expires_at = expires;
        r.updated_at = now;
        self.runner_token_index.remove(&old);
        self.runner_token_index.insert(token.clone(), id);
        self.touch();
        Some((token, expires))
    }

    /// The owner is gone: a project runner with no project left, a group runner whose group
    /// was deleted.
    pub fn orphaned(&self, r: &Runner) -> bool {
        match r.runner_type {
            RunnerType::InstanceType => false,
            RunnerType::GroupType => r.group_id.is_none_or(|g| !self.groups.contains_key(&g)),
            RunnerType::ProjectType => !r.project_ids.iter().any(|p| self.projects.contains_key(p)),
        }
    }

    /// Records a contact from a runner host: creates or refreshes the manager for its
    /// `system_id` and, when `runner_contact`, the runner's own `contacted_at`.
    pub fn heartbeat(&mut self, id: u64, info: &HostInfo, runner_contact: bool) {
        let now = self.now();
        let system_id = info
            .system_id
            .clone()
            .unwrap_or_else(|| LEGACY_SYSTEM_ID.to_string());
        let Some(r) = self.runners.get_mut(&id) else {
            return;
        };
        if runner_contact {
            r.contacted_at = Some(now);
        }
        let idx = match r.managers.iter().position(|m| m.system_id == system_id) {
            Some(i) => i,
            None => {
                self.counters.manager += 1;
                r.managers.push(Manager {
                    id: self.counters.manager,
                    system_id,
                    name: None,
                    version: None,
                    revision: None,
                    platform: None,
                    architecture: None,
                    executor: None,
                    ip_address: None,
                    created_at: now,
                    contacted_at: None,
                });
                r.managers.len() - 1
            }
        };
        let m = &mut r.managers[idx];
        m.contacted_at = Some(now);
        let fields = [
            (&mut m.name, &info.name),
            (&mut m.version, &info.version),
            (&mut m.revision, &info.revision),
            (&mut m.platform, &info.platform),
            (&mut m.architecture, &info.architecture),
            (&mut m.executor, &info.executor),
            (&mut m.ip_address, &info.ip_address),
        ];
        for (slot, value) in fields {
            if value.is_some() {
                *slot = value.clone();
            }
        }
        self.touch();
    }

    /// The most recently contacted manager, whose version GitLab shows on the runner.
    pub fn latest_manager(r: &Runner) -> Option<&Manager> {
        r.managers.iter().max_by_key(|m| m.contacted_at)
    }

    /// `project_type` runners assigned to `project_id`, group runners of its groups (when
    /// enabled), instance runners (when enabled); in id order.
    pub fn runners_for_project(&self, project_id: u64) -> Vec<&Runner> {
        let Some(p) = self.projects.get(&project_id) else {
            return Vec::new();
        };
        let groups = self.group_and_ancestors(p.namespace_id);
        self.runners
            .values()
            .filter(|r| match r.runner_type {
                RunnerType::ProjectType => r.project_ids.contains(&project_id),
                RunnerType::GroupType => {
                    p.group_runners_enabled && r.group_id.is_some_and(|g| groups.contains(&g))
                }
                RunnerType::InstanceType => p.shared_runners_enabled,
            })
            .collect()
    }

    /// Group runners of the group and its ancestors, and instance runners when enabled.
    pub fn runners_for_group(&self, group_id: u64) -> Vec<&Runner> {
        let groups = self.group_and_ancestors(group_id);
        let shared = self
            .groups
            .get(&group_id)
            .is_some_and(|g| g.shared_runners_enabled);
        self.runners
            .values()
            .filter(|r| match r.runner_type {
                RunnerType::GroupType => r.group_id.is_some_and(|g| groups.contains(&g)),
                RunnerType::InstanceType => shared,
                RunnerType::ProjectType => false,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_state_has_the_documented_namespaces() {
        let st = State::seeded();
        assert!(st.project_by_path("acme/app").is_some());
        assert!(st.project_by_path("acme/platform/infra").is_some());
        let platform = st.group_by_path("acme/platform").unwrap();
        assert_eq!(st.group_and_ancestors(platform.id).len(), 2);
        assert!(st.admin_token().starts_with("glpat-"));
    }

    #[test]
    fn status_follows_the_clock() {
        let mut st = State::seeded();
        let id = st.create_runner(NewRunner {
            runner_type: RunnerType::InstanceType,
            group_id: None,
            project_id: None,
            name: None,
            description: None,
            maintenance_note: None,
            paused: false,
            locked: false,
            run_untagged: true,
            tag_list: vec![],
            access_level: AccessLevel::NotProtected,
            maximum_timeout: None,
            creator_id: None,
            family: TokenFamily::Created,
            token_expires_at: None,
            token_rotation_deadline: None,
        });
        let now = st.now();
        assert_eq!(st.runners[&id].rest_status(now), "never_contacted");
        st.heartbeat(id, &HostInfo::default(), true);
        assert_eq!(st.runners[&id].rest_status(st.now()), "online");
        st.clock_offset_ms += 3 * HOUR;
        assert_eq!(st.runners[&id].rest_status(st.now()), "offline");
        st.clock_offset_ms += 8 * DAY;
        assert_eq!(st.runners[&id].rest_status(st.now()), "stale");
    }
}
