//! Declared values against config.toml values: conversion and semantic equality.
//!
//! Equality is gitlab-runner's, not TOML's: `"15m"` equals `"15m0s"` (gitlab-runner writes
//! durations back in Go's canonical form), a string equals a one-element list for
//! string-or-list keys, and an integer equals the same float. Without this, every apply after
//! gitlab-runner rewrote the file would show spurious changes.

use toml_edit::{Array, ArrayOfTables, InlineTable, Item, Table, Value as T};

use crate::desired::{SecretSource, Value};
use crate::duration::go_nanos as go_duration_nanos;
use crate::keys::{Key, Kind};

/// Secret values resolved before planning, so that planning itself does no I/O.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub values: Vec<(SecretSource, String)>,
    /// References that did not resolve, with why. An entry config.toml already has keeps
    /// the value it holds for them; a new one cannot be written.
    pub unresolved: Vec<(SecretSource, crate::diag::Problem)>,
}

impl Secrets {
    /// Resolves each reference once; one that does not resolve is recorded, not fatal.
    pub fn resolve_all<'a>(
        refs: impl IntoIterator<Item = &'a crate::desired::SecretRef>,
        mut resolve: impl FnMut(&crate::desired::SecretRef) -> Result<String, crate::diag::Problem>,
    ) -> Secrets {
        let mut secrets = Secrets::default();
        for r in refs {
            if secrets.get(&r.source).is_some() || secrets.unresolved(&r.source).is_some() {
                continue;
            }
            match resolve(r) {
                Ok(v) => secrets.values.push((r.source.clone(), v)),
                Err(p) => secrets.unresolved.push((r.source.clone(), p)),
            }
        }
        secrets
    }

    pub fn get(&self, source: &SecretSource) -> Option<&str> {
        self.values
            .iter()
            .find(|(s, _)| s == source)
            .map(|(_, v)| v.as_str())
    }

    /// Why `source` did not resolve, if it did not.
    pub fn unresolved(&self, source: &SecretSource) -> Option<&crate::diag::Problem> {
        self.unresolved
            .iter()
            .find(|(s, _)| s == source)
            .map(|(_, p)| p)
    }

    /// Settings of a new entry: every secret they read must be at hand.
    pub fn check_resolved(
        &self,
        settings: &crate::desired::Table,
    ) -> Result<(), crate::diag::Problem> {
        let first = settings
            .entries
            .iter()
            .find_map(|e| self.unresolved_in(&e.value));
        match first {
            Some(p) => Err(p.clone().help(
                "a new config.toml entry is written with every declared setting: set it before \
                 running runnerform",
            )),
            None => Ok(()),
        }
    }

    /// The first unresolved reference inside `v`.
    pub fn unresolved_in(&self, v: &Value) -> Option<&crate::diag::Problem> {
        match v {
            Value::Secret(r) => self.unresolved(&r.source),
            Value::Array(vs) => vs.iter().find_map(|v| self.unresolved_in(v)),
            Value::Table(t) => t.entries.iter().find_map(|e| self.unresolved_in(&e.value)),
            Value::TableArray(ts) => ts
                .iter()
                .flat_map(|t| &t.entries)
                .find_map(|e| self.unresolved_in(&e.value)),
            _ => None,
        }
    }
}

/// The TOML value a declared value is written as.
pub fn to_toml(v: &Value, secrets: &Secrets) -> Item {
    match v {
        Value::Table(t) => {
            let mut table = Table::new();
            for e in &t.entries {
                table.insert(&e.key, to_toml(&e.value, secrets));
            }
            Item::Table(table)
        }
        Value::TableArray(ts) => {
            let mut arr = ArrayOfTables::new();
            for t in ts {
                if let Item::Table(t) = to_toml(&Value::Table(t.clone()), secrets) {
                    arr.push(t);
                }
            }
            Item::ArrayOfTables(arr)
        }
        other => Item::Value(to_toml_value(other, secrets)),
    }
}

fn to_toml_value(v: &Value, secrets: &Secrets) -> T {
    match v {
        Value::String(s) => T::from(s.as_str()),
        Value::Integer(i) => T::from(*i),
        Value::Float(f) => T::from(*f),
        Value::Bool(b) => T::from(*b),
        Value::Secret(r) => T::from(secrets.get(&r.source).unwrap_or_default()),
        Value::Array(items) => {
            let mut a = Array::new();
            for i in items {
                a.push(to_toml_value(i, secrets));
            }
            T::Array(a)
        }
        Value::Table(t) => {
            let mut it = InlineTable::new();
            for e in &t.entries {
                it.insert(&e.key, to_toml_value(&e.value, secrets));
            }
            T::InlineTable(it)
        }
        Value::TableArray(ts) => {
            let mut a = Array::new();
            for t in ts {
                a.push(to_toml_value(&Value::Table(t.clone()), secrets));
            }
            T::Array(a)
        }
    }
}

/// Whether the file's item already says what the declaration says, for a key of kind `kind`.
pub fn same(item: &Item, v: &Value, key: Option<&Key>, secrets: &Secrets) -> bool {
    let kind = key.map(|k| k.kind);
    match (item, v) {
        (Item::Value(t), v) => same_value(t, v, kind, secrets),
        (Item::Table(t), Value::Table(d)) => same_table_declared(t, d, key, secrets),
        (Item::ArrayOfTables(ts), Value::TableArray(ds)) => {
            ts.len() == ds.len()
                && ts
                    .iter()
                    .zip(ds)
                    .all(|(t, d)| same_table_exact(t, d, key, secrets))
        }
        _ => false,
    }
}

/// Only declared keys count: a table that has more keys than declared is still the same.
fn same_table_declared(
    t: &dyn toml_edit::TableLike,
    d: &crate::desired::Table,
    key: Option<&Key>,
    secrets: &Secrets,
) -> bool {
    d.entries.iter().all(|e| {
        let child = key.and_then(|k| k.child(&e.key));
        lookup(t, &e.key).is_some_and(|(_, item)| same(item, &e.value, child, secrets))
    })
}

/// Elements of arrays of tables are replaced whole, so they must match exactly.
fn same_table_exact(
    t: &dyn toml_edit::TableLike,
    d: &crate::desired::Table,
    key: Option<&Key>,
    secrets: &Secrets,
) -> bool {
    t.len() == d.entries.len() && same_table_declared(t, d, key, secrets)
}

/// Finds a key as gitlab-runner does: exactly, else case-insensitively.
pub fn lookup<'a>(t: &'a dyn toml_edit::TableLike, key: &str) -> Option<(String, &'a Item)> {
    if let Some(item) = t.get(key) {
        return Some((key.to_string(), item));
    }
    t.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(k, i)| (k.to_string(), i))
}

fn same_value(t: &T, v: &Value, kind: Option<Kind>, secrets: &Secrets) -> bool {
    match (t, v) {
        (T::String(s), Value::String(d)) => {
            s.value() == d
                || (kind == Some(Kind::Duration)
                    && go_duration_nanos(s.value()).is_some()
                    && go_duration_nanos(s.value()) == go_duration_nanos(d))
        }
        (T::String(s), Value::Secret(r)) => secrets.get(&r.source) == Some(s.value().as_str()),
        (T::Integer(i), Value::String(d)) if kind == Some(Kind::Duration) => {
            go_duration_nanos(d) == Some(i128::from(*i.value()))
        }
        (T::String(s), Value::Integer(d)) if kind == Some(Kind::Duration) => {
            go_duration_nanos(s.value()) == Some(i128::from(*d))
        }
        (T::Integer(i), Value::Integer(d)) => i.value() == d,
        (T::Float(f), Value::Float(d)) => f.value() == d,
        (T::Integer(i), Value::Float(d)) => (*i.value() as f64) == *d,
        (T::Float(f), Value::Integer(d)) => *f.value() == *d as f64,
        (T::Boolean(b), Value::Bool(d)) => b.value() == d,
        (T::String(_), Value::Array(d)) if kind == Some(Kind::StringOrArray) && d.len() == 1 => {
            same_value(t, &d[0], None, secrets)
        }
        (T::Array(a), Value::String(_)) if kind == Some(Kind::StringOrArray) && a.len() == 1 => {
            a.get(0).is_some_and(|x| same_value(x, v, None, secrets))
        }
        (T::Array(a), Value::Array(d)) => {
            a.len() == d.len()
                && a.iter()
                    .zip(d)
                    .all(|(x, y)| same_value(x, y, None, secrets))
        }
        (T::InlineTable(t), Value::Table(d)) => {
            let key = None;
            same_table_declared(t, d, key, secrets)
        }
        (T::Array(a), Value::TableArray(ds)) => {
            a.len() == ds.len()
                && a.iter().zip(ds).all(|(x, d)| match x {
                    T::InlineTable(t) => same_table_exact(t, d, None, secrets),
                    _ => false,
                })
        }
        _ => false,
    }
}

/// How a value is shown in a plan: TOML syntax, secrets never in clear.
pub fn show_item(item: &Item) -> String {
    let s = match item {
        Item::Value(v) => v.clone().decorated("", "").to_string(),
        Item::Table(t) => format!("{{{} keys}}", t.len()),
        Item::ArrayOfTables(a) => format!("[{} tables]", a.len()),
        Item::None => "(none)".into(),
    };
    crate::secrets::mask(&s)
}

pub fn show_declared(v: &Value, secrets: &Secrets) -> String {
    if let Value::Secret(r) = v {
        let _ = secrets;
        return format!("(secret from {})", r.source);
    }
    show_item(&to_toml(v, secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_compare_by_length_of_time() {
        assert_eq!(go_duration_nanos("15m"), go_duration_nanos("15m0s"));
        assert_eq!(go_duration_nanos("1h30m"), Some(5_400_000_000_000));
        assert_eq!(go_duration_nanos("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration_nanos("-2ms"), Some(-2_000_000));
        assert_eq!(go_duration_nanos("1x"), None);
    }
}
