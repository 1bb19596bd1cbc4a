//! `runnerform status`: what GitLab says of each declared runner.

use crate::cli::planning::load_desired;
use crate::cli::{Cli, Ui};
use crate::desired::RefCheck;
use crate::diag::Problem;
use crate::engine;
use crate::exit::Exit;
use crate::local::expand::Environment;
use crate::output::StatusRow as Row;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, ui: &Ui, args: &Args) -> Exit {
    match rows(cli, ui) {
        Ok((rows, service)) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("rows serialise")
                );
            } else {
                print!("{}", table(&rows));
                if let Some(line) = service {
                    println!("{line}");
                }
            }
            Exit::Success
        }
        Err(Some(p)) => {
            ui.problem(&p);
            Exit::Error
        }
        Err(None) => Exit::Error,
    }
}

/// The declared service as this machine has it, in one line.
fn service_line(d: &crate::desired::Desired, config_toml: &std::path::Path) -> Option<String> {
    let spec = match crate::service::spec(d, config_toml, std::path::Path::new("/")) {
        Ok(spec) => spec?,
        Err(p) => return Some(format!("Service: {}", p.message)),
    };
    let state = match crate::service::observe::observe(&spec) {
        Ok(v) if v.running => "running",
        Ok(v) if v.installed => "installed, not running",
        Ok(_) => "not installed",
        Err(p) => return Some(format!("Service {}: {}", spec.name, p.message)),
    };
    Some(format!(
        "Service {} ({}): {state}",
        spec.name,
        spec.kind.word()
    ))
}

/// Each declared runner's row, and the service's line when the file declares a service.
type Rows = (Vec<Row>, Option<String>);

fn rows(cli: &Cli, ui: &Ui) -> Result<Rows, Option<Problem>> {
    let d = load_desired(cli, ui, RefCheck::Require).map_err(|_| None)?;
    let rows = engine::status(&d, cli.config_toml.as_deref(), &Environment::from_process())?;
    let path = crate::views::config_path(cli.config_toml.as_deref(), &d);
    Ok((rows, service_line(&d, &path)))
}

fn table(rows: &[Row]) -> String {
    let header = [
        "NAME",
        "ID",
        "STATUS",
        "PAUSED",
        "CONTACTED",
        "MANAGERS",
        "TOKEN EXPIRES",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.id.map_or("-".into(), |i| i.to_string()),
                r.status.clone(),
                r.paused
                    .map_or("-".into(), |p| if p { "yes" } else { "no" }.into()),
                r.contacted_at.clone().unwrap_or_else(|| "never".into()),
                if r.managers.is_empty() {
                    "-".into()
                } else {
                    r.managers.join(", ")
                },
                r.token_expires_at.clone().unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, v) in widths.iter_mut().zip(c) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |vals: Vec<&str>| {
        let mut s = String::new();
        for (i, v) in vals.iter().enumerate() {
            if i + 1 == vals.len() {
                s.push_str(v);
            } else {
                s.push_str(&format!("{v:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for c in &cells {
        out.push_str(&line(c.iter().map(String::as_str).collect()));
    }
    out
}
