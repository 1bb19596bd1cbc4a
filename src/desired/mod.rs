//! The desired view: what the KDL file(s) say the host should have.
//!
//! Reading happens in three steps, each in its own module: [`load`] reads the entry file and
//! its includes, [`decode`] turns KDL nodes into typed declarations (driven by the node table
//! in [`nodes`] and the config.toml key inventory), and [`expand`] applies defaults and
//! templates and expands `count=` replicas into concrete runners. [`check`] then looks at the
//! result as a whole (duplicate names, GitLab's rules). Every step collects problems instead
//! of stopping at the first.

pub(crate) mod check;
mod decode;
mod expand;
mod hosts;
pub mod load;
pub mod nodes;
mod parse;
pub mod render;
pub mod value;

use std::borrow::Cow;
use std::path::PathBuf;

use crate::diag::{Loc, Problems, Sources};
pub use hosts::HostChoice;
pub use value::{Entry, Table, Value};

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Spanned<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Spanned { value, loc }
    }
}

/// A secret given by reference. Secrets are never written inline in a KDL file.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRef {
    pub source: SecretSource,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable that holds the secret.
    Env(String),
    /// A file whose contents (trimmed) are the secret.
    File(PathBuf),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "env var {name}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// The GitLab instance runners are registered with.
#[derive(Debug, Clone)]
pub struct GitLab {
    pub url: Spanned<String>,
    /// Personal, group or project access token used to create and manage runners.
    pub token: Option<SecretRef>,
    pub ca_file: Option<Spanned<PathBuf>>,
    /// Timeout of one HTTP request, in seconds.
    pub timeout: Option<Spanned<u64>>,
    pub loc: Loc,
}

/// The `config` node: where config.toml lives and its global keys.
#[derive(Debug, Clone, Default)]
pub struct ConfigDecl {
    pub path: Option<Spanned<PathBuf>>,
    /// Global keys of config.toml (`concurrent`, `[session_server]`…), as declared.
    pub globals: Table,
    pub loc: Option<Loc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    Running,
    Stopped,
    Absent,
}

impl ServiceState {
    pub const NAMES: &[&str] = &["running", "stopped", "absent"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(ServiceState::Running),
            "stopped" => Some(ServiceState::Stopped),
            "absent" => Some(ServiceState::Absent),
            _ => None,
        }
    }
}

/// Which OS service manager runs the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerChoice {
    /// systemd when it is running (not merely installed), else OpenRC when it booted the
    /// machine; launchd on macOS, the service control manager on Windows.
    Auto,
    Systemd,
    OpenRc,
    Launchd,
    Windows,
}

impl ManagerChoice {
    pub const NAMES: &[&str] = &["auto", "systemd", "openrc", "launchd", "windows"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(ManagerChoice::Auto),
            "systemd" => Some(ManagerChoice::Systemd),
            "openrc" => Some(ManagerChoice::OpenRc),
            "launchd" => Some(ManagerChoice::Launchd),
            "windows" => Some(ManagerChoice::Windows),
            _ => None,
        }
    }
}

/// The `service` node: the OS service that runs `gitlab-runner run`.
#[derive(Debug, Clone)]
pub struct ServiceDecl {
    pub name: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub working_directory: Option<Spanned<PathBuf>>,
    pub binary: Option<Spanned<PathBuf>>,
    pub state: Option<Spanned<ServiceState>>,
    pub manager: Option<Spanned<ManagerChoice>>,
    /// A per-user service (systemd `--user`, a launchd agent) instead of a system one.
    pub user_service: Option<Spanned<bool>>,
    /// Environment of the service process, in declaration order.
    pub environment: Vec<(Spanned<String>, Spanned<String>)>,
    pub loc: Loc,
}

impl ServiceDecl {
    /// A service node with nothing set, written at `loc`.
    pub fn empty(loc: Loc) -> Self {
        ServiceDecl {
            name: None,
            user: None,
            working_directory: None,
            binary: None,
            state: None,
            manager: None,
            user_service: None,
            environment: Vec::new(),
            loc,
        }
    }
}

/// Group or project, by full path or by numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Path(String),
    Id(u64),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Path(p) => f.write_str(p),
            Target::Id(id) => write!(f, "id {id}"),
        }
    }
}

/// Who owns a runner on GitLab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Instance,
    Group(Target),
    Project(Target),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Instance => f.write_str("instance"),
            Scope::Group(t) => write!(f, "group {t}"),
            Scope::Project(t) => write!(f, "project {t}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLevel {
    NotProtected,
    RefProtected,
}

impl AccessLevel {
    pub const NAMES: &[&str] = &["not_protected", "ref_protected"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "not_protected" => Some(AccessLevel::NotProtected),
            "ref_protected" => Some(AccessLevel::RefProtected),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::NotProtected => "not_protected",
            AccessLevel::RefProtected => "ref_protected",
        }
    }
}

/// What a `runner`, `defaults` or `template` node declares. Every field is optional so that
/// bodies can be layered: defaults, then templates, then the runner itself.
#[derive(Debug, Clone, Default)]
pub struct RunnerBody {
    pub scope: Option<Spanned<Scope>>,
    pub description: Option<Spanned<String>>,
    pub tags: Option<Spanned<Vec<String>>>,
    pub run_untagged: Option<Spanned<bool>>,
    pub paused: Option<Spanned<bool>>,
    pub locked: Option<Spanned<bool>>,
    pub access_level: Option<Spanned<AccessLevel>>,
    pub maximum_timeout: Option<Spanned<u32>>,
    pub maintenance_note: Option<Spanned<String>>,
    /// An existing runner authentication token: the runner is adopted, never created.
    pub token: Option<SecretRef>,
    /// The name this runner had before; a rename keeps the registration.
    pub renamed_from: Option<Spanned<String>>,
    /// A legacy registration token: register with `POST /runners` instead of the new workflow.
    pub registration_token: Option<SecretRef>,
    /// Keys of the runner's `[[runners]]` entry in config.toml.
    pub settings: Table,
}

/// One concrete runner, after defaults, templates and `count=` expansion.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The runner's name: its KDL argument (with `-N` for replicas), and its config.toml `name`.
    pub name: Spanned<String>,
    /// For a replica of `runner "x" count=N`, its 1-based index.
    pub replica: Option<u32>,
    pub body: RunnerBody,
    /// The whole `runner` node.
    pub loc: Loc,
}

/// Everything the KDL file(s) declare, ready for planning.
#[derive(Debug, Clone)]
pub struct Desired {
    pub sources: Sources,
    pub gitlab: Option<GitLab>,
    pub config: ConfigDecl,
    pub service: Option<ServiceDecl>,
    pub runners: Vec<Runner>,
}

/// Whether references to secrets must resolve now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefCheck {
    /// `validate`: a missing env var or file is a warning; the host that applies may have it.
    Warn,
    /// Commands that use the secrets: a missing one is an error.
    Require,
    /// Offline commands: secrets written into config.toml are required; GitLab tokens are not
    /// used, so they are not checked.
    Settings,
}

/// The closest name among `candidates`, for did-you-mean hints.
pub fn suggest_name<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    decode::suggest(name, candidates)
}

/// The outcome of reading a desired state: the state itself unless errors made it unusable,
/// and every problem found.
pub struct Loaded {
    pub desired: Option<Desired>,
    pub problems: Problems,
    /// The hosts a fleet file declares (empty for a file without `host` blocks).
    pub hosts: Vec<String>,
}

/// Reads, decodes, expands and checks the desired state rooted at `path`; every host's view
/// of a fleet file.
pub fn read(path: &std::path::Path, refs: RefCheck) -> Loaded {
    read_for(path, refs, HostChoice::All)
}

/// Reads the desired state as `host` sees it. A file without `host` blocks is the same for
/// every host. With [`HostChoice::All`], each host's view is checked and the runners of all
/// of them are returned (for `validate`).
pub fn read_for(path: &std::path::Path, refs: RefCheck, host: HostChoice) -> Loaded {
    let mut problems = Problems::default();
    let files = load::load(path, &mut problems);
    let Some(files) = files else {
        return Loaded {
            desired: None,
            problems: problems.sorted(),
            hosts: Vec::new(),
        };
    };
    let decoded = decode::decode(&files, &mut problems);
    let names: Vec<String> = decoded.hosts.iter().map(|h| h.name.value.clone()).collect();
    let views: Vec<(Option<&str>, Cow<decode::Decoded>)> = match host {
        _ if names.is_empty() => vec![(None, Cow::Borrowed(&decoded))],
        HostChoice::One(h) if names.iter().any(|n| n == h) => {
            vec![(Some(h), Cow::Owned(hosts::select(&decoded, h)))]
        }
        HostChoice::One(h) => {
            problems.push(hosts::unknown(&files.sources, &decoded, h));
            Vec::new()
        }
        HostChoice::All => names
            .iter()
            .map(|n| (Some(n.as_str()), Cow::Owned(hosts::select(&decoded, n))))
            .collect(),
    };
    let mut sources = files.sources;
    let mut runners = Vec::new();
    let mut config = None;
    let mut service = None;
    for (name, view) in &views {
        // Each host's problems, once: shared nodes are checked in every host's view. The
        // problems so far go along, because checks stay quiet about what an earlier error
        // explains.
        let mut found = problems.clone();
        let before = found.list.len();
        let mut expanded = expand::expand(&sources, view, &mut found);
        if let Some(name) = name {
            hosts::describe(&mut expanded, name);
        }
        let one = Desired {
            sources,
            gitlab: view.gitlab.clone(),
            config: view.config.clone(),
            service: view.service.clone(),
            runners: expanded,
        };
        check::check(&one, refs, &mut found);
        for p in found.list.drain(before..) {
            let seen = problems
                .list
                .iter()
                .any(|q| q.loc == p.loc && q.message == p.message && q.code == p.code);
            if !seen {
                problems.push(p);
            }
        }
        sources = one.sources;
        if views.len() == 1 {
            config = Some(one.config);
            service = Some(one.service);
        }
        runners.extend(one.runners);
    }
    drop(views);
    let desired = Desired {
        sources,
        gitlab: decoded.gitlab,
        config: config.unwrap_or(decoded.config),
        service: service.unwrap_or(decoded.service),
        runners,
    };
    let desired = (!problems.has_errors()).then_some(desired);
    Loaded {
        desired,
        problems: problems.sorted(),
        hosts: names,
    }
}
