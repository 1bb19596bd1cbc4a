//! config.toml values as declared in KDL, and their decoding against the key inventory.
//!
//! A config.toml key is written in KDL with its exact TOML name:
//!
//! | TOML shape        | KDL                                             |
//! |-------------------|-------------------------------------------------|
//! | scalar            | `image "rust:1.83"`, `limit 4`, `privileged #true` |
//! | array             | `volumes "/cache" "/certs"` (no argument: empty) |
//! | table             | `docker { image "alpine" }`                      |
//! | map               | `labels { team "ci" }` or `labels team="ci"`     |
//! | array of tables   | the node repeated: `services { name "redis" }`   |
//! | secret string     | `SecretKey env="S3_SECRET_KEY"` or `file="…"`    |

use kdl::{KdlEntry, KdlNode, KdlValue};

use super::decode::{Cx, kdl_type, suggest};
use super::{SecretRef, SecretSource};
use crate::diag::Loc;
use crate::keys::{Elem, Key, Kind, allowed_values};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// A string that is read from an env var or a file when it is applied.
    Secret(SecretRef),
    Array(Vec<Value>),
    Table(Table),
    TableArray(Vec<Table>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    /// The node that declared the entry.
    pub loc: Loc,
}

/// An ordered TOML table: keys keep the order they were written in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub entries: Vec<Entry>,
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets a key, replacing an earlier value in place.
    pub fn set(&mut self, entry: Entry) {
        match self.entries.iter_mut().find(|e| e.key == entry.key) {
            Some(old) => *old = entry,
            None => self.entries.push(entry),
        }
    }

    /// Layers `over` on top of `self`: tables and maps merge key by key, anything else
    /// (scalars, arrays, arrays of tables) is replaced whole.
    pub fn merge_from(&mut self, over: &Table) {
        for e in &over.entries {
            match (self.entries.iter_mut().find(|x| x.key == e.key), &e.value) {
                (Some(old), Value::Table(t)) => {
                    if let Value::Table(base) = &mut old.value {
                        base.merge_from(t);
                        old.loc = e.loc;
                    } else {
                        *old = e.clone();
                    }
                }
                (Some(old), _) => *old = e.clone(),
                (None, _) => self.entries.push(e.clone()),
            }
        }
    }

    /// Looks a value up by dotted path (`docker.image`).
    pub fn lookup(&self, path: &str) -> Option<&Entry> {
        let (head, rest) = match path.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (path, None),
        };
        let entry = self.get(head)?;
        match (rest, &entry.value) {
            (None, _) => Some(entry),
            (Some(rest), Value::Table(t)) => t.lookup(rest),
            _ => None,
        }
    }
}

/// Keys of `[[runners]]` that belong to gitlab-runner or to runnerform, never to the user.
const NOT_DECLARABLE: &[(&str, &str)] = &[
    (
        "runners.name",
        "the runner's name is the argument of its node: runner \"build\" { … }",
    ),
    (
        "runners.url",
        "the URL comes from the `gitlab` node: gitlab \"https://gitlab.example.com\"",
    ),
    (
        "runners.id",
        "the runner's id is GitLab's: runnerform records it when it registers or adopts",
    ),
    (
        "runners.token_obtained_at",
        "gitlab-runner and runnerform maintain token timestamps",
    ),
    (
        "runners.token_expires_at",
        "gitlab-runner and runnerform maintain token timestamps",
    ),
];

/// Keys whose values are secrets: written inline they end up in version control.
pub(crate) const SECRET_KEYS: &[&str] = &[
    "runners.cache.s3.AccessKey",
    "runners.cache.s3.SecretKey",
    "runners.cache.s3.SessionToken",
    "runners.cache.gcs.PrivateKey",
    "runners.cache.azure.AccountKey",
    "runners.kubernetes.bearer_token",
    "runners.ssh.password",
    "runners.parallels.password",
    "runners.virtualbox.password",
    "sentry_dsn",
];

pub use crate::secrets::looks_like_token;

/// Decodes the keys of a table node's children against `spec`, into `table`.
pub(super) fn decode_children(cx: &mut Cx, node: &KdlNode, spec: &Key, table: &mut Table) {
    let Some(children) = node.children() else {
        return;
    };
    for child in children.nodes() {
        let name = child.name().value();
        match spec.child(name) {
            Some(key) => decode_key(cx, child, key, table),
            None => unknown_key(cx, child, spec, &[]),
        }
    }
}

/// Reports a name that is neither a key of `spec` nor one of `extra` (runnerform's own nodes).
pub(super) fn unknown_key(cx: &mut Cx, node: &KdlNode, spec: &Key, extra: &[&str]) {
    let name = node.name().value();
    let candidates: Vec<&str> = spec
        .children
        .iter()
        .map(|k| k.name.as_str())
        .chain(extra.iter().copied())
        .collect();
    let table = if spec.path.is_empty() {
        "the top level of config.toml".to_string()
    } else if spec.path == "runners" {
        "[[runners]]".to_string()
    } else {
        format!("[{}]", spec.path)
    };
    let help = if let Some(s) = suggest(name, &candidates) {
        format!("did you mean `{s}`?")
    } else if let Some(elsewhere) = elsewhere(name, spec) {
        elsewhere
    } else {
        format!(
            "{table} has no key `{name}`; the language reference (schemas/language.md) lists \
             every key"
        )
    };
    cx.error(
        "unknown_key",
        format!("unknown key `{name}` in {table}"),
        node.name().span(),
        "not a known key",
        help,
    );
}

/// Where a key of that name lives, when it belongs in a sub-table of the runner.
fn elsewhere(name: &str, spec: &Key) -> Option<String> {
    let inv = crate::keys::inventory();
    let base = if spec.path.starts_with("runners") {
        inv.runner()
    } else {
        &inv.root
    };
    let all = base.descendants();
    let leaf_names: Vec<&str> = all.iter().map(|k| k.name.as_str()).collect();
    let (name, lead) = if leaf_names.contains(&name) {
        (name, String::new())
    } else {
        let near = suggest(name, &leaf_names)?;
        (near, format!("did you mean `{near}`? "))
    };
    let homes: Vec<String> = all
        .into_iter()
        .filter(|k| k.name == name)
        .filter_map(|k| {
            k.path
                .rsplit_once('.')
                .map(|(parent, _)| parent.to_string())
        })
        .filter(|p| p != &spec.path)
        .take(3)
        .collect();
    if homes.is_empty() {
        return None;
    }
    let blocks: Vec<String> = homes
        .iter()
        .map(|p| {
            let rel = p.strip_prefix("runners.").unwrap_or(p);
            let depth = rel.matches('.').count();
            format!(
                "`{} {{ … }}{}`",
                rel.replace('.', " { "),
                " }".repeat(depth)
            )
        })
        .collect();
    Some(format!(
        "{lead}`{name}` is a key of {}: put it inside that block",
        blocks.join(" or ")
    ))
}

pub(super) fn decode_key(cx: &mut Cx, node: &KdlNode, key: &Key, table: &mut Table) {
    if let Some((_, why)) = NOT_DECLARABLE.iter().find(|(p, _)| *p == key.path) {
        cx.error(
            "not_declarable",
            format!("`{}` cannot be declared", key.name),
            node.name().span(),
            "set by gitlab-runner or runnerform",
            *why,
        );
        return;
    }
    let loc = cx.loc(node.span());
    let value = match key.kind {
        Kind::Table => {
            if !no_entries(cx, node, key) {
                return;
            }
            let mut t = Table::default();
            decode_children(cx, node, key, &mut t);
            Value::Table(t)
        }
        Kind::TableArray => {
            if !no_entries(cx, node, key) {
                return;
            }
            let mut t = Table::default();
            decode_children(cx, node, key, &mut t);
            match table.entries.iter_mut().find(|e| e.key == key.name) {
                Some(Entry {
                    value: Value::TableArray(items),
                    ..
                }) => items.push(t),
                _ => table.entries.push(Entry {
                    key: key.name.clone(),
                    value: Value::TableArray(vec![t]),
                    loc,
                }),
            }
            return;
        }
        Kind::Map(elem) => match decode_map(cx, node, key, elem) {
            Some(v) => v,
            None => return,
        },
        Kind::Datetime => {
            cx.error(
                "not_declarable",
                format!("`{}` cannot be declared", key.name),
                node.name().span(),
                "maintained by gitlab-runner",
                "token timestamps are written by gitlab-runner and runnerform",
            );
            return;
        }
        _ => match decode_scalar_node(cx, node, key) {
            Some(v) => v,
            None => return,
        },
    };
    if let Some(first) = table.get(&key.name) {
        let first = cx.sources.position(first.loc);
        cx.error(
            "duplicate_key",
            format!("`{}` is set twice", key.name),
            node.name().span(),
            "set again here",
            format!("first set at {first}; keep one"),
        );
        return;
    }
    table.entries.push(Entry {
        key: key.name.clone(),
        value,
        loc,
    });
}

fn form_hint(key: &Key) -> String {
    let n = &key.name;
    match key.kind {
        Kind::String => format!("write it as: {n} \"value\""),
        Kind::Integer => format!("write it as: {n} 10"),
        Kind::Float => format!("write it as: {n} 1.5"),
        Kind::Bool => format!("write it as: {n} #true (or #false)"),
        Kind::Duration => format!("write it as: {n} \"15m\" (a Go duration such as 30s, 1h30m)"),
        Kind::Array(Elem::String) | Kind::StringOrArray => {
            format!("write it as: {n} \"first\" \"second\"")
        }
        Kind::Array(_) => format!("write it as: {n} 1 2 3"),
        Kind::Table | Kind::TableArray => format!("write it as a block: {n} {{ … }}"),
        Kind::Map(Elem::Bool) => format!("write it as: {n} {{ NAME #true }}"),
        Kind::Map(_) => format!("write it as: {n} {{ name \"value\" }} or {n} name=\"value\""),
        Kind::Datetime => String::new(),
    }
}

/// Tables take no arguments or properties; only a block.
fn no_entries(cx: &mut Cx, node: &KdlNode, key: &Key) -> bool {
    if let Some(e) = node.entries().first() {
        cx.error(
            "wrong_type",
            format!("`{}` is a table and takes no values", key.name),
            e.span(),
            "unexpected value",
            form_hint(key),
        );
        return false;
    }
    true
}

fn decode_scalar_node(cx: &mut Cx, node: &KdlNode, key: &Key) -> Option<Value> {
    if let Some(children) = node.children() {
        cx.error(
            "wrong_type",
            format!("`{}` is a {}, not a table", key.name, key.kind.describe()),
            children.span(),
            "unexpected block",
            form_hint(key),
        );
        return None;
    }
    let args: Vec<&KdlEntry> = node
        .entries()
        .iter()
        .filter(|e| e.name().is_none())
        .collect();
    let props: Vec<&KdlEntry> = node
        .entries()
        .iter()
        .filter(|e| e.name().is_some())
        .collect();
    if key.kind == Kind::String
        && let Some(secret) = secret_ref(cx, node)
    {
        return secret.map(Value::Secret);
    }
    if let Some(p) = props.first() {
        let help = if key.kind == Kind::String {
            "properties here are only env=\"VAR\" or file=\"PATH\", for secrets".to_string()
        } else {
            form_hint(key)
        };
        cx.error(
            "unexpected_property",
            format!("`{}` takes no properties", key.name),
            p.span(),
            "unexpected property",
            help,
        );
        return None;
    }
    match key.kind {
        Kind::Array(elem) => {
            let mut out = Vec::new();
            for a in &args {
                out.push(scalar(cx, a, elem, key)?);
            }
            check_enum(cx, key, &args, &out);
            Some(Value::Array(out))
        }
        Kind::StringOrArray if args.len() > 1 => {
            let mut out = Vec::new();
            for a in &args {
                out.push(scalar(cx, a, Elem::String, key)?);
            }
            check_enum(cx, key, &args, &out);
            Some(Value::Array(out))
        }
        _ => {
            let [arg] = args.as_slice() else {
                let (span, label) = match args.get(1) {
                    Some(extra) => (extra.span(), "one value too many"),
                    None => (node.name().span(), "needs a value"),
                };
                cx.error(
                    "wrong_arity",
                    format!("`{}` takes exactly one {}", key.name, key.kind.describe()),
                    span,
                    label,
                    form_hint(key),
                );
                return None;
            };
            let v = match key.kind {
                Kind::Integer => scalar(cx, arg, Elem::Integer, key)?,
                Kind::Float => scalar(cx, arg, Elem::Float, key)?,
                Kind::Bool => scalar(cx, arg, Elem::Bool, key)?,
                Kind::Duration => duration(cx, arg, key)?,
                _ => scalar(cx, arg, Elem::String, key)?,
            };
            if let Value::String(s) = &v {
                secret_inline(cx, key, s, arg);
            }
            check_enum(cx, key, &args, std::slice::from_ref(&v));
            Some(v)
        }
    }
}

fn secret_inline(cx: &mut Cx, key: &Key, s: &str, arg: &KdlEntry) {
    if looks_like_token(s) || SECRET_KEYS.contains(&key.path.as_str()) {
        crate::secrets::remember(s);
    }
    if looks_like_token(s) {
        cx.error(
            "inline_secret",
            format!("`{}` holds a GitLab token written inline", key.name),
            arg.span(),
            "a secret",
            format!(
                "secrets belong in env vars or files: {} env=\"VAR\" or {} file=\"PATH\"",
                key.name, key.name
            ),
        );
    } else if SECRET_KEYS.contains(&key.path.as_str()) && !s.is_empty() {
        cx.warning(
            "inline_secret",
            format!("`{}` is a secret written inline", key.name),
            arg.span(),
            "ends up in version control",
            format!(
                "read it from the environment or a file: {} env=\"VAR\" or {} file=\"PATH\"",
                key.name, key.name
            ),
        );
    }
}

fn check_enum(cx: &mut Cx, key: &Key, args: &[&KdlEntry], values: &[Value]) {
    let Some(allowed) = allowed_values(&key.path) else {
        return;
    };
    for (arg, v) in args.iter().zip(values) {
        if let Value::String(s) = v
            && !allowed.contains(&s.as_str())
        {
            let hint = match suggest(s, allowed) {
                Some(m) => format!("did you mean \"{m}\"? allowed: {}", allowed.join(", ")),
                None => format!("allowed: {}", allowed.join(", ")),
            };
            cx.error(
                "bad_value",
                format!("`{}` does not accept \"{s}\"", key.name),
                arg.span(),
                "not an allowed value",
                hint,
            );
        }
    }
}

/// One KDL value as an element of the given kind.
fn scalar(cx: &mut Cx, entry: &KdlEntry, want: Elem, key: &Key) -> Option<Value> {
    let v = entry.value();
    let got = match (want, v) {
        (Elem::String, KdlValue::String(s)) => Some(Value::String(s.clone())),
        (Elem::Integer, KdlValue::Integer(i)) => match i64::try_from(*i) {
            Ok(i) => Some(Value::Integer(i)),
            Err(_) => {
                cx.error(
                    "bad_value",
                    format!("`{}` is out of range", key.name),
                    entry.span(),
                    "does not fit in 64 bits",
                    "use a smaller number",
                );
                return None;
            }
        },
        (Elem::Float, KdlValue::Float(f)) => Some(Value::Float(*f)),
        (Elem::Float, KdlValue::Integer(i)) => Some(Value::Float(*i as f64)),
        (Elem::Bool, KdlValue::Bool(b)) => Some(Value::Bool(*b)),
        (Elem::Any, KdlValue::String(s)) => Some(Value::String(s.clone())),
        (Elem::Any, KdlValue::Integer(i)) => i64::try_from(*i).ok().map(Value::Integer),
        (Elem::Any, KdlValue::Float(f)) => Some(Value::Float(*f)),
        (Elem::Any, KdlValue::Bool(b)) => Some(Value::Bool(*b)),
        _ => None,
    };
    if got.is_none() {
        let expected = match key.kind {
            Kind::Array(_) | Kind::Map(_) | Kind::StringOrArray => {
                format!("{} ({})", key.kind.describe(), want.describe())
            }
            k => k.describe().to_string(),
        };
        let mut help = form_hint(key);
        if let (Elem::Bool, KdlValue::String(s)) = (want, v)
            && (s == "true" || s == "false")
        {
            help = format!("booleans are written #{s} (no quotes)");
        }
        if let (Elem::Integer | Elem::Float, KdlValue::String(s)) = (want, v)
            && s.trim().parse::<f64>().is_ok()
        {
            help = format!(
                "numbers are written without quotes: {} {}",
                key.name,
                s.trim()
            );
        }
        cx.error(
            "wrong_type",
            format!("`{}` expects {expected}, found {}", key.name, kdl_type(v)),
            entry.span(),
            format!("expected {}", want.describe()),
            help,
        );
    }
    got
}

/// Go's `time.ParseDuration` syntax (see [`crate::duration`]), within Go's range.
pub fn is_go_duration(s: &str) -> bool {
    crate::duration::go_nanos(s).is_some()
}

fn duration(cx: &mut Cx, entry: &KdlEntry, key: &Key) -> Option<Value> {
    match entry.value() {
        KdlValue::String(s) if is_go_duration(s) => Some(Value::String(s.clone())),
        KdlValue::Integer(i) => i64::try_from(*i).ok().map(Value::Integer),
        other => {
            cx.error(
                "wrong_type",
                format!(
                    "`{}` expects a duration, found {}",
                    key.name,
                    match other {
                        KdlValue::String(s) => format!("\"{s}\""),
                        v => kdl_type(v).to_string(),
                    }
                ),
                entry.span(),
                "not a duration",
                "durations are Go durations such as \"30s\", \"15m\", \"1h30m\" (or an integer \
                 count of nanoseconds)",
            );
            None
        }
    }
}

fn decode_map(cx: &mut Cx, node: &KdlNode, key: &Key, elem: Elem) -> Option<Value> {
    let mut t = Table::default();
    let mut ok = true;
    for e in node.entries() {
        let Some(name) = e.name() else {
            cx.error(
                "wrong_type",
                format!(
                    "`{}` is a {} and takes no plain values",
                    key.name,
                    key.kind.describe()
                ),
                e.span(),
                "a value without a name",
                form_hint(key),
            );
            ok = false;
            continue;
        };
        let value = if elem == Elem::StringArray {
            scalar(cx, e, Elem::String, key).map(|v| Value::Array(vec![v]))
        } else {
            scalar(cx, e, elem, key)
        };
        match value {
            Some(v) => map_insert(cx, &mut t, name.value(), v, e.span(), key),
            None => ok = false,
        }
    }
    if let Some(children) = node.children() {
        for child in children.nodes() {
            let k = child.name().value();
            if let Some(v) = map_entry_value(cx, child, key, elem) {
                map_insert(cx, &mut t, k, v, child.span(), key);
            } else {
                ok = false;
            }
        }
    }
    ok.then_some(Value::Table(t))
}

fn map_insert(cx: &mut Cx, t: &mut Table, k: &str, v: Value, span: miette::SourceSpan, key: &Key) {
    let loc = cx.loc(span);
    if let Some(first) = t.get(k) {
        let first = cx.sources.position(first.loc);
        cx.error(
            "duplicate_key",
            format!("`{k}` is set twice in `{}`", key.name),
            span,
            "set again here",
            format!("first set at {first}; keep one"),
        );
        return;
    }
    t.entries.push(Entry {
        key: k.to_string(),
        value: v,
        loc,
    });
}

fn map_entry_value(cx: &mut Cx, child: &KdlNode, key: &Key, elem: Elem) -> Option<Value> {
    let args: Vec<&KdlEntry> = child
        .entries()
        .iter()
        .filter(|e| e.name().is_none())
        .collect();
    if elem == Elem::Any {
        if child.children().is_some() || args.is_empty() {
            let mut t = Table::default();
            for e in child.entries().iter().filter(|e| e.name().is_some()) {
                let v = scalar(cx, e, Elem::Any, key)?;
                map_insert(cx, &mut t, e.name()?.value(), v, e.span(), key);
            }
            if let Some(doc) = child.children() {
                for n in doc.nodes() {
                    let v = map_entry_value(cx, n, key, Elem::Any)?;
                    map_insert(cx, &mut t, n.name().value(), v, n.span(), key);
                }
            }
            return Some(Value::Table(t));
        }
        if args.len() > 1 {
            let mut out = Vec::new();
            for a in &args {
                out.push(scalar(cx, a, Elem::Any, key)?);
            }
            return Some(Value::Array(out));
        }
        return scalar(cx, args[0], Elem::Any, key);
    }
    if elem == Elem::StringArray {
        let mut out = Vec::new();
        for a in &args {
            out.push(scalar(cx, a, Elem::String, key)?);
        }
        return Some(Value::Array(out));
    }
    match args.as_slice() {
        [one] if child.children().is_none() && child.entries().len() == 1 => {
            scalar(cx, one, elem, key)
        }
        _ => {
            cx.error(
                "wrong_arity",
                format!(
                    "each entry of `{}` takes exactly one {}",
                    key.name,
                    elem.describe()
                ),
                child.span(),
                "expected one value",
                form_hint(key),
            );
            None
        }
    }
}

/// Reads `env="VAR"` or `file="PATH"` from a node. `None` when the node has neither;
/// `Some(None)` when it has a malformed reference (already reported).
pub(super) fn secret_ref(cx: &mut Cx, node: &KdlNode) -> Option<Option<SecretRef>> {
    let props: Vec<&KdlEntry> = node
        .entries()
        .iter()
        .filter(|e| e.name().is_some())
        .collect();
    let refs: Vec<&&KdlEntry> = props
        .iter()
        .filter(|e| matches!(e.name().map(|n| n.value()), Some("env" | "file")))
        .collect();
    if refs.is_empty() {
        return None;
    }
    let name = node.name().value();
    if node.entries().len() != 1 || node.children().is_some() {
        cx.error(
            "bad_reference",
            format!("`{name}` takes exactly one reference: env=\"VAR\" or file=\"PATH\""),
            node.span(),
            "expected only env= or file=",
            format!("write it as: {name} env=\"VAR\""),
        );
        return Some(None);
    }
    let e = refs[0];
    let Some(s) = e.value().as_string() else {
        cx.error(
            "bad_reference",
            format!("`{name}` reference must be a string"),
            e.span(),
            "expected a string",
            format!("write it as: {name} env=\"VAR\""),
        );
        return Some(None);
    };
    let is_env = e.name().map(|n| n.value()) == Some("env");
    if s.is_empty() || (is_env && !valid_env_name(s)) {
        let help = if looks_like_token(s) {
            "this is the secret itself: put it in an env var and name the variable here"
        } else {
            "env var names are letters, digits and underscores, not starting with a digit"
        };
        cx.error(
            "bad_reference",
            format!("`{name}` names an invalid environment variable"),
            e.span(),
            "not a variable name",
            help,
        );
        return Some(None);
    }
    let loc = cx.loc(e.span());
    Some(Some(SecretRef {
        source: if is_env {
            SecretSource::Env(s.to_string())
        } else {
            SecretSource::File(s.into())
        },
        loc,
    }))
}

fn valid_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for ok in [
            "0", "15m", "1h30m", "1.5s", "300ms", "-2h", "10us", "1h0m0s",
        ] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "15", "m", "1x", "1.2.3s", "1 h", "h1"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }

    #[test]
    fn token_prefixes_are_recognised() {
        assert!(looks_like_token("glrt-abcdef"));
        assert!(looks_like_token("GR1348941abc"));
        assert!(!looks_like_token("RUNNER_TOKEN"));
    }
}
