//! `runnerform status`: what GitLab says of each declared runner.

use toml_edit::Item;

use crate::cli::planning::{client_for, load_desired};
use crate::cli::{Cli, Ui};
use crate::desired::RefCheck;
use crate::diag::Problem;
use crate::exit::Exit;
use crate::output::StatusRow;
use crate::remote::RemoteError;
use crate::views;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document instead of a table (schemas/status.schema.json)
    #[arg(long)]
    pub json: bool,
}

/// One runner's row: the same for the table and for `--json`.
type Row = StatusRow;

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
    let path = views::config_path(cli.config_toml.as_deref(), &d);
    let local = crate::local::read(&path)?;
    let (state, _) = crate::local::state::read(&path)?;
    let g = d
        .gitlab
        .as_ref()
        .ok_or_else(|| Problem::error("no_gitlab", "the KDL file declares no GitLab instance"))?;
    let token = g
        .token
        .as_ref()
        .ok_or_else(|| Problem::error("no_token", "the gitlab node has no access token"))?;
    let (client, rt) = client_for(&d, g, token)?;
    let mut out = Vec::new();
    for r in &d.runners {
        let name = &r.name.value;
        let entry = local
            .runners()
            .into_iter()
            .find(|t| t.get("name").and_then(Item::as_str) == Some(name.as_str()));
        let id = entry
            .and_then(|t| t.get("id").and_then(Item::as_integer))
            .filter(|id| *id > 0)
            .or_else(|| state.find(name).map(|m| m.id).filter(|id| *id > 0));
        let expires = entry
            .and_then(|t| t.get("token_expires_at"))
            .and_then(|v| v.as_value())
            .map(|v| v.to_string().trim().to_string())
            .filter(|v| !v.starts_with("0001-01-01"));
        let mut row = Row {
            name: name.clone(),
            id,
            status: "not_registered".into(),
            paused: None,
            contacted_at: None,
            managers: Vec::new(),
            token_expires_at: expires,
        };
        if let Some(id) = id {
            match rt.block_on(client.runner(id)) {
                Ok(rr) => {
                    row.status = rr.status;
                    row.paused = Some(rr.paused);
                    row.contacted_at = rr.contacted_at;
                    row.managers = rt
                        .block_on(client.managers(id))
                        .map_err(|e| Problem::error("gitlab", format!("runner {id}: {e}")))?
                        .into_iter()
                        .map(|(system_id, status)| format!("{system_id} ({status})"))
                        .collect();
                }
                Err(RemoteError::Definite { status: 404, .. }) => row.status = "gone".into(),
                Err(e) => {
                    let p = match crate::remote::advice::unreachable(&g.url.value, &e) {
                        Some(a) => Problem::error("gitlab", a.message).help(a.hint),
                        None => Problem::error("gitlab", format!("reading runner {id}: {e}")),
                    };
                    return Err(Some(p));
                }
            }
        }
        out.push(row);
    }
    Ok((out, service_line(&d, &path)))
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
