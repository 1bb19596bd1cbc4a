//! Planning the service: from the declared service and what the OS has, the steps that make
//! them agree. Pure, like the rest of planning.
//!
//! gitlab-runner re-reads config.toml by itself, so runner changes never restart the
//! service. A restart is planned only when what the process was started with changes (its
//! definition), or when a global key it reads only at start changes (`listen_address`,
//! `[session_server]`).

use serde::Serialize;
use similar::TextDiff;

use crate::desired::ServiceState;
use crate::plan::Change;
use crate::service::observe::ServiceView;
use crate::service::{Kind, Spec};

/// One thing done to the service, in the order the plan lists them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Stop,
    Install,
    /// Rewrite the definition of an installed service.
    Reinstall,
    Uninstall,
    Start,
    Restart,
}

impl Step {
    pub fn word(self) -> &'static str {
        match self {
            Step::Stop => "stop",
            Step::Install => "install",
            Step::Reinstall => "reinstall",
            Step::Uninstall => "uninstall",
            Step::Start => "start",
            Step::Restart => "restart",
        }
    }
}

/// Global keys that gitlab-runner reads only when it starts.
pub const RESTART_KEYS: &[&str] = &["listen_address", "session_server"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ServicePlan {
    pub name: String,
    pub manager: Kind,
    pub user_service: bool,
    /// `running`, `stopped` or `absent`, as declared.
    pub desired_state: String,
    pub installed: bool,
    pub running: bool,
    /// Installed by something else (gitlab-runner install, a package) with the declared
    /// definition: adopted as it is, not installed again.
    pub adopted: bool,
    pub steps: Vec<Step>,
    /// Why, in a sentence.
    pub reason: String,
    /// The definition file runnerform writes, where it writes one.
    pub definition_path: Option<String>,
    /// Unified diff of the definition file; empty when it does not change.
    pub diff: String,
    /// Digest of the service as observed, to refuse acting on a service that changed since.
    pub fingerprint: String,
    /// The definition file as it will be written (no secrets: they are refused in the
    /// service node).
    #[serde(skip)]
    #[schemars(skip)]
    pub contents: Option<String>,
}

impl ServicePlan {
    pub fn is_change(&self) -> bool {
        !self.steps.is_empty()
    }
}

fn state_word(s: ServiceState) -> &'static str {
    match s {
        ServiceState::Running => "running",
        ServiceState::Stopped => "stopped",
        ServiceState::Absent => "absent",
    }
}

/// Plans the service. `globals` are the plan's changes to config.toml's global keys.
pub fn plan(spec: &Spec, view: &ServiceView, globals: &[Change]) -> ServicePlan {
    let matches = match (&view.definition, spec.kind.renders_definition()) {
        // launchd and Windows: the definition is not read back; installed counts as declared.
        (_, false) => true,
        (Some(d), true) => *d == spec.definition,
        (None, true) => false,
    };
    let adopted = view.installed && matches && !view.ours();
    let restart_keys: Vec<&str> = globals
        .iter()
        .map(|c| c.key.path.as_str())
        .filter(|p| {
            RESTART_KEYS
                .iter()
                .any(|k| p == k || p.starts_with(&format!("{k}.")))
        })
        .collect();
    let (steps, reason): (Vec<Step>, String) = match spec.state {
        ServiceState::Absent if view.installed => {
            let mut s = Vec::new();
            if view.running {
                s.push(Step::Stop);
            }
            s.push(Step::Uninstall);
            (s, "declared absent".into())
        }
        ServiceState::Absent => (Vec::new(), "absent, as declared".into()),
        _ if !view.installed => {
            let mut s = vec![Step::Install];
            if spec.state == ServiceState::Running {
                s.push(Step::Start);
            }
            (s, "not installed".into())
        }
        ServiceState::Stopped => {
            let mut s = Vec::new();
            if view.running {
                s.push(Step::Stop);
            }
            if !matches {
                s.push(Step::Reinstall);
            }
            let why = match (view.running, matches) {
                (true, true) => "running, declared stopped".into(),
                (_, false) => "its definition differs from the declaration".into(),
                (false, true) => "stopped, as declared".into(),
            };
            (s, why)
        }
        ServiceState::Running => {
            if !matches {
                let last = if view.running {
                    Step::Restart
                } else {
                    Step::Start
                };
                (
                    vec![Step::Reinstall, last],
                    "its definition differs from the declaration, so it restarts".into(),
                )
            } else if !view.running {
                (vec![Step::Start], "installed but not running".into())
            } else if !restart_keys.is_empty() {
                (
                    vec![Step::Restart],
                    format!(
                        "gitlab-runner reads {} only when it starts",
                        restart_keys.join(", ")
                    ),
                )
            } else if adopted {
                (
                    Vec::new(),
                    "installed by something else with the declared definition; adopted as it is"
                        .into(),
                )
            } else {
                (Vec::new(), "running, as declared".into())
            }
        }
    };
    let writes = steps
        .iter()
        .any(|s| matches!(s, Step::Install | Step::Reinstall));
    let diff = match (&spec.contents, writes) {
        (Some(new), true) => {
            let old = view.text.as_deref().unwrap_or("");
            let path = spec
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            TextDiff::from_lines(old, new.as_str())
                .unified_diff()
                .context_radius(2)
                .header(&path, &path)
                .to_string()
        }
        _ => String::new(),
    };
    ServicePlan {
        name: spec.name.clone(),
        manager: spec.kind,
        user_service: spec.user_level,
        desired_state: state_word(spec.state).into(),
        installed: view.installed,
        running: view.running,
        adopted,
        steps,
        reason,
        definition_path: spec.path.as_ref().map(|p| p.display().to_string()),
        diff,
        fingerprint: view.digest(),
        contents: spec.contents.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::ServiceDecl;
    use crate::diag::{FileId, Loc};
    use crate::local::edit::KeyChange;
    use crate::plan::Side;
    use crate::service::{Definition, render};

    fn spec(state: ServiceState) -> Spec {
        let definition = Definition {
            program: "/usr/bin/gitlab-runner".into(),
            args: vec!["run".into()],
            environment: Vec::new(),
        };
        Spec {
            name: "gitlab-runner".into(),
            kind: Kind::OpenRc,
            user_level: false,
            state,
            contents: Some(render::openrc_script("gitlab-runner", &definition)),
            definition,
            path: Some("/etc/init.d/gitlab-runner".into()),
            decl: ServiceDecl::empty(Loc {
                file: FileId(0),
                span: (0, 0).into(),
            }),
        }
    }

    fn view(s: &Spec, installed: bool, running: bool, same: bool) -> ServiceView {
        let mut d = s.definition.clone();
        if !same {
            d.args.push("--user".into());
        }
        ServiceView {
            installed,
            running,
            found_at: None,
            text: installed.then(|| render::openrc_script(&s.name, &d)),
            definition: installed.then_some(d),
        }
    }

    fn steps(state: ServiceState, installed: bool, running: bool, same: bool) -> Vec<Step> {
        let s = spec(state);
        plan(&s, &view(&s, installed, running, same), &[]).steps
    }

    #[test]
    fn steps_follow_the_declared_state() {
        use ServiceState::*;
        use Step::*;
        assert_eq!(steps(Running, false, false, true), [Install, Start]);
        assert_eq!(steps(Running, true, false, true), [Start]);
        assert_eq!(steps(Running, true, true, true), []);
        assert_eq!(steps(Running, true, true, false), [Reinstall, Restart]);
        assert_eq!(steps(Running, true, false, false), [Reinstall, Start]);
        assert_eq!(steps(Stopped, false, false, true), [Install]);
        assert_eq!(steps(Stopped, true, true, true), [Stop]);
        assert_eq!(steps(Stopped, true, true, false), [Stop, Reinstall]);
        assert_eq!(steps(Stopped, true, false, true), []);
        assert_eq!(steps(Absent, true, true, true), [Stop, Uninstall]);
        assert_eq!(steps(Absent, true, false, false), [Uninstall]);
        assert_eq!(steps(Absent, false, false, true), []);
    }

    #[test]
    fn only_keys_read_at_start_restart_the_service() {
        let s = spec(ServiceState::Running);
        let v = view(&s, true, true, true);
        let change = |path: &str| Change {
            side: Side::Local,
            key: KeyChange {
                path: path.into(),
                old: None,
                new: Some("1".into()),
            },
        };
        for key in [
            "concurrent",
            "check_interval",
            "log_level",
            "listen_address_x",
        ] {
            assert!(plan(&s, &v, &[change(key)]).steps.is_empty(), "{key}");
        }
        for key in ["listen_address", "session_server.listen_address"] {
            let p = plan(&s, &v, &[change(key)]);
            assert_eq!(p.steps, [Step::Restart], "{key}");
            assert!(
                p.reason.contains(key.split('.').next().unwrap()),
                "{}",
                p.reason
            );
        }
    }

    #[test]
    fn a_matching_definition_written_by_someone_else_is_adopted() {
        let s = spec(ServiceState::Running);
        let mut v = view(&s, true, true, true);
        v.text = Some("#!/sbin/openrc-run\ncommand=/usr/bin/gitlab-runner\n".into());
        let p = plan(&s, &v, &[]);
        assert!(p.adopted);
        assert!(p.steps.is_empty());
        assert!(p.diff.is_empty());
    }
}
