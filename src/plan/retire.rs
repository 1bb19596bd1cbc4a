//! What makes a delete happen: a managed runner that is no longer declared, a delete an
//! offline apply left for GitLab, and (only with `--delete-unmanaged`) an entry runnerform
//! never managed. Everything else that is not declared is reported and left alone.

use super::make::{Planning, same_url, targeted};
use super::matcher::{Entry, Matcher};
use super::reason::Reason;
use super::steps::{Request, Step, delete_runner};
use super::{Action, RunnerPlan};
use crate::local::state::Managed;

impl Planning<'_> {
    pub fn retire(&mut self, matcher: &mut Matcher) {
        let state = self.inp.state;
        for m in &state.runners {
            if self.index.declared(&m.name) || !targeted(self.inp.targets, &m.name, None) {
                continue;
            }
            let entry = matcher.claim_retired(m);
            self.delete_managed(m, entry);
        }
        // Deletes that an offline apply left for GitLab.
        if !self.offline {
            for m in &state.pending_deletes {
                let mut plan = RunnerPlan::new(
                    &m.name,
                    Action::Delete,
                    Reason::DeferredDelete,
                    "removed from config.toml by an offline apply; now deleted on GitLab",
                );
                plan.id = Some(m.id);
                if same_url(&m.url, &self.url) {
                    plan.steps.push(delete_runner(m.id));
                } else {
                    plan.reason.push_str(&format!(
                        " (not: it is registered with {}, which this file no longer declares; \
                         delete it there)",
                        m.url
                    ));
                }
                plan.steps.push(Step::Disown);
                self.push(plan);
            }
        }
        if !self.inp.targets.is_empty() {
            return;
        }
        let unclaimed: Vec<&Entry> = matcher.unclaimed().collect();
        for e in unclaimed {
            let id = (e.id > 0).then_some(e.id);
            if !self.inp.delete_unmanaged {
                let mut plan = RunnerPlan::new(
                    &e.name,
                    Action::Unmanaged,
                    Reason::Unmanaged,
                    "in config.toml but neither declared nor managed by runnerform; left alone",
                );
                plan.id = id;
                self.push(plan);
                continue;
            }
            let mut plan = RunnerPlan::new(
                &e.name,
                Action::Delete,
                Reason::DeleteUnmanaged,
                "not declared and not managed by runnerform; deleted because of \
                 --delete-unmanaged",
            );
            plan.id = id;
            let idx = self.plans.len();
            let m = Managed {
                name: e.name.clone(),
                url: e.url.clone(),
                id: e.id,
                scope: None,
            };
            plan.steps = self.delete_steps(&m, Some(e));
            if self.offline && e.id > 0 {
                plan.steps.push(Step::DeferDelete {
                    id: e.id,
                    url: e.url.clone(),
                });
            }
            self.edits.removed[e.index] = true;
            self.owner[e.index] = Some(idx);
            self.push(plan);
        }
    }

    fn delete_managed(&mut self, m: &Managed, entry: Option<&Entry>) {
        let gone = if self.offline && m.id > 0 {
            " Offline, only its config.toml entry is removed; the next online apply deletes it \
             on GitLab."
        } else {
            ""
        };
        let mut plan = RunnerPlan::new(
            &m.name,
            Action::Delete,
            Reason::NoLongerDeclared,
            &format!("managed by runnerform and no longer declared.{gone}"),
        );
        plan.id = (m.id > 0).then_some(m.id);
        let idx = self.plans.len();
        if let Some(e) = entry {
            self.edits.removed[e.index] = true;
            self.owner[e.index] = Some(idx);
        }
        plan.steps = self.delete_steps(m, entry);
        plan.steps.push(Step::Disown);
        if self.offline && m.id > 0 {
            plan.steps.push(Step::DeferDelete {
                id: m.id,
                url: if m.url.is_empty() {
                    self.url.clone()
                } else {
                    m.url.clone()
                },
            });
        }
        self.push(plan);
    }

    /// Delete on GitLab (online, and only on the GitLab the runner is registered with), then
    /// remove the entry.
    fn delete_steps(&self, m: &Managed, entry: Option<&Entry>) -> Vec<Step> {
        let mut steps = Vec::new();
        let url = entry.map_or(m.url.as_str(), |e| e.url.as_str());
        let here = url.is_empty() || same_url(&self.inp.env.expand(url), &self.url);
        if !self.offline && here {
            if m.id > 0 {
                steps.push(delete_runner(m.id));
            } else if let Some(e) = entry.filter(|e| !e.token.is_empty() && !e.token_unseen) {
                // An entry without id (registered with an old gitlab-runner): its token is the
                // only handle GitLab offers.
                let _ = e;
                steps.push(Step::DeleteByToken {
                    request: Request::new(
                        "DELETE",
                        "/runners",
                        Some(serde_json::json!({ "token": "(secret from config.toml)" })),
                    ),
                });
            }
        }
        if entry.is_some() {
            steps.push(Step::RemoveEntry);
        }
        steps
    }
}
