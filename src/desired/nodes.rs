//! runnerform's own nodes: everything in the language that is not a config.toml key.
//!
//! The decoder accepts exactly these names (plus the config.toml keys of the inventory) and
//! suggests among them when a name is misspelt; the language reference in `schemas/` is
//! generated from this table.

/// Where a node may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The top level of a file.
    Top,
    /// Inside `gitlab { }`.
    GitLab,
    /// Inside `service { }`.
    Service,
    /// Inside `runner`, `defaults` and `template` bodies.
    Runner,
    /// Inside `host "NAME" { }`.
    Host,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Top => "Top-level nodes",
            Context::GitLab => "Inside `gitlab`",
            Context::Service => "Inside `service`",
            Context::Runner => "Inside `runner`, `defaults` and `template`",
            Context::Host => "Inside `host`",
        }
    }
}

pub struct NodeDef {
    pub context: Context,
    pub name: &'static str,
    /// How the node is written.
    pub form: &'static str,
    pub doc: &'static str,
}

const fn def(
    context: Context,
    name: &'static str,
    form: &'static str,
    doc: &'static str,
) -> NodeDef {
    NodeDef {
        context,
        name,
        form,
        doc,
    }
}

use Context::*;

pub const NODES: &[NodeDef] = &[
    def(
        Top,
        "include",
        r#"include "shared/defaults.kdl""#,
        "Reads another file in place. Relative to the including file; each file is read once.",
    ),
    def(
        Top,
        "gitlab",
        r#"gitlab "https://gitlab.example.com" { … }"#,
        "The GitLab instance runners are registered with. At most one.",
    ),
    def(
        Top,
        "config",
        r#"config "/etc/gitlab-runner/config.toml" { concurrent 8 … }"#,
        "Where config.toml lives (default: gitlab-runner's own default path; `--config-toml` \
         overrides) and its global keys, with config.toml's key names. At most one.",
    ),
    def(
        Top,
        "service",
        "service { user \"gitlab-runner\" … }",
        "The OS service that runs `gitlab-runner run`. At most one.",
    ),
    def(
        Top,
        "defaults",
        "defaults { executor \"docker\" … }",
        "A runner body that every runner inherits. At most one.",
    ),
    def(
        Top,
        "template",
        r#"template "docker-base" template="base" { … }"#,
        "A named runner body. Runners (and other templates) inherit it with `template=NAME`.",
    ),
    def(
        Top,
        "runner",
        r#"runner "build" count=2 template="docker-base" { … }"#,
        "A runner. Its name is also the `name` of its `[[runners]]` entry. `count=N` declares \
         N replicas named NAME-1 … NAME-N. Layers merge deeply: defaults, then the template \
         chain, then the runner's own body.",
    ),
    def(
        Top,
        "host",
        r#"host "ci-01" { config { … } runner "rust" { … } }"#,
        "One host of a fleet: what applies only on the host of that name (`--host NAME`, env \
         `RUNNERFORM_HOST`, default the machine's hostname). Everything outside `host` blocks \
         applies to every host. A file with `host` blocks is applied only on a host it names; \
         `validate` checks every host.",
    ),
    def(
        Host,
        "config",
        r#"config "/srv/runner/config.toml" { concurrent 16 }"#,
        "This host's config.toml path and global keys; they override the top-level `config` key \
         by key.",
    ),
    def(
        Host,
        "service",
        "service { user \"builder\" … }",
        "This host's gitlab-runner service; it replaces the top-level `service` node on this host.",
    ),
    def(
        Host,
        "runner",
        r#"runner "rust" { … }"#,
        "A runner of this host only, written as at the top level; it inherits `defaults` and \
         templates. Runners in a fleet file default their GitLab description to `NAME on HOST`.",
    ),
    def(
        GitLab,
        "token",
        r#"token env="GITLAB_TOKEN" | token file="/run/secrets/gitlab""#,
        "Access token (personal, group or project) used to create and manage runners. By \
         reference only.",
    ),
    def(
        GitLab,
        "ca_file",
        r#"ca_file "/etc/ssl/certs/internal-ca.pem""#,
        "PEM file with the CA that signed GitLab's certificate.",
    ),
    def(
        GitLab,
        "timeout",
        r#"timeout "30s" | timeout 30"#,
        "Timeout of one HTTP request (a duration, or seconds).",
    ),
    def(
        Service,
        "name",
        r#"name "gitlab-runner""#,
        "Service name (default `gitlab-runner`).",
    ),
    def(
        Service,
        "user",
        r#"user "gitlab-runner""#,
        "User that runs shell-executor jobs (`gitlab-runner run --user`).",
    ),
    def(
        Service,
        "working_directory",
        r#"working_directory "/home/gitlab-runner""#,
        "Working directory of `gitlab-runner run`.",
    ),
    def(
        Service,
        "binary",
        r#"binary "/usr/bin/gitlab-runner""#,
        "Path of the gitlab-runner program.",
    ),
    def(
        Service,
        "state",
        r#"state "running" | "stopped" | "absent""#,
        "Whether the service runs, is installed but stopped, or is not installed (default \
         `running`).",
    ),
    def(
        Service,
        "manager",
        r#"manager "auto" | "systemd" | "openrc" | "launchd" | "windows""#,
        "The OS service manager (default `auto`: systemd only when it is running, else OpenRC \
         when it booted the machine; launchd on macOS, the service control manager on Windows).",
    ),
    def(
        Service,
        "user_service",
        "user_service #true",
        "A per-user service (systemd `--user`, a launchd agent) instead of a system one.",
    ),
    def(
        Service,
        "environment",
        r#"environment { HTTPS_PROXY "http://proxy:3128" }"#,
        "Environment variables of the service process. No tokens: the definition is readable \
         by every local user.",
    ),
    def(
        Runner,
        "instance",
        "instance",
        "Scope: an instance runner (needs an administrator's token).",
    ),
    def(
        Runner,
        "group",
        r#"group "acme/platform" | group 42"#,
        "Scope: a group runner, by full path or numeric id.",
    ),
    def(
        Runner,
        "project",
        r#"project "acme/app" | project 1234"#,
        "Scope: a project runner, by full path or numeric id.",
    ),
    def(
        Runner,
        "description",
        r#"description "Docker builds on ci-07""#,
        "GitLab description (defaults to the runner's name).",
    ),
    def(
        Runner,
        "tags",
        r#"tags "docker" "linux""#,
        "GitLab tags. Replaces the whole list on GitLab.",
    ),
    def(
        Runner,
        "run_untagged",
        "run_untagged #false",
        "Whether the runner picks jobs without tags. `#false` needs at least one tag.",
    ),
    def(
        Runner,
        "paused",
        "paused #true",
        "Paused runners take no jobs.",
    ),
    def(
        Runner,
        "locked",
        "locked #true",
        "A locked project runner cannot be enabled for other projects.",
    ),
    def(
        Runner,
        "access_level",
        r#"access_level "ref_protected""#,
        "`not_protected` or `ref_protected` (only jobs on protected refs).",
    ),
    def(
        Runner,
        "maximum_timeout",
        "maximum_timeout 3600",
        "Longest job timeout in seconds, at least 600.",
    ),
    def(
        Runner,
        "maintenance_note",
        r#"maintenance_note "Owned by team platform""#,
        "Free-form note shown to administrators on GitLab.",
    ),
    def(
        Runner,
        "token",
        r#"token env="BUILD_RUNNER_TOKEN" | token file="/run/secrets/build""#,
        "An existing runner authentication token (`glrt-…`): the runner is adopted, never \
         created. By reference only; not in `defaults` or `template`, nor with `count`.",
    ),
    def(
        Runner,
        "registration_token",
        r#"registration_token env="GITLAB_REGISTRATION_TOKEN""#,
        "Register with a legacy registration token (`POST /runners`) instead of the new \
         workflow, for GitLab versions before 16.0. GitLab 17.0 and later disable it by default \
         (410 Gone). By reference only; may be shared through `defaults` or a template.",
    ),
    def(
        Runner,
        "renamed_from",
        r#"renamed_from "old-name""#,
        "The runner's previous name: the existing registration is kept and renamed, not \
         deleted and created again. `renamed_from \"\"` names an entry that has no name (as \
         `import` writes it); such entries are taken in file order.",
    ),
];

pub fn names(context: Context) -> impl Iterator<Item = &'static str> {
    NODES
        .iter()
        .filter(move |n| n.context == context)
        .map(|n| n.name)
}

pub fn is_known(context: Context, name: &str) -> bool {
    names(context).any(|n| n == name)
}
