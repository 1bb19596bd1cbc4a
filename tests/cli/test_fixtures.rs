//! Every key of every real config.toml in the shared fixtures can be expressed in the
//! language: each file is rendered to KDL, validated by the real binary, decoded, and every
//! decoded value is compared with the TOML it came from.

use std::path::PathBuf;

use runnerform::desired::render::{RUNNER_IDENTITY_KEYS, table_body};
use runnerform::desired::{self, RefCheck, Table, Value};
use runnerform::keys::inventory;
use toml_edit::{DocumentMut, Item};

use crate::common::{TestEnvironment, root};

pub fn fixtures() -> Vec<PathBuf> {
    let dir = root().join("../shared/fixtures/config-toml");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    assert!(out.len() >= 13, "fixtures missing in {}", dir.display());
    out
}

fn kdl_for(doc: &DocumentMut) -> String {
    let inv = inventory();
    let mut kdl = String::from("gitlab \"https://gitlab.example.com\"\n");
    let mut globals = String::new();
    table_body(doc.as_table(), &inv.root, 1, &["runners"], &mut globals);
    kdl.push_str(&format!("config {{\n{globals}}}\n"));
    if let Some(runners) = doc.get("runners").and_then(Item::as_array_of_tables) {
        for (i, r) in runners.iter().enumerate() {
            let mut body = String::from("    instance\n");
            if r.get("executor").is_none() {
                body.push_str("    executor \"shell\"\n");
            }
            table_body(r, inv.runner(), 1, RUNNER_IDENTITY_KEYS, &mut body);
            kdl.push_str(&format!("runner \"fixture-{}\" {{\n{body}}}\n", i + 1));
        }
    }
    kdl
}

/// Whether a decoded value says the same as the TOML item it was rendered from.
fn same(item: &Item, v: &Value) -> bool {
    use toml_edit::Value as T;
    match (item, v) {
        (Item::Value(T::String(s)), Value::String(d)) => s.value() == d,
        (Item::Value(T::Integer(i)), Value::Integer(d)) => i.value() == d,
        (Item::Value(T::Float(f)), Value::Float(d)) => f.value() == d,
        (Item::Value(T::Integer(i)), Value::Float(d)) => *i.value() as f64 == *d,
        (Item::Value(T::Boolean(b)), Value::Bool(d)) => b.value() == d,
        (Item::Value(T::Array(a)), Value::Array(d)) => {
            a.len() == d.len()
                && a.iter()
                    .zip(d)
                    .all(|(x, y)| same(&Item::Value(x.clone()), y))
        }
        (Item::Value(T::String(s)), Value::Array(d)) => {
            d.len() == 1 && same(&Item::Value(T::from(s.value().as_str())), &d[0])
        }
        (Item::Value(T::InlineTable(t)), Value::Table(d)) => same_table(&t.clone().into_table(), d),
        (Item::Table(t), Value::Table(d)) => same_table(t, d),
        (Item::ArrayOfTables(ts), Value::TableArray(d)) => {
            ts.len() == d.len() && ts.iter().zip(d).all(|(t, x)| same_table(t, x))
        }
        _ => false,
    }
}

fn same_table(t: &toml_edit::Table, d: &Table) -> bool {
    t.len() == d.entries.len()
        && t.iter().all(|(k, item)| {
            d.entries
                .iter()
                .find(|e| e.key.eq_ignore_ascii_case(k))
                .is_some_and(|e| same(item, &e.value))
        })
}

fn leaves(item: &Item) -> usize {
    match item {
        Item::Table(t) => t.iter().map(|(_, i)| leaves(i)).sum(),
        Item::ArrayOfTables(ts) => ts
            .iter()
            .flat_map(|t| t.iter())
            .map(|(_, i)| leaves(i))
            .sum(),
        _ => 1,
    }
}

#[test]
fn every_fixture_key_is_expressible_in_kdl() {
    let mut env = TestEnvironment::new();
    env.set_env("GITLAB_TOKEN", "test-value");
    let mut keys = 0;
    for path in fixtures() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let doc: DocumentMut = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let kdl = kdl_for(&doc);
        assert!(
            !kdl.contains("left out"),
            "{name}: a key could not be expressed:\n{kdl}"
        );
        let file = format!("{name}.kdl");
        let kdl_path = env.write(&file, &kdl);
        let out = env.run(&["validate", "-f", &file]);
        assert_eq!(out.code, 0, "{name}:\n{kdl}\n{}", out.combined());

        let d = desired::read(&kdl_path, RefCheck::Warn)
            .desired
            .expect("valid");
        for (k, item) in doc.as_table().iter().filter(|(k, _)| *k != "runners") {
            let e = d
                .config
                .globals
                .get(k)
                .unwrap_or_else(|| panic!("{name}: global {k}"));
            assert!(
                same(item, &e.value),
                "{name}: global {k} differs: {item} vs {:?}",
                e.value
            );
            keys += leaves(item);
        }
        let runners = doc.get("runners").and_then(Item::as_array_of_tables);
        for (i, r) in runners.iter().flat_map(|r| r.iter()).enumerate() {
            let decoded = &d.runners[i].body.settings;
            for (k, item) in r.iter().filter(|(k, _)| !RUNNER_IDENTITY_KEYS.contains(k)) {
                let e = decoded
                    .entries
                    .iter()
                    .find(|e| e.key.eq_ignore_ascii_case(k))
                    .unwrap_or_else(|| panic!("{name}: runner {i} key {k} missing"));
                assert!(same(item, &e.value), "{name}: runner {i} key {k} differs");
                keys += leaves(item);
            }
        }
    }
    assert!(keys > 200, "only {keys} keys compared");
}
