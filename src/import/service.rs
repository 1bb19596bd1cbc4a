//! The installed gitlab-runner service, described as a `service` node, so that the imported
//! file adopts it as it is instead of installing it again.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::desired::render::quote;
use crate::service::{Definition, Kind, observe, render, run_args};

/// What was found of the service.
pub struct Found {
    pub kdl: String,
    /// Where its definition was read.
    pub path: PathBuf,
}

/// Reads the definition of the service `name` under the running service manager and
/// describes it. `None` when no such service is installed (or its manager does not keep a
/// definition file runnerform can read).
pub fn describe(name: &str, config_toml: &Path, running: impl Fn(Kind) -> bool) -> Option<Found> {
    let kind = observe::detect(Path::new("/"))?;
    let mut candidates: Vec<PathBuf> = observe::definition_path(kind, name, false, Path::new("/"))
        .into_iter()
        .collect();
    if kind == Kind::Systemd {
        for dir in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
            candidates.push(Path::new(dir).join(format!("{name}.service")));
        }
    }
    let (path, text) = candidates
        .into_iter()
        .find_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))?;
    let def = match kind {
        Kind::OpenRc => render::parse_openrc(&text),
        _ => render::parse_systemd(&text),
    };
    let kdl = match def {
        Some(def) => node(kind, name, &def, &path, config_toml, running(kind)),
        None => format!(
            "// The service {name} is installed ({}), but runnerform cannot read what it runs;\n\
             // declare it with a service node to manage it.\n",
            path.display()
        ),
    };
    Some(Found { kdl, path })
}

fn node(
    kind: Kind,
    name: &str,
    def: &Definition,
    path: &Path,
    config_toml: &Path,
    running: bool,
) -> String {
    let arg = |flag: &str| {
        def.args
            .iter()
            .position(|a| a == flag)
            .and_then(|i| def.args.get(i + 1))
            .cloned()
    };
    let user = arg("--user");
    let wd = arg("--working-directory").map(PathBuf::from);
    let service_name = arg("--service").unwrap_or_else(|| name.to_string());
    let expected = run_args(kind, name, config_toml, wd.as_deref(), user.as_deref());
    let mut out = String::new();
    let manager = match kind {
        Kind::Systemd => "systemd",
        Kind::OpenRc => "openrc",
        Kind::Launchd => "launchd",
        Kind::Windows => "windows",
    };
    let _ = writeln!(
        out,
        "// The gitlab-runner service, as installed ({}, {}).",
        kind.word(),
        path.display()
    );
    if def.args == expected && service_name == name {
        let _ = writeln!(
            out,
            "// It runs what runnerform would declare, so it is adopted as it is."
        );
    } else {
        let _ = writeln!(
            out,
            "// It runs `{}`,\n// which differs from what this node declares: the first apply \
             rewrites its definition\n// (the plan shows the diff).",
            crate::secrets::mask(&def.args.join(" "))
        );
    }
    let _ = writeln!(out, "service {{");
    if name != crate::service::DEFAULT_NAME {
        let _ = writeln!(out, "    name {}", quote(name));
    }
    let _ = writeln!(out, "    manager {}", quote(manager));
    let _ = writeln!(
        out,
        "    binary {}",
        quote(&def.program.display().to_string())
    );
    if let Some(u) = &user {
        let _ = writeln!(out, "    user {}", quote(u));
    }
    if let Some(w) = &wd {
        let _ = writeln!(
            out,
            "    working_directory {}",
            quote(&w.display().to_string())
        );
    }
    let env: Vec<&(String, String)> = def
        .environment
        .iter()
        .filter(|(_, v)| !crate::secrets::looks_like_token(v))
        .collect();
    if env.len() < def.environment.len() {
        let _ = writeln!(
            out,
            "    // A token in the service's environment was left out: tokens belong in \
             config.toml."
        );
    }
    if !env.is_empty() {
        let _ = writeln!(out, "    environment {{");
        for (k, v) in env {
            let _ = writeln!(out, "        {k} {}", quote(v));
        }
        let _ = writeln!(out, "    }}");
    }
    let _ = writeln!(
        out,
        "    state {}",
        quote(if running { "running" } else { "stopped" })
    );
    let _ = writeln!(out, "}}");
    out
}
