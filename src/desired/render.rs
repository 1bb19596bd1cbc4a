//! config.toml to KDL: the inverse of decoding, key by key, driven by the same inventory.
//!
//! Used to describe an existing config.toml in the language (and so to prove that every key
//! of a real config.toml can be expressed). Keys the inventory does not know, and values of
//! the wrong shape, become comments rather than being dropped silently.

use std::fmt::Write;

use toml_edit::{Item, Table, Value};

use crate::desired::value::SECRET_KEYS;
use crate::keys::{Elem, Key, Kind};

/// Keys of `[[runners]]` that are not written as settings: the runner's identity and
/// credentials, which the language expresses otherwise.
pub const RUNNER_IDENTITY_KEYS: &[&str] = &[
    "name",
    "url",
    "id",
    "token",
    "token_obtained_at",
    "token_expires_at",
];

/// A KDL string literal, always quoted.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A node name: bare when KDL allows it, quoted otherwise.
pub fn ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'))
        && !matches!(s, "true" | "false" | "null" | "inf" | "nan");
    if plain { s.to_string() } else { quote(s) }
}

/// Where secret strings go while rendering: given the key, the name of the env var that
/// will hold the value. Without one, values are written as they are (for tests that compare
/// every value with its TOML).
pub type SecretNamer<'a> = dyn FnMut(&Key, &str) -> String + 'a;

/// Renders the keys of `table` as children of a node whose spec is `spec`, at `depth`.
/// `skip` names keys that the caller expresses otherwise.
pub fn table_body(table: &Table, spec: &Key, depth: usize, skip: &[&str], out: &mut String) {
    Render { out, secrets: None }.table(table, spec, depth, skip);
}

/// Like [`table_body`], but a secret (a key of [`SECRET_KEYS`], or any string that holds a
/// GitLab token) becomes `KEY env="VAR"` with the name `secrets` gives it, and a token in a
/// place that cannot take a reference becomes a comment. Nothing secret reaches `out`.
pub fn table_body_referencing(
    table: &Table,
    spec: &Key,
    depth: usize,
    skip: &[&str],
    out: &mut String,
    secrets: &mut SecretNamer,
) {
    Render {
        out,
        secrets: Some(secrets),
    }
    .table(table, spec, depth, skip);
}

/// The env var that gitlab-runner itself would read for a `$VAR` or `${VAR}` value.
pub fn env_reference(s: &str) -> Option<&str> {
    let name = s
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| s.strip_prefix('$'))?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// Whether a string at `key` must not be written inline.
pub fn is_secret(key: &Key, s: &str) -> bool {
    // `$VAR` is gitlab-runner's own reference to its environment: no secret, and written as
    // it is, config.toml keeps it as it is.
    if env_reference(s).is_some() {
        return false;
    }
    (SECRET_KEYS.contains(&key.path.as_str()) && !s.is_empty()) || holds_token(s)
}

fn holds_token(s: &str) -> bool {
    crate::secrets::mask(s) != s
}

fn pad(depth: usize) -> String {
    "    ".repeat(depth)
}

fn comment(out: &mut String, depth: usize, text: &str) {
    let _ = writeln!(out, "{}// {text}", pad(depth));
}

struct Render<'o, 's, 'n> {
    out: &'o mut String,
    secrets: Option<&'s mut SecretNamer<'n>>,
}

impl Render<'_, '_, '_> {
    fn table(&mut self, table: &Table, spec: &Key, depth: usize, skip: &[&str]) {
        for (name, item) in table.iter() {
            if skip.contains(&name) {
                continue;
            }
            let key = spec.child(name).or_else(|| {
                spec.children
                    .iter()
                    .find(|k| k.name.eq_ignore_ascii_case(name))
            });
            match key {
                Some(key) => self.item(item, key, depth),
                None => comment(
                    self.out,
                    depth,
                    &format!(
                        "`{name}` is not a key gitlab-runner knows; left out (runnerform \
                         leaves it in config.toml as it is)"
                    ),
                ),
            }
        }
    }

    /// A line that would show a token is replaced by a comment saying why it is missing.
    fn line(&mut self, depth: usize, name: &str, line: String) {
        if self.secrets.is_some() && holds_token(&line) {
            comment(
                self.out,
                depth,
                &format!(
                    "`{name}` holds a GitLab token, which is never copied into a KDL file and \
                     cannot be referenced here; left out (runnerform leaves it in config.toml \
                     as it is)"
                ),
            );
        } else {
            self.out.push_str(&line);
        }
    }

    fn block(&mut self, name: &str, t: &Table, key: &Key, depth: usize) {
        let p = pad(depth);
        let _ = writeln!(self.out, "{p}{name} {{");
        self.table(t, key, depth + 1, &[]);
        let _ = writeln!(self.out, "{p}}}");
    }

    fn item(&mut self, item: &Item, key: &Key, depth: usize) {
        let name = ident(&key.name);
        let p = pad(depth);
        match (key.kind, item) {
            (Kind::Table, Item::Table(t)) => self.block(&name, t, key, depth),
            (Kind::Table, Item::Value(Value::InlineTable(t))) => {
                self.block(&name, &t.clone().into_table(), key, depth)
            }
            (Kind::TableArray, Item::ArrayOfTables(ts)) => {
                for t in ts.iter() {
                    self.block(&name, t, key, depth);
                }
            }
            (Kind::TableArray, Item::Value(Value::Array(a))) => {
                for v in a.iter() {
                    if let Value::InlineTable(t) = v {
                        self.block(&name, &t.clone().into_table(), key, depth);
                    }
                }
            }
            (Kind::Map(elem), Item::Table(t)) => {
                let mut s = String::new();
                map_node(&name, t.iter(), elem, depth, &mut s);
                self.line(depth, &key.name, s);
            }
            (Kind::Map(elem), Item::Value(Value::InlineTable(t))) => {
                let mut s = String::new();
                map_node(&name, t.iter(), elem, depth, &mut s);
                self.line(depth, &key.name, s);
            }
            (Kind::String, Item::Value(Value::String(s)))
                if self.secrets.is_some() && is_secret(key, s.value()) =>
            {
                let namer = self.secrets.as_mut().expect("checked above");
                let var = namer(key, s.value());
                let _ = writeln!(self.out, "{p}{name} env={}", quote(&var));
            }
            (_, Item::Value(v)) => match scalar_args(v, key.kind) {
                Some(args) => self.line(depth, &key.name, format!("{p}{name}{args}\n")),
                None => comment(
                    self.out,
                    depth,
                    &format!(
                        "`{}` should be a {}; left out",
                        key.name,
                        key.kind.describe()
                    ),
                ),
            },
            _ => comment(
                self.out,
                depth,
                &format!(
                    "`{}` should be a {}; left out",
                    key.name,
                    key.kind.describe()
                ),
            ),
        }
    }
}

trait MapValue {
    fn as_value(&self) -> Option<&Value>;
    fn as_table_like(&self) -> Option<Table>;
}

impl MapValue for &Item {
    fn as_value(&self) -> Option<&Value> {
        Item::as_value(self)
    }
    fn as_table_like(&self) -> Option<Table> {
        match self {
            Item::Table(t) => Some(t.clone()),
            Item::Value(Value::InlineTable(t)) => Some(t.clone().into_table()),
            _ => None,
        }
    }
}

impl MapValue for &Value {
    fn as_value(&self) -> Option<&Value> {
        Some(self)
    }
    fn as_table_like(&self) -> Option<Table> {
        match self {
            Value::InlineTable(t) => Some(t.clone().into_table()),
            _ => None,
        }
    }
}

fn map_node<'a, V: MapValue>(
    name: &str,
    entries: impl Iterator<Item = (&'a str, V)>,
    elem: Elem,
    depth: usize,
    out: &mut String,
) {
    let p = pad(depth);
    let _ = writeln!(out, "{p}{name} {{");
    for (k, v) in entries {
        map_entry(k, &v, elem, depth + 1, out);
    }
    let _ = writeln!(out, "{p}}}");
}

fn map_entry<V: MapValue>(k: &str, v: &V, elem: Elem, depth: usize, out: &mut String) {
    let p = pad(depth);
    let kname = ident(k);
    if elem == Elem::Any
        && let Some(t) = v.as_table_like()
    {
        let _ = writeln!(out, "{p}{kname} {{");
        for (k2, v2) in t.iter() {
            map_entry(k2, &v2, Elem::Any, depth + 1, out);
        }
        let _ = writeln!(out, "{p}}}");
        return;
    }
    let kind = match elem {
        Elem::StringArray => Kind::Array(Elem::String),
        Elem::Any => Kind::StringOrArray,
        e => Kind::Array(e),
    };
    let rendered = v.as_value().and_then(|v| match (elem, v) {
        (Elem::Any, Value::Array(_)) => scalar_args(v, Kind::Array(Elem::Any)),
        (Elem::Any, _) => any_scalar(v).map(|s| format!(" {s}")),
        (Elem::StringArray, _) => scalar_args(v, kind),
        (e, v) => elem_value(v, e).map(|s| format!(" {s}")),
    });
    match rendered {
        Some(args) => {
            let _ = writeln!(out, "{p}{kname}{args}");
        }
        None => comment(
            out,
            depth,
            &format!("`{k}` has a value of the wrong type; left out"),
        ),
    }
}

fn any_scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(quote(s.value())),
        Value::Integer(i) => Some(i.value().to_string()),
        Value::Float(f) => Some(format!("{:?}", f.value())),
        Value::Boolean(b) => Some(format!("#{}", b.value())),
        _ => None,
    }
}

fn elem_value(v: &Value, elem: Elem) -> Option<String> {
    match (elem, v) {
        (Elem::String, Value::String(s)) => Some(quote(s.value())),
        (Elem::Integer, Value::Integer(i)) => Some(i.value().to_string()),
        (Elem::Float, Value::Float(f)) => Some(format!("{:?}", f.value())),
        (Elem::Float, Value::Integer(i)) => Some(i.value().to_string()),
        (Elem::Bool, Value::Boolean(b)) => Some(format!("#{}", b.value())),
        (Elem::Any, v) => any_scalar(v),
        _ => None,
    }
}

/// The arguments of a scalar or list node, with a leading space each.
fn scalar_args(v: &Value, kind: Kind) -> Option<String> {
    let one = |s: String| Some(format!(" {s}"));
    match (kind, v) {
        (Kind::String, Value::String(s)) => one(quote(s.value())),
        (Kind::Integer, Value::Integer(i)) => one(i.value().to_string()),
        (Kind::Float, Value::Float(f)) => one(format!("{:?}", f.value())),
        (Kind::Float, Value::Integer(i)) => one(i.value().to_string()),
        (Kind::Bool, Value::Boolean(b)) => one(format!("#{}", b.value())),
        (Kind::Duration, Value::String(s)) => one(quote(s.value())),
        (Kind::Duration, Value::Integer(i)) => one(i.value().to_string()),
        (Kind::StringOrArray, Value::String(s)) => one(quote(s.value())),
        (Kind::Array(_) | Kind::StringOrArray, Value::Array(a)) => {
            let elem = match kind {
                Kind::Array(e) => e,
                _ => Elem::String,
            };
            let mut out = String::new();
            for x in a.iter() {
                out.push(' ');
                out.push_str(&elem_value(x, elem)?);
            }
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_in_config_toml() {
        assert_eq!(env_reference("${RUNNER_TOKEN_1}"), Some("RUNNER_TOKEN_1"));
        assert_eq!(env_reference("$GITLAB_URL"), Some("GITLAB_URL"));
        assert_eq!(env_reference("glrt-abc"), None);
        assert_eq!(env_reference("${1X}"), None);
    }

    #[test]
    fn quoting_and_identifiers() {
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(ident("tls-ca-file"), "tls-ca-file");
        assert_eq!(
            ident("node-role.kubernetes.io/master"),
            "\"node-role.kubernetes.io/master\""
        );
        assert_eq!(ident("true"), "\"true\"");
        assert_eq!(ident(""), "\"\"");
    }
}
