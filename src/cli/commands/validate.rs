//! `runnerform validate`: check the KDL file only.

use crate::cli::ui::plural;
use crate::cli::{Cli, Ui};
use crate::desired::{self, HostChoice, RefCheck};
use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(cli: &Cli, ui: &Ui, _args: &Args) -> Exit {
    let host = cli.host.as_deref().map_or(HostChoice::All, HostChoice::One);
    let loaded = desired::read_for(&cli.file, RefCheck::Warn, host);
    ui.problems(&loaded.problems);
    let (errors, warnings) = (loaded.problems.errors(), loaded.problems.warnings());
    let Some(d) = loaded.desired else {
        eprintln!(
            "{}: {} found, {}",
            cli.file.display(),
            plural(errors, "error"),
            plural(warnings, "warning")
        );
        return Exit::Error;
    };
    let files = d.sources.files().len();
    let mut line = format!(
        "{} is valid: {}",
        cli.file.display(),
        plural(d.runners.len(), "runner")
    );
    if !loaded.hosts.is_empty() && cli.host.is_none() {
        line.push_str(&format!(" on {}", plural(loaded.hosts.len(), "host")));
    }
    if files > 1 {
        line.push_str(&format!(" in {}", plural(files, "file")));
    }
    if warnings > 0 {
        line.push_str(&format!(", {}", plural(warnings, "warning")));
    }
    ui.say(line);
    for r in &d.runners {
        let executor = r
            .body
            .settings
            .get("executor")
            .and_then(|e| e.value.as_str())
            .unwrap_or("?");
        let scope = r
            .body
            .scope
            .as_ref()
            .map_or_else(|| "adopted by token".to_string(), |s| s.value.to_string());
        ui.detail(format!("  {}  ({executor}, {scope})", r.name.value));
    }
    Exit::Success
}
