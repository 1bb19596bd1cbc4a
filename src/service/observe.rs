//! What the OS has: which service manager runs this machine, whether the service is
//! installed and running, and what its definition file says.

use std::path::{Path, PathBuf};

use service_manager::{ServiceManager, ServiceStatus, ServiceStatusCtx};

use super::{Definition, Kind, Spec, render};
use crate::diag::Problem;

/// The service manager that runs this machine. systemd counts only when it is PID 1's
/// manager (`/run/systemd/system` exists, as `sd_booted` checks): on a container or a
/// machine booted by OpenRC, `systemctl` may be installed and still manage nothing.
pub fn detect(root: &Path) -> Option<Kind> {
    if cfg!(target_os = "macos") {
        return Some(Kind::Launchd);
    }
    if cfg!(windows) {
        return Some(Kind::Windows);
    }
    if root.join("run/systemd/system").is_dir() {
        return Some(Kind::Systemd);
    }
    // OpenRC creates /run/openrc when it boots the machine.
    if root.join("run/openrc").is_dir() {
        return Some(Kind::OpenRc);
    }
    None
}

/// Where runnerform writes the definition file.
pub fn definition_path(kind: Kind, name: &str, user_level: bool, root: &Path) -> Option<PathBuf> {
    match kind {
        Kind::OpenRc => Some(root.join("etc/init.d").join(name)),
        Kind::Systemd if user_level => {
            let base = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
            Some(base.join("systemd/user").join(format!("{name}.service")))
        }
        Kind::Systemd => Some(
            root.join("etc/systemd/system")
                .join(format!("{name}.service")),
        ),
        Kind::Launchd | Kind::Windows => None,
    }
}

/// Where a distribution package may have put the unit instead.
fn package_paths(kind: Kind, name: &str, root: &Path) -> Vec<PathBuf> {
    match kind {
        Kind::Systemd => ["usr/lib/systemd/system", "lib/systemd/system"]
            .iter()
            .map(|d| root.join(d).join(format!("{name}.service")))
            .collect(),
        _ => Vec::new(),
    }
}

/// The service as the OS has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceView {
    pub installed: bool,
    pub running: bool,
    /// The definition file that was found, and its text.
    pub found_at: Option<PathBuf>,
    pub text: Option<String>,
    pub definition: Option<Definition>,
}

impl ServiceView {
    /// Whether runnerform wrote the installed definition.
    pub fn ours(&self) -> bool {
        self.text
            .as_deref()
            .is_some_and(|t| t.contains(render::MARKER))
    }

    /// A digest for the plan's fingerprints: a saved plan is refused if the service changed.
    pub fn digest(&self) -> String {
        let state = match (self.installed, self.running) {
            (false, _) => "absent",
            (true, false) => "stopped",
            (true, true) => "running",
        };
        crate::plan::digest_text(&format!(
            "{state}\n{}",
            self.text.as_deref().unwrap_or_default()
        ))
    }
}

pub fn manager_kind(kind: Kind) -> service_manager::ServiceManagerKind {
    match kind {
        Kind::Systemd => service_manager::ServiceManagerKind::Systemd,
        Kind::OpenRc => service_manager::ServiceManagerKind::OpenRc,
        Kind::Launchd => service_manager::ServiceManagerKind::Launchd,
        Kind::Windows => service_manager::ServiceManagerKind::Sc,
    }
}

pub fn manager(spec: &Spec) -> Box<dyn ServiceManager> {
    let mut m = <dyn ServiceManager>::target(manager_kind(spec.kind));
    if spec.user_level {
        // Only systemd and launchd get here with a user service (checked when resolving).
        let _ = m.set_level(service_manager::ServiceLevel::User);
    }
    m
}

/// Observes the declared service.
pub fn observe(spec: &Spec) -> Result<ServiceView, Problem> {
    let mut view = ServiceView::default();
    if spec.kind.renders_definition() {
        let mut candidates: Vec<PathBuf> = spec.path.iter().cloned().collect();
        candidates.extend(package_paths(spec.kind, &spec.name, Path::new("/")));
        for p in candidates {
            match std::fs::read_to_string(&p) {
                Ok(text) => {
                    view.definition = match spec.kind {
                        Kind::OpenRc => render::parse_openrc(&text),
                        _ => render::parse_systemd(&text),
                    };
                    view.text = Some(text);
                    view.found_at = Some(p);
                    view.installed = true;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Problem::error(
                        "service",
                        format!(
                            "cannot read the service definition {}: {}",
                            p.display(),
                            crate::desired::load::io_reason(&e)
                        ),
                    ));
                }
            }
        }
        if !view.installed {
            return Ok(view);
        }
    }
    let status = manager(spec).status(ServiceStatusCtx {
        label: spec.label(),
    });
    match status {
        Ok(ServiceStatus::Running) => {
            view.installed = true;
            // OpenRC remembers that it started the service, not whether the process still
            // runs: for its own scripts runnerform checks the pidfile they write.
            view.running = !(spec.kind == Kind::OpenRc && view.ours())
                || pid_alive(&Path::new("/run").join(format!("{}.pid", spec.name)));
        }
        Ok(ServiceStatus::Stopped(_)) => view.installed = true,
        Ok(ServiceStatus::NotInstalled) => {}
        // A service that crashed, or a manager that cannot answer (systemd not running):
        // treated as not running, so the plan starts it and the start reports what fails.
        Err(_) => {}
    }
    Ok(view)
}

/// Whether the process in `pidfile` runs (a zombie does not).
fn pid_alive(pidfile: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(pidfile) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
