//! Carrying out the plan's service steps through `service-manager`.
//!
//! What would make a step fail half-way (the program missing, an unknown user, no
//! permission) is checked before anything is touched ([`preflight`]). A step that fails
//! anyway is undone where it can be: a fresh install that does not start is uninstalled,
//! and a rewritten definition that does not start is put back.

use std::ffi::OsString;
use std::path::Path;

use service_manager::{
    RestartPolicy, ServiceInstallCtx, ServiceStartCtx, ServiceStopCtx, ServiceUninstallCtx,
};

use super::observe::{self, manager};
use super::{Kind, Spec};
use crate::diag::Problem;
use crate::plan::service::{ServicePlan, Step};

/// Checks what the steps need, before any of them runs.
pub fn preflight(spec: &Spec, plan: &ServicePlan, sources: &crate::diag::Sources) -> Vec<Problem> {
    let mut problems = Vec::new();
    if plan.steps.is_empty() {
        return problems;
    }
    let decl = &spec.decl;
    let writes = plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::Install | Step::Reinstall));
    if writes {
        let program = &spec.definition.program;
        let loc = decl.binary.as_ref().map_or(decl.loc, |b| b.loc);
        if let Some(why) = not_executable(program) {
            problems.push(
                Problem::error(
                    "service_binary",
                    format!("the service's program {} {why}", program.display()),
                )
                .at(sources, loc, "the program the service runs")
                .help(
                    "install gitlab-runner first, or set binary to where it is; nothing was \
                     installed",
                ),
            );
        }
        if let Some(user) = &decl.user
            && !user_exists(&user.value)
        {
            problems.push(
                Problem::error(
                    "service_user",
                    format!("there is no user \"{}\" on this machine", user.value),
                )
                .at(sources, user.loc, "unknown user")
                .help("create the user first (useradd), or name an existing one"),
            );
        }
    }
    if !spec.user_level && !is_root() {
        problems.push(
            Problem::error(
                "service_privilege",
                format!(
                    "changing the system service {} needs root ({} of it planned)",
                    spec.name,
                    plan.steps
                        .iter()
                        .map(|s| s.word())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .at(sources, decl.loc, "a system service")
            .help("run runnerform as root (sudo), or declare user_service #true"),
        );
    }
    problems
}

fn not_executable(p: &Path) -> Option<&'static str> {
    match std::fs::metadata(p) {
        Err(_) => Some("does not exist"),
        Ok(m) if !m.is_file() => Some("is not a file"),
        #[cfg(unix)]
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt;
            (m.permissions().mode() & 0o111 == 0).then_some("is not executable")
        }
        #[cfg(not(unix))]
        Ok(_) => None,
    }
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(unix))]
fn is_root() -> bool {
    true
}

#[cfg(unix)]
fn user_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string; only the returned pointer's nullness is
    // read, before any other call could reuse getpwnam's static buffer.
    unsafe { !libc::getpwnam(c.as_ptr()).is_null() }
}

#[cfg(not(unix))]
fn user_exists(_: &str) -> bool {
    true
}

/// Runs the steps in order. `progress` gets one line per step done.
pub fn execute(
    spec: &Spec,
    plan: &ServicePlan,
    progress: &mut dyn FnMut(&str),
) -> Result<(), Problem> {
    let now = observe::observe(spec)?;
    if now.digest() != plan.fingerprint {
        return Err(Problem::error(
            "stale_plan",
            format!("the service {} changed since the plan was made", spec.name),
        )
        .help("something started, stopped or reinstalled it in between; plan again"));
    }
    let m = manager(spec);
    let fail = |what: &str, e: std::io::Error| {
        Problem::error(
            "service",
            format!(
                "could not {what} the service {} with {}: {}",
                spec.name,
                spec.kind.word(),
                e.to_string().trim()
            ),
        )
    };
    let previous = now.text.clone();
    for step in &plan.steps {
        match step {
            Step::Stop => m
                .stop(ServiceStopCtx {
                    label: spec.label(),
                })
                .map_err(|e| fail("stop", e))?,
            Step::Install | Step::Reinstall => install(spec, &*m)
                .map_err(|e| fail(step.word(), e).help("nothing was left installed half-way"))?,
            Step::Uninstall => {
                if spec.kind == Kind::OpenRc {
                    zap(spec);
                }
                m.uninstall(ServiceUninstallCtx {
                    label: spec.label(),
                })
                .map_err(|e| fail("uninstall", e))?
            }
            Step::Start | Step::Restart => {
                if spec.kind == Kind::OpenRc && *step == Step::Start {
                    // OpenRC refuses to start what it believes started; the plan starts it
                    // because its process is gone, so reset OpenRC's record first.
                    zap(spec);
                }
                let started = if *step == Step::Restart {
                    m.stop(ServiceStopCtx {
                        label: spec.label(),
                    })
                    .and_then(|()| {
                        m.start(ServiceStartCtx {
                            label: spec.label(),
                        })
                    })
                } else {
                    m.start(ServiceStartCtx {
                        label: spec.label(),
                    })
                };
                if let Err(e) = started {
                    let undone = undo(spec, plan, &*m, previous.as_deref());
                    return Err(fail(step.word(), e).help(undone));
                }
            }
        }
        progress(&format!("service {}: {}", spec.name, past(*step)));
    }
    Ok(())
}

/// Resets OpenRC's record of the service to stopped.
fn zap(spec: &Spec) {
    let _ = std::process::Command::new("rc-service")
        .arg(&spec.name)
        .arg("zap")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

fn past(step: Step) -> &'static str {
    match step {
        Step::Stop => "stopped",
        Step::Install => "installed",
        Step::Reinstall => "reinstalled",
        Step::Uninstall => "uninstalled",
        Step::Start => "started",
        Step::Restart => "restarted",
    }
}

/// Writes the definition and enables the service at boot.
fn install(spec: &Spec, m: &dyn service_manager::ServiceManager) -> std::io::Result<()> {
    let ctx = ServiceInstallCtx {
        label: spec.label(),
        program: spec.definition.program.clone(),
        args: spec.definition.args.iter().map(OsString::from).collect(),
        contents: spec.contents.clone(),
        username: None,
        working_directory: None,
        environment: (!spec.definition.environment.is_empty())
            .then(|| spec.definition.environment.clone()),
        autostart: true,
        restart_policy: RestartPolicy::Always {
            delay_secs: Some(120),
        },
    };
    if let Err(e) = m.install(ctx) {
        // The file may be written while enabling it failed: remove what was written.
        let _ = m.uninstall(ServiceUninstallCtx {
            label: spec.label(),
        });
        return Err(e);
    }
    // service-manager writes the unit but does not tell systemd to read it again.
    if spec.kind == Kind::Systemd {
        let mut cmd = std::process::Command::new("systemctl");
        if spec.user_level {
            cmd.arg("--user");
        }
        let out = cmd.arg("daemon-reload").output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "systemctl daemon-reload: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// After a failed start: a fresh install is removed, a rewritten definition is put back.
/// Returns what was done, for the diagnostic's help.
fn undo(
    spec: &Spec,
    plan: &ServicePlan,
    m: &dyn service_manager::ServiceManager,
    previous: Option<&str>,
) -> String {
    if plan.steps.contains(&Step::Install) {
        let removed = m
            .uninstall(ServiceUninstallCtx {
                label: spec.label(),
            })
            .is_ok();
        return if removed {
            "the service was uninstalled again, so nothing is left half-installed".into()
        } else {
            "uninstalling it again failed too; check the service manager".into()
        };
    }
    if plan.steps.contains(&Step::Reinstall)
        && let (Some(old), Some(path)) = (previous, &spec.path)
        && crate::local::write::replace(path, old.as_bytes(), 0o644).is_ok()
    {
        let _ = m.start(ServiceStartCtx {
            label: spec.label(),
        });
        return format!("the previous definition of {} was put back", path.display());
    }
    "see the service manager's log".into()
}
