//! `runnerform validate`: check the KDL file only.

use crate::cli::ui::plural;
use crate::cli::{Cli, Ui};
use crate::desired::{self, HostChoice, RefCheck};
use crate::exit::Exit;
use crate::output::ValidateReport;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document (schemas/validate.schema.json): every problem with its file,
    /// line, column, code, message and hint. Nothing else is printed; the exit code is the same.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, ui: &Ui, args: &Args) -> Exit {
    let host = cli.host.as_deref().map_or(HostChoice::All, HostChoice::One);
    let loaded = desired::read_for(&cli.file, RefCheck::Warn, host);
    if args.json {
        return json(cli, &loaded);
    }
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

/// The report as one JSON document on stdout.
fn json(cli: &Cli, loaded: &desired::Loaded) -> Exit {
    let report = ValidateReport {
        format: crate::output::VALIDATE_FORMAT,
        file: cli.file.display().to_string(),
        valid: loaded.desired.is_some(),
        errors: loaded.problems.errors(),
        warnings: loaded.problems.warnings(),
        runners: loaded
            .desired
            .iter()
            .flat_map(|d| d.runners.iter().map(|r| r.name.value.clone()))
            .collect(),
        hosts: loaded.hosts.clone(),
        problems: loaded.problems.list.iter().map(Into::into).collect(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("report serialises")
    );
    if report.valid {
        Exit::Success
    } else {
        Exit::Error
    }
}
