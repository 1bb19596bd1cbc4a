//! Before the first write: does the token's user hold the role every planned registration
//! needs? GitLab answers that with reads (`GET /user` for `is_admin`, the user's membership in
//! each declared project and group), so a missing role stops the apply before anything is
//! registered, instead of after half of the runners were.

use std::collections::BTreeMap;

use serde_json::Value;

use super::gather::Online;
use crate::desired::Desired;
use crate::diag::Problem;
use crate::plan::{Plan, Step};

/// GitLab's access levels.
const MAINTAINER: u32 = 40;
const OWNER: u32 = 50;

/// One problem per runner whose registration the token's user may not make. Skipped (empty)
/// when the token's scopes do not allow the reads (`api` or `read_api`).
pub fn check(d: &Desired, plan: &Plan, online: &Online) -> Result<Vec<Problem>, Problem> {
    let scopes = &online.token.scopes;
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let can_read = has("api") || has("read_api");
    let Some(user_id) = online.token.user_id.filter(|_| can_read) else {
        return Ok(Vec::new());
    };
    // What each registration needs: (kind, id) -> the runners asking.
    let mut needs: Vec<(&str, Option<(&'static str, i64)>)> = Vec::new();
    for rp in &plan.runners {
        for step in &rp.steps {
            if let Step::Register { request } = step {
                let body = request.body.clone().unwrap_or(Value::Null);
                let target = if let Some(id) = body.get("project_id").and_then(Value::as_i64) {
                    Some(("projects", id))
                } else {
                    body.get("group_id")
                        .and_then(Value::as_i64)
                        .map(|id| ("groups", id))
                };
                needs.push((rp.name.as_str(), target));
            }
        }
    }
    if needs.is_empty() {
        return Ok(Vec::new());
    }
    let rt = &online.runtime;
    let client = &online.client;
    let unanswered = |e: crate::remote::RemoteError| {
        Problem::error(
            "gitlab",
            format!("checking the token's role before applying: {e}"),
        )
        .help("nothing was changed; try again")
    };
    if rt.block_on(client.is_admin()).map_err(unanswered)? {
        return Ok(Vec::new());
    }
    let mut levels: BTreeMap<(&str, i64), Option<u32>> = BTreeMap::new();
    for (_, target) in &needs {
        if let Some((kind, id)) = target
            && !levels.contains_key(&(*kind, *id))
        {
            let level = rt
                .block_on(client.member_access(kind, *id, user_id))
                .map_err(unanswered)?;
            levels.insert((*kind, *id), level);
        }
    }
    let declared: std::collections::HashMap<&str, &crate::desired::Runner> = d
        .runners
        .iter()
        .map(|r| (r.name.value.as_str(), r))
        .collect();
    let mut problems = Vec::new();
    for (name, target) in needs {
        let Some(r) = declared.get(name).copied() else {
            continue;
        };
        let scope = r.body.scope.as_ref();
        let loc = scope.map_or(r.name.loc, |s| s.loc);
        let (ok, what) = match target {
            None => (
                false,
                "instance runners need an administrator's token".to_string(),
            ),
            Some((kind, id)) => {
                let have = levels.get(&(kind, id)).copied().flatten();
                let (need, role, place) = if kind == "groups" {
                    (OWNER, "Owner", "group")
                } else {
                    (MAINTAINER, "Maintainer", "project")
                };
                (
                    have.is_some_and(|l| l >= need),
                    format!(
                        "{place} runners need the {role} role (or higher) in the {place}; the \
                         token's user {}",
                        match have {
                            Some(l) => format!("has access level {l}"),
                            None => "is no member".to_string(),
                        }
                    ),
                )
            }
        };
        if !ok {
            let scope_text = scope.map_or_else(|| "instance".to_string(), |s| s.value.to_string());
            problems.push(
                Problem::error(
                    "gitlab_role",
                    format!("this token cannot register runner {name} ({scope_text})"),
                )
                .at(&d.sources, loc, "needs a role the token's user lacks")
                .help(format!(
                    "{what}; use a token of a user who has it, or change the scope. Nothing was \
                     changed."
                )),
            );
        }
    }
    Ok(problems)
}
