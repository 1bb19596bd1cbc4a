//! KDL nodes to typed declarations.
//!
//! Decoding is by hand over `kdl::KdlDocument`, so that every value keeps its span and every
//! mistake gets a diagnostic that points at it. Nothing here stops at the first problem.

use kdl::{KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use super::load::Files;
use super::nodes::{self, Context};
use super::value::{decode_key, looks_like_token, secret_ref, unknown_key};
use super::{
    AccessLevel, ConfigDecl, GitLab, ManagerChoice, RunnerBody, Scope, SecretRef, ServiceDecl,
    ServiceState, Spanned, Target,
};
use crate::diag::{FileId, Loc, Problem, Problems, Sources};
use crate::keys::inventory;

/// Where diagnostics go while decoding one file's nodes.
pub(super) struct Cx<'a> {
    pub sources: &'a Sources,
    pub problems: &'a mut Problems,
    pub file: FileId,
}

impl Cx<'_> {
    pub fn loc(&self, span: SourceSpan) -> Loc {
        Loc {
            file: self.file,
            span,
        }
    }

    pub fn error(
        &mut self,
        code: &'static str,
        message: impl Into<String>,
        span: SourceSpan,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        let p = Problem::error(code, message)
            .at(self.sources, self.loc(span), label)
            .help(help);
        self.problems.push(p);
    }

    pub fn warning(
        &mut self,
        code: &'static str,
        message: impl Into<String>,
        span: SourceSpan,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        let p = Problem::warning(code, message)
            .at(self.sources, self.loc(span), label)
            .help(help);
        self.problems.push(p);
    }
}

/// The closest candidate to a misspelt name, if one is close enough to be what was meant.
pub(crate) fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    if let Some(c) = candidates.iter().find(|c| norm(c) == norm(name)) {
        return Some(c);
    }
    candidates
        .iter()
        .map(|c| {
            let close = strsim::osa_distance(name, c) <= if name.len() > 5 { 2 } else { 1 };
            (c, strsim::jaro_winkler(name, c), close)
        })
        .filter(|(_, score, close)| *score > 0.88 || *close)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _, _)| *c)
}

pub(crate) fn kdl_type(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

#[derive(Clone)]
pub(super) struct TemplateDecl {
    pub name: Spanned<String>,
    pub parent: Option<Spanned<String>>,
    pub body: RunnerBody,
}

#[derive(Clone)]
pub(super) struct RunnerDecl {
    pub name: Spanned<String>,
    pub count: Option<Spanned<u32>>,
    pub template: Option<Spanned<String>>,
    pub body: RunnerBody,
    pub loc: Loc,
}

/// A `host` block of a fleet file.
#[derive(Clone)]
pub(super) struct HostDecl {
    pub name: Spanned<String>,
    pub config: Option<ConfigDecl>,
    /// Replaces the shared `service` node on this host.
    pub service: Option<ServiceDecl>,
    pub runners: Vec<RunnerDecl>,
}

#[derive(Default, Clone)]
pub(super) struct Decoded {
    pub gitlab: Option<GitLab>,
    pub config: ConfigDecl,
    pub service: Option<ServiceDecl>,
    pub defaults: Option<(RunnerBody, Loc)>,
    pub templates: Vec<TemplateDecl>,
    pub runners: Vec<RunnerDecl>,
    pub hosts: Vec<HostDecl>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Runner,
    Defaults,
    Template,
}

pub(super) fn decode(files: &Files, problems: &mut Problems) -> Decoded {
    let mut out = Decoded::default();
    let mut singles: Vec<(&str, Loc)> = Vec::new();
    for (file, node) in &files.nodes {
        let mut cx = Cx {
            sources: &files.sources,
            problems,
            file: *file,
        };
        let name = node.name().value();
        if matches!(name, "gitlab" | "config" | "service" | "defaults") {
            if let Some((_, first)) = singles.iter().find(|(n, _)| *n == name) {
                let first = files.sources.position(*first);
                cx.error(
                    "duplicate_node",
                    format!("`{name}` is declared twice"),
                    node.name().span(),
                    "declared again here",
                    format!("first declared at {first}; a desired state has one `{name}`"),
                );
                continue;
            }
            singles.push((name, cx.loc(node.name().span())));
        }
        match name {
            "gitlab" => out.gitlab = decode_gitlab(&mut cx, node),
            "config" => out.config = decode_config(&mut cx, node),
            "service" => out.service = decode_service(&mut cx, node),
            "defaults" => {
                no_args(&mut cx, node, "defaults { executor \"docker\" }");
                allowed_props(&mut cx, node, &[]);
                let body = decode_body(&mut cx, node, BodyKind::Defaults);
                out.defaults = Some((body, cx.loc(node.name().span())));
            }
            "template" => {
                let Some(tname) = name_arg(&mut cx, node, "template \"docker-base\" { … }")
                else {
                    continue;
                };
                allowed_props(&mut cx, node, &["template"]);
                let parent = string_prop(&mut cx, node, "template");
                let body = decode_body(&mut cx, node, BodyKind::Template);
                out.templates.push(TemplateDecl {
                    name: tname,
                    parent,
                    body,
                });
            }
            "runner" => out.runners.extend(decode_runner(&mut cx, node)),
            "host" => {
                if let Some(host) = decode_host(&mut cx, node, &out.hosts) {
                    out.hosts.push(host);
                }
            }
            _ => unknown_top(&mut cx, node),
        }
    }
    out
}

fn decode_runner(cx: &mut Cx, node: &KdlNode) -> Option<RunnerDecl> {
    let name = name_arg(cx, node, "runner \"build\" { … }")?;
    allowed_props(cx, node, &["count", "template"]);
    let count = count_prop(cx, node);
    let template = string_prop(cx, node, "template");
    let body = decode_body(cx, node, BodyKind::Runner);
    Some(RunnerDecl {
        name,
        count,
        template,
        body,
        loc: cx.loc(node.span()),
    })
}

fn decode_host(cx: &mut Cx, node: &KdlNode, earlier: &[HostDecl]) -> Option<HostDecl> {
    allowed_props(cx, node, &[]);
    let name = name_arg(cx, node, "host \"ci-01\" { runner \"build\" { … } }")?;
    if let Some(first) = earlier.iter().find(|h| h.name.value == name.value) {
        let first = cx.sources.position(first.name.loc);
        cx.error(
            "duplicate_host",
            format!("host `{}` is declared twice", name.value),
            name.loc.span,
            "declared again here",
            format!("first declared at {first}; put everything for one host in one block"),
        );
        return None;
    }
    let mut host = HostDecl {
        name,
        config: None,
        service: None,
        runners: Vec::new(),
    };
    let mut seen = Vec::new();
    for child in node.children().map(|d| d.nodes()).unwrap_or_default() {
        match child.name().value() {
            "config" => {
                if duplicate_check(cx, child, &mut seen) {
                    host.config = Some(decode_config(cx, child));
                }
            }
            "service" => {
                if duplicate_check(cx, child, &mut seen) {
                    host.service = decode_service(cx, child);
                }
            }
            "runner" => host.runners.extend(decode_runner(cx, child)),
            _ => unknown_child(cx, child, "host", Context::Host),
        }
    }
    Some(host)
}

fn unknown_top(cx: &mut Cx, node: &KdlNode) {
    let name = node.name().value();
    let candidates: Vec<&str> = nodes::names(Context::Top).collect();
    let inv = inventory();
    let help = if let Some(s) = suggest(name, &candidates) {
        format!("did you mean `{s}`?")
    } else if inv.globals().any(|k| k.name == name) {
        format!("`{name}` is a global key of config.toml: put it inside `config {{ … }}`")
    } else if inv.runner().child(name).is_some() || nodes::is_known(Context::Runner, name) {
        format!(
            "`{name}` is a runner setting: put it inside `runner \"NAME\" {{ … }}`, or in \
             `defaults {{ … }}` to share it"
        )
    } else {
        format!("top-level nodes are: {}", candidates.join(", "))
    };
    cx.error(
        "unknown_node",
        format!("unknown node `{name}`"),
        node.name().span(),
        "not a top-level node",
        help,
    );
}

fn unknown_child(cx: &mut Cx, node: &KdlNode, parent: &str, context: Context) {
    let name = node.name().value();
    let candidates: Vec<&str> = nodes::names(context).collect();
    let help = match suggest(name, &candidates) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("`{parent}` takes: {}", candidates.join(", ")),
    };
    cx.error(
        "unknown_key",
        format!("unknown key `{name}` in `{parent}`"),
        node.name().span(),
        "not a known key",
        help,
    );
}

fn args(node: &KdlNode) -> Vec<&KdlEntry> {
    node.entries()
        .iter()
        .filter(|e| e.name().is_none())
        .collect()
}

fn allowed_props(cx: &mut Cx, node: &KdlNode, allowed: &[&str]) {
    for e in node.entries() {
        let Some(name) = e.name() else { continue };
        if allowed.contains(&name.value()) {
            continue;
        }
        let help = match suggest(name.value(), allowed) {
            Some(s) => format!("did you mean `{s}=`?"),
            None if allowed.is_empty() => format!("`{}` takes no properties", node.name().value()),
            None => format!(
                "`{}` takes: {}",
                node.name().value(),
                allowed
                    .iter()
                    .map(|a| format!("{a}="))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        cx.error(
            "unexpected_property",
            format!(
                "unknown property `{}` on `{}`",
                name.value(),
                node.name().value()
            ),
            e.span(),
            "not a known property",
            help,
        );
    }
}

fn no_args(cx: &mut Cx, node: &KdlNode, form: &str) {
    if let Some(a) = args(node).first() {
        cx.error(
            "wrong_arity",
            format!("`{}` takes no arguments", node.name().value()),
            a.span(),
            "unexpected argument",
            format!("write it as: {form}"),
        );
    }
}

/// The single string argument that names a runner or template.
fn name_arg(cx: &mut Cx, node: &KdlNode, form: &str) -> Option<Spanned<String>> {
    let a = args(node);
    match a.as_slice() {
        [one] => match one.value().as_string() {
            Some(s) if !s.trim().is_empty() => {
                Some(Spanned::new(s.to_string(), cx.loc(one.span())))
            }
            Some(_) => {
                cx.error(
                    "bad_value",
                    format!("`{}` needs a non-empty name", node.name().value()),
                    one.span(),
                    "empty name",
                    format!("write it as: {form}"),
                );
                None
            }
            None => {
                cx.error(
                    "wrong_type",
                    format!(
                        "the name of a `{}` must be a string, found {}",
                        node.name().value(),
                        kdl_type(one.value())
                    ),
                    one.span(),
                    "expected a string",
                    format!("write it as: {form}"),
                );
                None
            }
        },
        [] => {
            cx.error(
                "wrong_arity",
                format!("`{}` needs a name", node.name().value()),
                node.name().span(),
                "no name given",
                format!("write it as: {form}"),
            );
            None
        }
        [_, extra, ..] => {
            cx.error(
                "wrong_arity",
                format!("`{}` takes one name", node.name().value()),
                extra.span(),
                "one argument too many",
                format!("write it as: {form}"),
            );
            None
        }
    }
}

fn string_prop(cx: &mut Cx, node: &KdlNode, prop: &str) -> Option<Spanned<String>> {
    let e = node
        .entries()
        .iter()
        .find(|e| e.name().map(|n| n.value()) == Some(prop))?;
    match e.value().as_string() {
        Some(s) => Some(Spanned::new(s.to_string(), cx.loc(e.span()))),
        None => {
            cx.error(
                "wrong_type",
                format!("`{prop}=` must be a string, found {}", kdl_type(e.value())),
                e.span(),
                "expected a string",
                format!("write it as: {prop}=\"NAME\""),
            );
            None
        }
    }
}

fn count_prop(cx: &mut Cx, node: &KdlNode) -> Option<Spanned<u32>> {
    let e = node
        .entries()
        .iter()
        .find(|e| e.name().map(|n| n.value()) == Some("count"))?;
    match e.value() {
        KdlValue::Integer(i) if (1..=10_000).contains(i) => {
            Some(Spanned::new(*i as u32, cx.loc(e.span())))
        }
        v => {
            cx.error(
                "bad_value",
                "`count=` must be a whole number from 1 to 10000".to_string(),
                e.span(),
                match v {
                    KdlValue::Integer(_) => "out of range".to_string(),
                    v => format!("found {}", kdl_type(v)),
                },
                "write it as: runner \"build\" count=3 { … } (names build-1, build-2, build-3)",
            );
            None
        }
    }
}

/// A node with exactly one argument and no properties or children.
fn single<'n>(cx: &mut Cx, node: &'n KdlNode, form: &str) -> Option<&'n KdlEntry> {
    let name = node.name().value();
    if let Some(c) = node.children() {
        cx.error(
            "wrong_type",
            format!("`{name}` takes a value, not a block"),
            c.span(),
            "unexpected block",
            format!("write it as: {form}"),
        );
        return None;
    }
    if let Some(p) = node.entries().iter().find(|e| e.name().is_some()) {
        cx.error(
            "unexpected_property",
            format!("`{name}` takes no properties"),
            p.span(),
            "unexpected property",
            format!("write it as: {form}"),
        );
        return None;
    }
    match node.entries() {
        [one] => Some(one),
        [] => {
            cx.error(
                "wrong_arity",
                format!("`{name}` needs a value"),
                node.name().span(),
                "no value given",
                format!("write it as: {form}"),
            );
            None
        }
        [_, extra, ..] => {
            cx.error(
                "wrong_arity",
                format!("`{name}` takes one value"),
                extra.span(),
                "one value too many",
                format!("write it as: {form}"),
            );
            None
        }
    }
}

fn form_of(context: Context, name: &str) -> &'static str {
    nodes::NODES
        .iter()
        .find(|n| n.context == context && n.name == name)
        .map_or("", |n| n.form)
}

fn one_string(cx: &mut Cx, node: &KdlNode, context: Context) -> Option<Spanned<String>> {
    let form = form_of(context, node.name().value());
    let e = single(cx, node, form)?;
    match e.value().as_string() {
        Some(s) => Some(Spanned::new(s.to_string(), cx.loc(e.span()))),
        None => {
            cx.error(
                "wrong_type",
                format!(
                    "`{}` expects a string, found {}",
                    node.name().value(),
                    kdl_type(e.value())
                ),
                e.span(),
                "expected a string",
                format!("write it as: {form}"),
            );
            None
        }
    }
}

fn one_bool(cx: &mut Cx, node: &KdlNode) -> Option<Spanned<bool>> {
    let name = node.name().value();
    let form = nodes::NODES
        .iter()
        .find(|n| n.name == name)
        .map_or("", |n| n.form);
    let e = single(cx, node, form)?;
    match e.value() {
        KdlValue::Bool(b) => Some(Spanned::new(*b, cx.loc(e.span()))),
        v => {
            let help = match v.as_string() {
                Some(s @ ("true" | "false")) => format!("booleans are written #{s} (no quotes)"),
                _ => format!("write it as: {form}"),
            };
            cx.error(
                "wrong_type",
                format!(
                    "`{}` expects a boolean, found {}",
                    node.name().value(),
                    kdl_type(v)
                ),
                e.span(),
                "expected #true or #false",
                help,
            );
            None
        }
    }
}

fn one_enum<T>(
    cx: &mut Cx,
    node: &KdlNode,
    context: Context,
    names: &[&str],
    parse: impl Fn(&str) -> Option<T>,
) -> Option<Spanned<T>> {
    let s = one_string(cx, node, context)?;
    match parse(&s.value) {
        Some(v) => Some(Spanned::new(v, s.loc)),
        None => {
            let hint = match suggest(&s.value, names) {
                Some(m) => format!("did you mean \"{m}\"? allowed: {}", names.join(", ")),
                None => format!("allowed: {}", names.join(", ")),
            };
            cx.error(
                "bad_value",
                format!("`{}` does not accept \"{}\"", node.name().value(), s.value),
                s.loc.span,
                "not an allowed value",
                hint,
            );
            None
        }
    }
}

/// A token node: only by reference. Anything written inline is rejected, whatever it holds.
fn token_ref(cx: &mut Cx, node: &KdlNode, context: Context) -> Option<SecretRef> {
    if let Some(r) = secret_ref(cx, node) {
        return r;
    }
    let form = form_of(context, "token");
    // Whatever is written there is a credential, prefix or not: the excerpt must not show it.
    if let Some(s) = node.entries().first().and_then(|e| e.value().as_string()) {
        crate::secrets::remember(s);
    }
    let (span, label) = match node.entries().first() {
        Some(e) if e.value().as_string().is_some_and(looks_like_token) => {
            (e.span(), "a token written inline")
        }
        Some(e) => (e.span(), "not a reference"),
        None => (node.name().span(), "no reference given"),
    };
    cx.error(
        "inline_secret",
        "tokens are given by reference, never inline",
        span,
        label,
        format!("secrets belong in env vars or files, not in a file under version control: {form}"),
    );
    None
}

fn decode_gitlab(cx: &mut Cx, node: &KdlNode) -> Option<GitLab> {
    allowed_props(cx, node, &[]);
    let url = name_arg(cx, node, "gitlab \"https://gitlab.example.com\" { … }");
    if let Some(u) = &url
        && !(u.value.starts_with("https://") || u.value.starts_with("http://"))
    {
        cx.error(
            "bad_value",
            format!("GitLab URL \"{}\" is not an http(s) URL", u.value),
            u.loc.span,
            "not an http(s) URL",
            "write the address of the GitLab instance: gitlab \"https://gitlab.example.com\"",
        );
    }
    if let Some(u) = &url
        && let Some(base) = crate::remote::advice::without_api_suffix(&u.value)
    {
        // runnerform appends /api/v4 itself; left in, every request gets a 404.
        cx.warning(
            "gitlab_url_api_suffix",
            format!("the GitLab URL \"{}\" ends in /api/v4", u.value),
            u.loc.span,
            "runnerform adds /api/v4 itself",
            format!("drop the suffix: gitlab \"{base}\""),
        );
    }
    let mut token = None;
    let mut ca_file = None;
    let mut timeout = None;
    let mut seen = Vec::new();
    for child in node.children().map(|d| d.nodes()).unwrap_or_default() {
        let name = child.name().value();
        if !duplicate_check(cx, child, &mut seen) {
            continue;
        }
        match name {
            "token" => token = token_ref(cx, child, Context::GitLab),
            "ca_file" => {
                ca_file = one_string(cx, child, Context::GitLab)
                    .map(|s| Spanned::new(s.value.into(), s.loc))
            }
            "timeout" => timeout = decode_timeout(cx, child),
            _ => unknown_child(cx, child, "gitlab", Context::GitLab),
        }
    }
    Some(GitLab {
        url: url?,
        token,
        ca_file,
        timeout,
        loc: cx.loc(node.name().span()),
    })
}

/// Seconds, from an integer or a duration string (plain seconds or a Go duration), up to a
/// day: one request is never worth waiting longer for.
fn decode_timeout(cx: &mut Cx, node: &KdlNode) -> Option<Spanned<u64>> {
    let form = form_of(Context::GitLab, "timeout");
    let e = single(cx, node, form)?;
    let secs = match e.value() {
        KdlValue::Integer(i) => u64::try_from(*i).map_err(|_| String::new()),
        KdlValue::String(s) => crate::duration::parse_secs(s),
        _ => Err(String::new()),
    };
    match secs {
        Ok(s) if (1..=86_400).contains(&s) => Some(Spanned::new(s, cx.loc(e.span()))),
        other => {
            let why = match other {
                Err(why) if !why.is_empty() => why,
                _ => "`timeout` must be between 1 second and a day".to_string(),
            };
            cx.error(
                "bad_value",
                format!("`timeout` must be a positive duration up to a day: {why}"),
                e.span(),
                "not a duration",
                format!("write it as: {form} (or {})", crate::duration::GRAMMAR),
            );
            None
        }
    }
}

fn decode_config(cx: &mut Cx, node: &KdlNode) -> ConfigDecl {
    allowed_props(cx, node, &[]);
    let path = match args(node).as_slice() {
        [] => None,
        _ => name_arg(cx, node, "config \"/etc/gitlab-runner/config.toml\" { … }")
            .map(|s| Spanned::new(s.value.into(), s.loc)),
    };
    let root = &inventory().root;
    let mut globals = super::Table::default();
    for child in node.children().map(|d| d.nodes()).unwrap_or_default() {
        let name = child.name().value();
        match root.child(name) {
            Some(k) if k.name == "runners" => cx.error(
                "unknown_key",
                "runners are not declared inside `config`",
                child.name().span(),
                "not a global key",
                "declare each runner at the top level: runner \"NAME\" { … }",
            ),
            Some(k) => decode_key(cx, child, k, &mut globals),
            None => unknown_key(cx, child, root, &[]),
        }
    }
    ConfigDecl {
        path,
        globals,
        loc: Some(cx.loc(node.name().span())),
    }
}

fn decode_service(cx: &mut Cx, node: &KdlNode) -> Option<ServiceDecl> {
    allowed_props(cx, node, &[]);
    no_args(cx, node, "service { user \"gitlab-runner\" }");
    let mut svc = ServiceDecl::empty(cx.loc(node.name().span()));
    let mut seen = Vec::new();
    for child in node.children().map(|d| d.nodes()).unwrap_or_default() {
        if !duplicate_check(cx, child, &mut seen) {
            continue;
        }
        let path = |s: Spanned<String>| Spanned::new(s.value.into(), s.loc);
        match child.name().value() {
            "name" => svc.name = one_string(cx, child, Context::Service),
            "user" => svc.user = one_string(cx, child, Context::Service),
            "working_directory" => {
                svc.working_directory = one_string(cx, child, Context::Service).map(path)
            }
            "binary" => svc.binary = one_string(cx, child, Context::Service).map(path),
            "state" => {
                svc.state = one_enum(
                    cx,
                    child,
                    Context::Service,
                    ServiceState::NAMES,
                    ServiceState::parse,
                )
            }
            "manager" => {
                svc.manager = one_enum(
                    cx,
                    child,
                    Context::Service,
                    ManagerChoice::NAMES,
                    ManagerChoice::parse,
                )
            }
            "user_service" => svc.user_service = one_bool(cx, child),
            "environment" => svc.environment = environment(cx, child),
            _ => unknown_child(cx, child, "service", Context::Service),
        }
    }
    Some(svc)
}

/// `environment { NAME "value" … }`. Values are written into the service definition, which
/// any local user may read, so a token there is refused: tokens reach gitlab-runner through
/// config.toml only.
fn environment(cx: &mut Cx, node: &KdlNode) -> Vec<(Spanned<String>, Spanned<String>)> {
    allowed_props(cx, node, &[]);
    no_args(
        cx,
        node,
        "environment { HTTPS_PROXY \"http://proxy:3128\" }",
    );
    let mut out: Vec<(Spanned<String>, Spanned<String>)> = Vec::new();
    for child in node.children().map(|d| d.nodes()).unwrap_or_default() {
        let name = child.name().value();
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            cx.error(
                "bad_value",
                format!("`{name}` is not an environment variable name"),
                child.name().span(),
                "not a variable name",
                "use letters, digits and underscores, not starting with a digit",
            );
            continue;
        }
        if let Some((_, first)) = out.iter().find(|(n, _)| n.value == name) {
            let first = cx.sources.position(first.loc);
            cx.error(
                "duplicate_key",
                format!("`{name}` is set twice"),
                child.name().span(),
                "set again here",
                format!("first set at {first}; keep one"),
            );
            continue;
        }
        let Some(value) = one_string(cx, child, Context::Service) else {
            continue;
        };
        if crate::secrets::looks_like_token(&value.value) {
            cx.error(
                "inline_secret",
                format!("`{name}` holds a token"),
                value.loc.span,
                "a token, in the service definition",
                "the service definition is readable by every local user; runner tokens belong \
                 in config.toml, which runnerform writes from token references",
            );
            continue;
        }
        out.push((
            Spanned::new(name.to_string(), cx.loc(child.name().span())),
            value,
        ));
    }
    out
}

/// Reports a second occurrence of a runnerform node in one block; true for the first.
fn duplicate_check(cx: &mut Cx, node: &KdlNode, seen: &mut Vec<(String, Loc)>) -> bool {
    let name = node.name().value();
    if let Some((_, first)) = seen.iter().find(|(n, _)| n == name) {
        let first = cx.sources.position(*first);
        cx.error(
            "duplicate_key",
            format!("`{name}` is set twice"),
            node.name().span(),
            "set again here",
            format!("first set at {first}; keep one"),
        );
        return false;
    }
    seen.push((name.to_string(), cx.loc(node.name().span())));
    true
}

fn decode_body(cx: &mut Cx, node: &KdlNode, kind: BodyKind) -> RunnerBody {
    let spec = inventory().runner();
    let own: Vec<&str> = nodes::names(Context::Runner).collect();
    let mut body = RunnerBody::default();
    let mut seen = Vec::new();
    for child in node.children().map(|d| d.nodes()).unwrap_or_default() {
        let name = child.name().value();
        if !own.contains(&name) {
            match spec.child(name) {
                Some(key) => decode_key(cx, child, key, &mut body.settings),
                None => unknown_key(cx, child, spec, &own),
            }
            continue;
        }
        let scope_node = matches!(name, "instance" | "group" | "project");
        if scope_node {
            if let Some(first) = &body.scope {
                let first = cx.sources.position(first.loc);
                cx.error(
                    "duplicate_scope",
                    "a runner has exactly one scope",
                    child.name().span(),
                    "second scope",
                    format!(
                        "the scope is already set at {first}; keep one of instance, group, project"
                    ),
                );
                continue;
            }
        } else if !duplicate_check(cx, child, &mut seen) {
            continue;
        }
        let r = Context::Runner;
        match name {
            "instance" => {
                if child.entries().is_empty() && child.children().is_none() {
                    body.scope = Some(Spanned::new(Scope::Instance, cx.loc(child.span())));
                } else {
                    cx.error(
                        "bad_scope",
                        "`instance` takes no value",
                        child.span(),
                        "unexpected value",
                        "write it as: instance",
                    );
                }
            }
            "group" | "project" => {
                if let Some(t) = decode_target(cx, child) {
                    let scope = if name == "group" {
                        Scope::Group(t)
                    } else {
                        Scope::Project(t)
                    };
                    body.scope = Some(Spanned::new(scope, cx.loc(child.span())));
                }
            }
            "description" => body.description = one_string(cx, child, r),
            "maintenance_note" => body.maintenance_note = one_string(cx, child, r),
            "tags" => body.tags = decode_tags(cx, child),
            "run_untagged" => body.run_untagged = one_bool(cx, child),
            "paused" => body.paused = one_bool(cx, child),
            "locked" => body.locked = one_bool(cx, child),
            "access_level" => {
                body.access_level = one_enum(cx, child, r, AccessLevel::NAMES, AccessLevel::parse)
            }
            "maximum_timeout" => body.maximum_timeout = decode_max_timeout(cx, child),
            "token" => {
                let t = token_ref(cx, child, r);
                if kind != BodyKind::Runner && t.is_some() {
                    cx.error(
                        "misplaced",
                        "a runner token cannot be shared",
                        child.name().span(),
                        "only in a runner",
                        "a token belongs to exactly one runner: declare it in that `runner` node",
                    );
                } else {
                    body.token = t;
                }
            }
            "registration_token" => body.registration_token = token_ref(cx, child, r),
            "renamed_from" => {
                let v = one_string(cx, child, r);
                if kind != BodyKind::Runner && v.is_some() {
                    cx.error(
                        "misplaced",
                        "`renamed_from` names one runner's previous name",
                        child.name().span(),
                        "only in a runner",
                        "declare it in the `runner` node that was renamed",
                    );
                } else {
                    body.renamed_from = v;
                }
            }
            _ => unreachable!("every node of the runner context is handled"),
        }
    }
    body
}

fn decode_target(cx: &mut Cx, node: &KdlNode) -> Option<Target> {
    let name = node.name().value();
    let form = form_of(Context::Runner, name);
    let e = single(cx, node, form)?;
    match e.value() {
        KdlValue::String(s) if !s.is_empty() && !s.starts_with('/') && !s.ends_with('/') => {
            Some(Target::Path(s.clone()))
        }
        KdlValue::Integer(i) if *i > 0 && *i <= i64::MAX as i128 => Some(Target::Id(*i as u64)),
        v => {
            cx.error(
                "bad_scope",
                format!("`{name}` needs a full path or a numeric id"),
                e.span(),
                match v {
                    KdlValue::String(_) => "not a full path".to_string(),
                    KdlValue::Integer(_) => "ids are positive".to_string(),
                    v => format!("found {}", kdl_type(v)),
                },
                format!("write it as: {form}"),
            );
            None
        }
    }
}

fn decode_tags(cx: &mut Cx, node: &KdlNode) -> Option<Spanned<Vec<String>>> {
    if node.children().is_some() || node.entries().iter().any(|e| e.name().is_some()) {
        cx.error(
            "wrong_type",
            "`tags` is a list of strings",
            node.span(),
            "expected strings only",
            "write it as: tags \"docker\" \"linux\"",
        );
        return None;
    }
    let mut tags: Vec<String> = Vec::new();
    for e in node.entries() {
        match e.value().as_string() {
            Some(s) if s.trim().is_empty() || s.contains(',') => cx.error(
                "bad_value",
                "a tag is a non-empty word without commas",
                e.span(),
                "not a tag",
                "write each tag as its own string: tags \"docker\" \"linux\"",
            ),
            Some(s) if tags.iter().any(|t| t == s) => cx.warning(
                "duplicate_tag",
                format!("tag \"{s}\" is listed twice"),
                e.span(),
                "repeated",
                "GitLab keeps one; remove the repetition",
            ),
            Some(s) => tags.push(s.to_string()),
            None => cx.error(
                "wrong_type",
                format!("tags are strings, found {}", kdl_type(e.value())),
                e.span(),
                "expected a string",
                "write it as: tags \"docker\" \"linux\"",
            ),
        }
    }
    Some(Spanned::new(tags, cx.loc(node.span())))
}

fn decode_max_timeout(cx: &mut Cx, node: &KdlNode) -> Option<Spanned<u32>> {
    let form = form_of(Context::Runner, "maximum_timeout");
    let e = single(cx, node, form)?;
    match e.value() {
        KdlValue::Integer(i) if (600..=i128::from(u32::MAX)).contains(i) => {
            Some(Spanned::new(*i as u32, cx.loc(e.span())))
        }
        KdlValue::Integer(i) => {
            cx.error(
                "bad_value",
                format!("`maximum_timeout` of {i} seconds is below GitLab's minimum of 600"),
                e.span(),
                "less than 600",
                "GitLab rejects a maximum timeout under 10 minutes: use 600 or more (seconds)",
            );
            None
        }
        v => {
            cx.error(
                "wrong_type",
                format!("`maximum_timeout` expects seconds, found {}", kdl_type(v)),
                e.span(),
                "expected an integer",
                format!("write it as: {form}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_near_misses_only() {
        let c = ["executor", "environment", "builds_dir", "IdleCount"];
        assert_eq!(suggest("exectuor", &c), Some("executor"));
        assert_eq!(suggest("idle_count", &c), Some("IdleCount"));
        assert_eq!(suggest("builds-dir", &c), Some("builds_dir"));
        assert_eq!(suggest("zzz", &c), None);
    }

    #[test]
    fn gitlab_timeout_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let d = |t: &str| {
            let path = dir.path().join("t.kdl");
            let text = format!("gitlab \"http://127.0.0.1:9\" {{\n    timeout {t}\n}}\n");
            std::fs::write(&path, text).unwrap();
            let loaded = crate::desired::read(&path, crate::desired::RefCheck::Warn);
            let t = loaded
                .desired
                .and_then(|d| d.gitlab)
                .and_then(|g| g.timeout)
                .map(|t| t.value);
            (t, loaded.problems.errors())
        };
        assert_eq!(d("90"), (Some(90), 0));
        assert_eq!(d("\"1h30m\""), (Some(5400), 0));
        assert_eq!(d("\"90\""), (Some(90), 0));
        assert_eq!(d("\"5124095576030432h\"").1, 1);
        assert_eq!(d("\"2d\"").1, 1);
        assert_eq!(d("0").1, 1);
        assert_eq!(d("86401").1, 1);
    }
}
