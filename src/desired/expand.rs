//! Layering and replicas: defaults, then the template chain, then the runner's own body; and
//! `count=N` expanded into NAME-1 … NAME-N.

use super::decode::{Decoded, TemplateDecl, suggest};
use super::{Runner, RunnerBody, Spanned};
use crate::diag::{Problem, Problems, Sources};

impl RunnerBody {
    /// Lays `over` on top of `self`: what `over` declares wins; tables merge deeply.
    pub fn layer(&mut self, over: &RunnerBody) {
        fn pick<T: Clone>(base: &mut Option<T>, over: &Option<T>) {
            if over.is_some() {
                base.clone_from(over);
            }
        }
        pick(&mut self.scope, &over.scope);
        pick(&mut self.description, &over.description);
        pick(&mut self.tags, &over.tags);
        pick(&mut self.run_untagged, &over.run_untagged);
        pick(&mut self.paused, &over.paused);
        pick(&mut self.locked, &over.locked);
        pick(&mut self.access_level, &over.access_level);
        pick(&mut self.maximum_timeout, &over.maximum_timeout);
        pick(&mut self.maintenance_note, &over.maintenance_note);
        pick(&mut self.token, &over.token);
        pick(&mut self.renamed_from, &over.renamed_from);
        pick(&mut self.registration_token, &over.registration_token);
        self.settings.merge_from(&over.settings);
    }
}

pub(super) fn expand(sources: &Sources, d: &Decoded, problems: &mut Problems) -> Vec<Runner> {
    check_template_names(sources, &d.templates, problems);
    let mut runners = Vec::new();
    for decl in &d.runners {
        let mut body = d
            .defaults
            .as_ref()
            .map(|(b, _)| b.clone())
            .unwrap_or_default();
        if let Some(t) = &decl.template {
            match chain(sources, &d.templates, t, problems) {
                Some(chain) => {
                    for tpl in chain {
                        body.layer(&tpl.body);
                    }
                }
                None => continue,
            }
        }
        body.layer(&decl.body);
        match &decl.count {
            None => runners.push(Runner {
                name: decl.name.clone(),
                replica: None,
                body,
                loc: decl.loc,
            }),
            Some(count) => {
                if let Some(token) = &decl.body.token {
                    problems.push(
                        Problem::error("token_with_count", "a token cannot be shared by replicas")
                            .at(sources, token.loc, "one token")
                            .help(
                                "each replica is its own runner with its own token: declare \
                                 adopted runners one by one",
                            ),
                    );
                    continue;
                }
                for i in 1..=count.value {
                    let mut b = body.clone();
                    b.renamed_from = body
                        .renamed_from
                        .as_ref()
                        .map(|r| Spanned::new(format!("{}-{i}", r.value), r.loc));
                    runners.push(Runner {
                        name: Spanned::new(format!("{}-{i}", decl.name.value), decl.name.loc),
                        replica: Some(i),
                        body: b,
                        loc: decl.loc,
                    });
                }
            }
        }
    }
    runners
}

fn check_template_names(sources: &Sources, templates: &[TemplateDecl], problems: &mut Problems) {
    for (i, t) in templates.iter().enumerate() {
        if let Some(first) = templates[..i].iter().find(|f| f.name.value == t.name.value) {
            problems.push(
                Problem::error(
                    "duplicate_template",
                    format!("template `{}` is declared twice", t.name.value),
                )
                .at(sources, t.name.loc, "declared again here")
                .help(format!(
                    "first declared at {}; give each template its own name",
                    sources.position(first.name.loc)
                )),
            );
        }
    }
}

/// The templates to layer for a reference, outermost ancestor first.
fn chain<'a>(
    sources: &Sources,
    templates: &'a [TemplateDecl],
    start: &Spanned<String>,
    problems: &mut Problems,
) -> Option<Vec<&'a TemplateDecl>> {
    let mut out: Vec<&TemplateDecl> = Vec::new();
    let mut reference = start;
    loop {
        let Some(t) = templates.iter().find(|t| t.name.value == reference.value) else {
            let names: Vec<&str> = templates.iter().map(|t| t.name.value.as_str()).collect();
            let help = match suggest(&reference.value, &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None if names.is_empty() => {
                    "no template is declared: add template \"NAME\" { … }".to_string()
                }
                None => format!("declared templates: {}", names.join(", ")),
            };
            problems.push(
                Problem::error(
                    "unknown_template",
                    format!("no template named `{}`", reference.value),
                )
                .at(sources, reference.loc, "unknown template")
                .help(help),
            );
            return None;
        };
        if out.iter().any(|o| std::ptr::eq(*o, t)) {
            let names: Vec<&str> = out.iter().map(|o| o.name.value.as_str()).collect();
            problems.push(
                Problem::error(
                    "template_cycle",
                    format!(
                        "templates inherit from each other in a cycle: {} → {}",
                        names.join(" → "),
                        t.name.value
                    ),
                )
                .at(sources, reference.loc, "closes the cycle")
                .help("a template may extend another, but the chain must end"),
            );
            return None;
        }
        out.push(t);
        match &t.parent {
            Some(p) => reference = p,
            None => break,
        }
    }
    out.reverse();
    Some(out)
}
