//! What GitLab says of each declared runner: read-only, for `runnerform status`. The entry of
//! each runner is found with the planner's own matcher.

use crate::desired::Desired;
use crate::diag::Problem;
use crate::local::expand::Environment;
use crate::output::StatusRow;
use crate::remote::RemoteError;
use crate::views;

/// Each declared runner's row.
pub fn status(
    d: &Desired,
    config_toml: Option<&std::path::Path>,
    env: &Environment,
) -> Result<Vec<StatusRow>, Problem> {
    let path = views::config_path(config_toml, d);
    let local = crate::local::read(&path)?;
    let (state, _) = crate::local::state::read(&path)?;
    let (g, token) = super::gitlab_node(d)?;
    let (client, rt) = super::client_for(d, g, token)?;
    let entries = crate::plan::matcher::entries(&local, env);
    let mut matcher = crate::plan::matcher::Matcher::new(&entries);
    let owned = crate::plan::matcher::Owned::new(&state);
    let mut out = Vec::new();
    for r in &d.runners {
        let name = &r.name.value;
        let old_name = r.body.renamed_from.as_ref().map(|o| o.value.as_str());
        let managed = owned.of(name, old_name);
        let entry = matcher.claim(managed, name, old_name).ok().flatten();
        let id = entry
            .map(|e| e.id)
            .filter(|id| *id > 0)
            .or_else(|| managed.map(|m| m.id).filter(|id| *id > 0));
        let expires = entry
            .map(|e| local.doc.entry(e.index))
            .and_then(|t| t.get("token_expires_at").cloned())
            .and_then(|v| v.as_value().cloned())
            .map(|v| v.to_string().trim().to_string())
            .filter(|v| !v.starts_with("0001-01-01"));
        let mut row = StatusRow {
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
                    return Err(match crate::remote::advice::unreachable(&g.url.value, &e) {
                        Some(a) => Problem::error("gitlab", a.message).help(a.hint),
                        None => Problem::error("gitlab", format!("reading runner {id}: {e}")),
                    });
                }
            }
        }
        out.push(row);
    }
    Ok(out)
}
