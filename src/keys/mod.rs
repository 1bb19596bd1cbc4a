//! The inventory of config.toml keys that gitlab-runner knows.
//!
//! The table is gitlab-runner's own struct tags flattened into TSV (`config-keys.tsv`, carried
//! verbatim from the project's reference material). The KDL decoder, the validator and the
//! language reference in `schemas/` are all driven by this one table, so a key that
//! gitlab-runner accepts is reachable from KDL, and the reference cannot drift from the decoder.

mod enums;

use std::sync::LazyLock;

pub use enums::{ENUMS, allowed_values};

const TSV: &str = include_str!("config-keys.tsv");

/// The TOML shape of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Float,
    Bool,
    /// A Go `time.Duration`: a duration string (`"15m"`) or an integer count of nanoseconds.
    Duration,
    Datetime,
    /// A TOML array whose elements are all of one scalar kind.
    Array(Elem),
    /// A string or an array of strings (gitlab-runner's `StringOrArray`).
    StringOrArray,
    Table,
    /// A table whose keys are free-form (labels, feature flags, node selectors…).
    Map(Elem),
    /// An array of tables (`[[runners.docker.services]]`).
    TableArray,
}

/// Element kind of arrays and maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    String,
    Integer,
    Float,
    Bool,
    StringArray,
    /// Anything TOML can hold: plugin settings are passed through untouched.
    Any,
}

impl Kind {
    /// How the kind reads in diagnostics and in the language reference.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Float => "number",
            Kind::Bool => "boolean",
            Kind::Duration => "duration",
            Kind::Datetime => "datetime",
            Kind::Array(Elem::String) => "list of strings",
            Kind::Array(Elem::Integer) => "list of integers",
            Kind::Array(Elem::Float) => "list of numbers",
            Kind::Array(_) => "list",
            Kind::StringOrArray => "string or list of strings",
            Kind::Table => "table",
            Kind::Map(Elem::Bool) => "map of booleans",
            Kind::Map(Elem::Integer) => "map of integers",
            Kind::Map(Elem::StringArray) => "map of string lists",
            Kind::Map(Elem::Any) => "map of values",
            Kind::Map(_) => "map of strings",
            Kind::TableArray => "repeated table",
        }
    }
}

impl Elem {
    pub fn describe(self) -> &'static str {
        match self {
            Elem::String => "string",
            Elem::Integer => "integer",
            Elem::Float => "number",
            Elem::Bool => "boolean",
            Elem::StringArray => "list of strings",
            Elem::Any => "value",
        }
    }
}

/// One key of config.toml, with its sub-keys when it is a table.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    /// Dotted path from the top of config.toml (`runners.docker.image`).
    pub path: String,
    pub kind: Kind,
    pub go_type: String,
    /// The `gitlab-runner register` flag that sets the key, if any.
    pub register_flag: String,
    pub env_var: String,
    pub children: Vec<Key>,
}

impl Key {
    pub fn child(&self, name: &str) -> Option<&Key> {
        self.children.iter().find(|k| k.name == name)
    }

    /// Every key below this one, depth first, in table order.
    pub fn descendants(&self) -> Vec<&Key> {
        let mut out = Vec::new();
        fn walk<'a>(k: &'a Key, out: &mut Vec<&'a Key>) {
            for c in &k.children {
                out.push(c);
                walk(c, out);
            }
        }
        walk(self, &mut out);
        out
    }

    /// The path below `[[runners]]` (`docker.image`), or the global path for global keys.
    pub fn display_path(&self) -> &str {
        self.path.strip_prefix("runners.").unwrap_or(&self.path)
    }
}

/// The whole inventory: the top level of config.toml.
pub struct Inventory {
    pub root: Key,
    /// Number of keys in the table (the reference says 738 for gitlab-runner 19.4).
    pub len: usize,
}

impl Inventory {
    /// The top-level keys, without `runners`.
    pub fn globals(&self) -> impl Iterator<Item = &Key> {
        self.root.children.iter().filter(|k| k.name != "runners")
    }

    /// The `[[runners]]` entry.
    pub fn runner(&self) -> &Key {
        self.root
            .child("runners")
            .expect("the inventory has [[runners]]")
    }

    /// The gitlab-runner version the table was derived from, from its header line.
    pub fn source_note(&self) -> &'static str {
        TSV.lines().next().unwrap_or("").trim_start_matches("# ")
    }
}

pub fn inventory() -> &'static Inventory {
    static INV: LazyLock<Inventory> = LazyLock::new(parse);
    &INV
}

fn parse() -> Inventory {
    let mut root = Key {
        name: String::new(),
        path: String::new(),
        kind: Kind::Table,
        go_type: "Config".into(),
        register_flag: String::new(),
        env_var: String::new(),
        children: Vec::new(),
    };
    let mut len = 0;
    for line in TSV.lines() {
        if line.starts_with('#') || line.starts_with("toml_path") || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let (path, toml_type, go_type) = (cols[0], cols[1], cols.get(3).copied().unwrap_or(""));
        let kind = kind_of(toml_type, go_type);
        let key = Key {
            name: path.rsplit('.').next().unwrap_or(path).to_string(),
            path: path.to_string(),
            kind,
            go_type: go_type.to_string(),
            register_flag: cols.get(5).copied().unwrap_or("").to_string(),
            env_var: cols.get(6).copied().unwrap_or("").to_string(),
            children: Vec::new(),
        };
        insert(&mut root, path, key);
        len += 1;
    }
    Inventory { root, len }
}

/// Parents precede children in the table, so the parent of each key already exists.
fn insert(root: &mut Key, path: &str, key: Key) {
    let mut node = root;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        node = node
            .children
            .iter_mut()
            .find(|c| c.name == *part)
            .unwrap_or_else(|| panic!("config-keys.tsv: parent of {path} comes after it"));
    }
    node.children.push(key);
}

fn kind_of(toml_type: &str, go_type: &str) -> Kind {
    match toml_type {
        "string" => Kind::String,
        "integer" => Kind::Integer,
        "float" => Kind::Float,
        "bool" => Kind::Bool,
        "datetime" => Kind::Datetime,
        t if t.starts_with("duration") => Kind::Duration,
        "string|array" => Kind::StringOrArray,
        "table" => Kind::Table,
        "array-of-tables" => Kind::TableArray,
        "array" => Kind::Array(match go_type {
            "[]float64" => Elem::Float,
            "[]int64" | "[]int" => Elem::Integer,
            _ => Elem::String,
        }),
        "table(map)" => Kind::Map(match go_type {
            "map[string]bool" => Elem::Bool,
            "map[string][]string" => Elem::StringArray,
            "RequestRetryLimits" => Elem::Integer,
            "AutoscalerSettingsMap" => Elem::Any,
            _ => Elem::String,
        }),
        other => panic!("config-keys.tsv: unknown TOML type {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_table_is_in_the_tree() {
        let inv = inventory();
        assert_eq!(inv.len, 738);
        assert_eq!(inv.root.descendants().len(), inv.len);
    }

    #[test]
    fn kinds_come_from_the_table() {
        let r = inventory().runner();
        let docker = r.child("docker").unwrap();
        assert_eq!(docker.kind, Kind::Table);
        assert_eq!(docker.child("image").unwrap().kind, Kind::String);
        assert_eq!(
            docker.child("volumes").unwrap().kind,
            Kind::Array(Elem::String)
        );
        assert_eq!(docker.child("services").unwrap().kind, Kind::TableArray);
        assert_eq!(
            docker.child("pull_policy").unwrap().kind,
            Kind::StringOrArray
        );
        assert_eq!(
            r.child("feature_flags").unwrap().kind,
            Kind::Map(Elem::Bool)
        );
        assert_eq!(r.child("unhealthy_interval").unwrap().kind, Kind::Duration);
        let machine = r.child("machine").unwrap();
        assert_eq!(machine.child("IdleCount").unwrap().kind, Kind::Integer);
    }
}
