//! Factoring settings that several runners repeat into one `defaults` block.
//!
//! `defaults` applies to every runner, and a runner can override a key but never remove one,
//! so a key is factored only when every runner has it. Its most common value (held by at
//! least two runners) goes to `defaults`; runners with another value keep theirs as an
//! override. Tables and maps merge key by key when layered, so they are factored key by key
//! too; anything else (scalars, arrays, arrays of tables) is replaced whole, so it is compared
//! whole.

use std::collections::HashMap;

use toml_edit::{Item, Table, Value};

use crate::keys::{Key, Kind};

/// The shared part, and what each runner keeps of its own (same order as `tables`).
pub struct Factored {
    pub common: Table,
    pub own: Vec<Table>,
}

pub fn factor(tables: &[Table], spec: &Key) -> Factored {
    let mut own: Vec<Table> = tables.to_vec();
    let mut common = Table::new();
    if tables.len() < 2 {
        return Factored { common, own };
    }
    let first = &tables[0];
    for (name, _) in first.iter() {
        let items: Vec<&Item> = match tables.iter().map(|t| t.get(name)).collect() {
            Some(items) => items,
            None => continue,
        };
        let child = spec.child(name);
        let merges_deeply = child.is_some_and(|k| matches!(k.kind, Kind::Table | Kind::Map(_)));
        let subs: Option<Vec<Table>> = items.iter().map(|i| as_table(i)).collect();
        if let (true, Some(subs), Some(child)) = (merges_deeply, subs, child) {
            let inner = factor(&subs, child);
            if !inner.common.is_empty() {
                common.insert(name, Item::Table(inner.common));
                for (t, rest) in own.iter_mut().zip(inner.own) {
                    if rest.is_empty() {
                        t.remove(name);
                    } else {
                        t.insert(name, Item::Table(rest));
                    }
                }
                continue;
            }
        }
        let canons: Vec<String> = items.iter().map(|i| canon(i)).collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for c in &canons {
            *counts.entry(c).or_default() += 1;
        }
        // The first of the most common values, so that the outcome does not depend on
        // hashing order.
        let best = canons
            .iter()
            .max_by_key(|c| (counts[c.as_str()], std::cmp::Reverse(position(&canons, c))))
            .expect("at least two runners");
        if counts[best.as_str()] < 2 {
            continue;
        }
        let at = position(&canons, best);
        common.insert(name, items[at].clone());
        for (t, c) in own.iter_mut().zip(&canons) {
            if c == best {
                t.remove(name);
            }
        }
    }
    Factored { common, own }
}

fn position(all: &[String], c: &str) -> usize {
    all.iter().position(|x| x == c).unwrap_or(0)
}

fn as_table(item: &Item) -> Option<Table> {
    match item {
        Item::Table(t) => Some(t.clone()),
        Item::Value(Value::InlineTable(t)) => Some(t.clone().into_table()),
        _ => None,
    }
}

/// A value's meaning without its layout: equal for `a = 1` and `a   =   1 # note`, and for
/// a table written inline or as a section.
pub fn canon(item: &Item) -> String {
    match item {
        Item::None => String::new(),
        Item::Value(v) => canon_value(v),
        Item::Table(t) => canon_pairs(t.iter().map(|(k, i)| (k.to_string(), canon(i)))),
        Item::ArrayOfTables(a) => {
            let parts: Vec<String> = a
                .iter()
                .map(|t| canon_pairs(t.iter().map(|(k, i)| (k.to_string(), canon(i)))))
                .collect();
            format!("[{}]", parts.join(","))
        }
    }
}

fn canon_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", s.value()),
        Value::Integer(i) => i.value().to_string(),
        Value::Float(f) => format!("{:?}", f.value()),
        Value::Boolean(b) => b.value().to_string(),
        Value::Datetime(d) => d.value().to_string(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(canon_value).collect();
            format!("[{}]", parts.join(","))
        }
        Value::InlineTable(t) => {
            canon_pairs(t.iter().map(|(k, v)| (k.to_string(), canon_value(v))))
        }
    }
}

fn canon_pairs(pairs: impl Iterator<Item = (String, String)>) -> String {
    let mut pairs: Vec<(String, String)> = pairs.collect();
    pairs.sort();
    let parts: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k:?}={v}"))
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::inventory;

    fn tables(src: &[&str]) -> Vec<Table> {
        src.iter()
            .map(|s| {
                s.parse::<toml_edit::DocumentMut>()
                    .unwrap()
                    .as_table()
                    .clone()
            })
            .collect()
    }

    #[test]
    fn shared_keys_move_to_common_and_overrides_stay() {
        let ts = tables(&[
            "executor = \"docker\"\nlimit = 2\n[docker]\nimage = \"a\"\nprivileged = true\n",
            "executor = \"docker\"\nlimit = 3\n[docker]\nimage = \"b\"\nprivileged = true\n",
            "executor = \"docker\"\nlimit = 2\n[docker]\nimage = \"a\"\nprivileged = true\n",
        ]);
        let f = factor(&ts, inventory().runner());
        assert_eq!(canon(f.common.get("executor").unwrap()), "\"docker\"");
        assert_eq!(canon(f.common.get("limit").unwrap()), "2");
        let docker = f.common.get("docker").unwrap();
        assert_eq!(canon(docker), r#"{"image"="a","privileged"=true}"#);
        assert!(f.own[0].is_empty(), "{}", f.own[0]);
        assert_eq!(canon(f.own[1].get("limit").unwrap()), "3");
        assert_eq!(canon(f.own[1].get("docker").unwrap()), r#"{"image"="b"}"#);
    }

    #[test]
    fn a_key_some_runners_lack_is_never_shared() {
        let ts = tables(&[
            "executor = \"shell\"\nlimit = 2\n",
            "executor = \"shell\"\n",
        ]);
        let f = factor(&ts, inventory().runner());
        assert!(f.common.get("limit").is_none());
        assert!(f.own[0].get("limit").is_some());
    }

    #[test]
    fn layout_does_not_matter_but_values_do() {
        let a = tables(&["x = [ 1, 2 ] # note\n"]);
        let b = tables(&["x = [1,2]\n"]);
        assert_eq!(canon(a[0].get("x").unwrap()), canon(b[0].get("x").unwrap()));
        let c = tables(&["x = [2, 1]\n"]);
        assert_ne!(canon(a[0].get("x").unwrap()), canon(c[0].get("x").unwrap()));
    }
}
