//! Gathering the views a plan is made from. This is where planning's I/O happens: reading
//! config.toml and the ownership record, and resolving secret references. The planning core
//! itself ([`crate::plan`]) reads nothing.

use std::path::{Path, PathBuf};

use crate::desired::check::{collect_secrets, resolve_file};
use crate::desired::{Desired, SecretRef, SecretSource};
use crate::diag::Problem;
use crate::local::state::{self, State};
use crate::local::value::Secrets;
use crate::local::{self, LocalView};

/// The local views: config.toml, the ownership record, and the secrets to write.
pub struct LocalViews {
    pub local: LocalView,
    pub state: State,
    pub state_text: Option<String>,
    pub secrets: Secrets,
}

/// config.toml's path: `--config-toml`, else the `config` node's argument, else
/// gitlab-runner's default. Relative paths in the KDL file are relative to that file.
pub fn config_path(cli: Option<&Path>, d: &Desired) -> PathBuf {
    if let Some(p) = cli {
        return p.to_path_buf();
    }
    match &d.config.path {
        Some(p) if p.value.is_absolute() => p.value.clone(),
        Some(p) => {
            let file = &d.sources.get(p.loc.file).path;
            file.parent().unwrap_or(Path::new("")).join(&p.value)
        }
        None => local::default_path(),
    }
}

pub fn gather_local(d: &Desired, config_toml: &Path) -> Result<LocalViews, Problem> {
    let local = local::read(config_toml)?;
    let (state, state_text) = state::read(config_toml)?;
    let secrets = resolve_settings_secrets(d)?;
    Ok(LocalViews {
        local,
        state,
        state_text,
        secrets,
    })
}

/// Reads the secrets that are written into config.toml (settings such as S3 keys).
pub fn resolve_settings_secrets(d: &Desired) -> Result<Secrets, Problem> {
    let mut refs: Vec<&SecretRef> = Vec::new();
    collect_secrets(&d.config.globals, &mut refs);
    for r in &d.runners {
        collect_secrets(&r.body.settings, &mut refs);
    }
    Ok(Secrets::resolve_all(refs, |r| resolve(d, r)))
}

/// The value behind a reference: an env var, or a file's contents without the trailing newline.
pub fn resolve(d: &Desired, r: &SecretRef) -> Result<String, Problem> {
    let missing = |what: String| {
        Problem::error("missing_secret", what)
            .at(&d.sources, r.loc, "referenced here")
            .help("set it before running runnerform")
    };
    let value = match &r.source {
        SecretSource::Env(name) => match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(missing(format!("environment variable {name} is not set"))),
        },
        SecretSource::File(p) => {
            let path = resolve_file(d, r, p);
            std::fs::read_to_string(&path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| {
                    missing(format!(
                        "cannot read secret file {}: {}",
                        path.display(),
                        crate::desired::load::io_reason(&e)
                    ))
                })
        }
    };
    value.inspect(|v| crate::secrets::remember(v))
}
