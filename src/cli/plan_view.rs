//! The human form of a plan: one block per runner with its reason and key changes, the
//! config.toml diff, and a summary line.

use std::fmt::Write;

use similar::{ChangeTag, TextDiff};

use crate::plan::service::ServicePlan;
use crate::plan::{Action, Change, Plan, Side, Step};

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn action(&self, a: Action, s: &str) -> String {
        match a {
            Action::Create | Action::Adopt => self.green(s),
            Action::Delete => self.red(s),
            Action::Update | Action::Rotate | Action::Replace | Action::Recreate => self.yellow(s),
            Action::Unmanaged | Action::NoChange => self.dim(s),
        }
    }
}

/// Renders `plan`. `old` and `new` are config.toml before and after (tokens are masked
/// here); with colour, the diff highlights the changed words. A plan read back from a file
/// has no config.toml text (`old` is empty): its saved diff is shown as it is.
pub fn render(plan: &Plan, old: &str, color: bool, verbose: bool) -> String {
    let p = Paint { on: color };
    let mut out = String::new();
    if !plan.changes_pending {
        let _ = writeln!(
            out,
            "No changes: {}{} the declaration.",
            plan.config_toml,
            if plan.offline {
                " matches"
            } else {
                " and GitLab match"
            }
        );
        for r in plan
            .runners
            .iter()
            .filter(|r| r.action == Action::Unmanaged)
        {
            let _ = writeln!(
                out,
                "  {}",
                p.dim(&format!("? {}: unmanaged, left alone", r.name))
            );
        }
        if let Some(sp) = &plan.service {
            let _ = writeln!(
                out,
                "  {}",
                p.dim(&format!(
                    "service {} ({}): {}",
                    sp.name,
                    sp.manager.word(),
                    sp.reason
                ))
            );
        }
        return out;
    }
    let mode = if plan.offline { ", offline" } else { "" };
    let _ = writeln!(
        out,
        "{}",
        p.bold(&format!("Runners ({}{mode}):", plan.config_toml))
    );
    let mut shown = 0;
    for r in &plan.runners {
        if r.action == Action::NoChange && !verbose {
            continue;
        }
        shown += 1;
        let mut head = format!("{} {}", r.action.symbol(), r.name);
        if let Some(prev) = &r.previous_name {
            head.push_str(&format!(" (was {prev})"));
        }
        let mut what = r.action.word().to_string();
        if r.pending {
            what.push_str(" (needs GitLab; pending offline)");
        }
        let _ = writeln!(
            out,
            "  {}: {}",
            p.action(r.action, &head),
            p.action(r.action, &what)
        );
        let _ = writeln!(out, "      {}", p.dim(&r.reason));
        for c in &r.changes {
            let _ = writeln!(out, "{}", change_line(&p, c));
        }
        if r.steps.iter().any(|s| s.request().is_some()) {
            let _ = writeln!(
                out,
                "      {}",
                p.dim(&format!("steps: {}", steps_line(&r.steps)))
            );
            if verbose {
                for req in r.steps.iter().filter_map(|s| s.request()) {
                    if let Some(body) = &req.body {
                        let _ = writeln!(
                            out,
                            "{}",
                            p.dim(&format!("        {} {} {body}", req.method, req.path))
                        );
                    }
                }
            }
        }
    }
    if shown == 0 {
        let _ = writeln!(out, "  (no runner changes)");
    }
    if !plan.globals.is_empty() {
        let _ = writeln!(out, "{}", p.bold("Globals:"));
        for c in &plan.globals {
            let _ = writeln!(out, "{}", change_line(&p, c));
        }
    }
    // A saved plan has the diff but not config.toml itself (it holds tokens).
    if plan.new_config.is_some() || !plan.diff.is_empty() {
        let _ = writeln!(out, "{}", p.bold("config.toml:"));
        match &plan.new_config {
            Some(new) if color => out.push_str(&colored_diff(&p, &plan.config_toml, old, new)),
            _ => {
                for l in plan.diff.lines() {
                    let _ = writeln!(out, "{}", paint_diff_line(&p, l));
                }
            }
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    if let Some(sp) = &plan.service
        && (sp.is_change() || verbose)
    {
        service_block(&p, sp, &mut out);
    }
    let _ = writeln!(out, "{}", plan.summary_line());
    out
}

fn service_block(p: &Paint, sp: &ServicePlan, out: &mut String) {
    let level = if sp.user_service { ", per-user" } else { "" };
    let _ = writeln!(
        out,
        "{}",
        p.bold(&format!(
            "Service {} ({}{level}):",
            sp.name,
            sp.manager.word()
        ))
    );
    let steps: Vec<&str> = sp.steps.iter().map(|s| s.word()).collect();
    let line = if steps.is_empty() {
        "  no change".to_string()
    } else {
        format!("  ~ {}", steps.join(", then "))
    };
    let _ = writeln!(out, "{}", p.yellow(&line));
    let _ = writeln!(out, "      {}", p.dim(&sp.reason));
    for l in sp.diff.lines() {
        let _ = writeln!(out, "    {}", paint_diff_line(p, l));
    }
}

fn paint_diff_line(p: &Paint, l: &str) -> String {
    match l.as_bytes().first() {
        Some(b'+') => p.green(l),
        Some(b'-') => p.red(l),
        Some(b'@') => p.dim(l),
        _ => l.to_string(),
    }
}

/// The steps in a line: requests by method and path, local effects by name.
fn steps_line(steps: &[Step]) -> String {
    let words: Vec<String> = steps
        .iter()
        .map(|s| match s.request() {
            Some(r) => format!("{} {}", r.method, r.path),
            None => s.word().to_string(),
        })
        .collect();
    words.join(", then ")
}

fn change_line(p: &Paint, c: &Change) -> String {
    let side = match c.side {
        Side::Local => "",
        Side::Gitlab => " (GitLab)",
    };
    let k = &c.key;
    match (&k.old, &k.new) {
        (None, Some(new)) => p.green(&format!("      + {}: {new}{side}", k.path)),
        (Some(old), None) => p.red(&format!("      - {}: {old}{side}", k.path)),
        (Some(old), Some(new)) => p.yellow(&format!("      ~ {}: {old} -> {new}{side}", k.path)),
        (None, None) => format!("      ~ {}{side}", k.path),
    }
}

fn colored_diff(p: &Paint, name: &str, old: &str, new: &str) -> String {
    let old = crate::secrets::mask(old);
    let new = crate::secrets::mask(new);
    let diff = TextDiff::from_lines(&old, &new);
    let mut out = String::new();
    let _ = writeln!(out, "{}", p.red(&format!("--- {name}")));
    let _ = writeln!(out, "{}", p.green(&format!("+++ {name} (planned)")));
    for group in diff.grouped_ops(3) {
        let first = &group[0];
        let last = &group[group.len() - 1];
        let (o, n) = (first.old_range().start, first.new_range().start);
        let _ = writeln!(
            out,
            "{}",
            p.dim(&format!(
                "@@ -{},{} +{},{} @@",
                o + 1,
                last.old_range().end - o,
                n + 1,
                last.new_range().end - n
            ))
        );
        for op in &group {
            for change in diff.iter_inline_changes(op) {
                let (sign, colour): (&str, fn(&Paint, &str) -> String) = match change.tag() {
                    ChangeTag::Delete => ("-", Paint::red),
                    ChangeTag::Insert => ("+", Paint::green),
                    ChangeTag::Equal => (" ", |_, s| s.to_string()),
                };
                let mut line = colour(p, sign);
                for (emphasized, value) in change.iter_strings_lossy() {
                    let v = value.trim_end_matches('\n');
                    if emphasized {
                        line.push_str(&p.wrap("1;4", &colour(p, v)));
                    } else {
                        line.push_str(&colour(p, v));
                    }
                }
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}
