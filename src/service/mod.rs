//! The gitlab-runner service: what the `service` node asks for ([`Spec`]), what the OS has
//! ([`observe`]), how a definition file is written and read back ([`render`]), and carrying
//! out the plan's service steps through `service-manager` ([`control`]).
//!
//! The service runs `gitlab-runner run` with the arguments `gitlab-runner install` would give
//! it, so a service installed by gitlab-runner or by the distribution package is recognised
//! as the same service and adopted instead of being installed a second time.

pub mod control;
pub mod observe;
pub mod render;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::desired::{Desired, ManagerChoice, ServiceDecl, ServiceState};
use crate::diag::Problem;

pub const DEFAULT_NAME: &str = "gitlab-runner";
pub const DEFAULT_BINARY: &str = "/usr/bin/gitlab-runner";

/// A service manager runnerform can drive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Systemd,
    #[serde(rename = "openrc")]
    OpenRc,
    Launchd,
    Windows,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Systemd => "systemd",
            Kind::OpenRc => "OpenRC",
            Kind::Launchd => "launchd",
            Kind::Windows => "Windows services",
        }
    }

    /// Whether runnerform writes the definition file itself, and so can read it back and
    /// compare it with the declaration.
    pub fn renders_definition(self) -> bool {
        matches!(self, Kind::Systemd | Kind::OpenRc)
    }
}

/// What the service runs: enough to tell whether an installed service is the declared one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub environment: Vec<(String, String)>,
}

/// The declared service, resolved against this machine.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub kind: Kind,
    pub user_level: bool,
    pub state: ServiceState,
    pub definition: Definition,
    /// Where the definition file lives, for the managers whose file runnerform writes.
    pub path: Option<PathBuf>,
    /// The definition file as runnerform writes it.
    pub contents: Option<String>,
    pub decl: ServiceDecl,
}

impl Spec {
    pub fn label(&self) -> service_manager::ServiceLabel {
        service_manager::ServiceLabel {
            qualifier: None,
            organization: None,
            application: self.name.clone(),
        }
    }
}

/// The arguments `gitlab-runner install` gives `gitlab-runner run`, in its order.
pub fn run_args(
    kind: Kind,
    name: &str,
    config_toml: &Path,
    working_directory: Option<&Path>,
    user: Option<&str>,
) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        "--config".to_string(),
        config_toml.display().to_string(),
    ];
    if let Some(wd) = working_directory {
        args.push("--working-directory".into());
        args.push(wd.display().to_string());
    }
    args.push("--service".into());
    args.push(name.to_string());
    // gitlab-runner logs to syslog by default everywhere but systemd, whose journal already
    // has the output.
    if kind != Kind::Systemd {
        args.push("--syslog".into());
    }
    if let Some(u) = user {
        args.push("--user".into());
        args.push(u.to_string());
    }
    args
}

/// Resolves the `service` node for this machine; `None` when the file declares no service
/// (then runnerform leaves the service alone). `root` is where the OS's state is observed
/// (`/` but in tests).
pub fn spec(d: &Desired, config_toml: &Path, root: &Path) -> Result<Option<Spec>, Problem> {
    let Some(decl) = &d.service else {
        return Ok(None);
    };
    let at = |p: Problem, loc: crate::diag::Loc, label: &str| p.at(&d.sources, loc, label);
    let user_level = decl.user_service.as_ref().is_some_and(|b| b.value);
    let kind = match decl.manager.as_ref().map(|m| m.value) {
        None | Some(ManagerChoice::Auto) => observe::detect(root).ok_or_else(|| {
            at(
                Problem::error(
                    "service_manager",
                    "no running service manager was found on this machine",
                ),
                decl.loc,
                "declared here",
            )
            .help(
                "neither systemd (/run/systemd/system) nor OpenRC (/run/openrc) is running; \
                 name one with manager \"openrc\" or \"systemd\", or remove the service node",
            )
        })?,
        Some(ManagerChoice::Systemd) => Kind::Systemd,
        Some(ManagerChoice::OpenRc) => Kind::OpenRc,
        Some(ManagerChoice::Launchd) => Kind::Launchd,
        Some(ManagerChoice::Windows) => Kind::Windows,
    };
    if user_level && matches!(kind, Kind::OpenRc | Kind::Windows) {
        let loc = decl.user_service.as_ref().map_or(decl.loc, |b| b.loc);
        return Err(at(
            Problem::error(
                "service_manager",
                format!("{} has no per-user services", kind.word()),
            ),
            loc,
            "a per-user service",
        )
        .help("remove user_service, or use systemd or launchd"));
    }
    let name = decl
        .name
        .as_ref()
        .map_or(DEFAULT_NAME.to_string(), |n| n.value.clone());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        let loc = decl.name.as_ref().map_or(decl.loc, |n| n.loc);
        return Err(at(
            Problem::error("bad_value", format!("\"{name}\" is not a service name")),
            loc,
            "not a service name",
        )
        .help("use letters, digits, '-', '_' and '.'"));
    }
    let user = decl.user.as_ref().map(|u| u.value.clone());
    let working_directory = decl.working_directory.as_ref().map(|w| w.value.clone());
    let program = decl
        .binary
        .as_ref()
        .map_or(PathBuf::from(DEFAULT_BINARY), |b| b.value.clone());
    // The service does not start in runnerform's directory, so relative paths would point
    // elsewhere once it runs.
    for (path, loc) in [
        (Some(&program), decl.binary.as_ref().map(|b| b.loc)),
        (
            working_directory.as_ref(),
            decl.working_directory.as_ref().map(|w| w.loc),
        ),
    ] {
        if let Some(p) = path
            && !p.is_absolute()
        {
            return Err(at(
                Problem::error(
                    "bad_value",
                    format!("{} is not an absolute path", p.display()),
                ),
                loc.unwrap_or(decl.loc),
                "relative path",
            )
            .help("the service starts elsewhere than runnerform; write the full path"));
        }
    }
    let config_toml = std::path::absolute(config_toml).unwrap_or(config_toml.to_path_buf());
    let definition = Definition {
        args: run_args(
            kind,
            &name,
            &config_toml,
            working_directory.as_deref(),
            user.as_deref(),
        ),
        program,
        environment: decl
            .environment
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
    };
    let path = observe::definition_path(kind, &name, user_level, root);
    let contents = match kind {
        Kind::OpenRc => Some(render::openrc_script(&name, &definition)),
        Kind::Systemd => Some(render::systemd_unit(&definition, user_level)),
        Kind::Launchd | Kind::Windows => None,
    };
    Ok(Some(Spec {
        name,
        kind,
        user_level,
        state: decl
            .state
            .as_ref()
            .map_or(ServiceState::Running, |s| s.value),
        definition,
        path,
        contents,
        decl: decl.clone(),
    }))
}
