//! Changing config.toml without losing a byte that no declared change owns.
//!
//! Only declared keys are touched. A changed value keeps its decor (the spaces around it and a
//! trailing comment); a new key or table takes the indentation of its neighbours, or
//! gitlab-runner's own layout (two spaces per level) when it has none.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, TableLike, Value as T};

use super::value::{Secrets, lookup, same, show_declared, show_item, to_toml};
use crate::desired::{self, Value};
use crate::keys::{Key, Kind};

/// One key-level difference, as a reviewer reads it: `~ docker.image: "a" -> "b"`.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct KeyChange {
    /// Dotted path below the runner entry (or below the top level, for globals).
    pub path: String,
    /// The value in config.toml before, in TOML syntax; absent when the key is new.
    pub old: Option<String>,
    /// The value after, in TOML syntax; absent when the key is removed. Secrets are shown as
    /// `(secret from env VAR)`.
    pub new: Option<String>,
}

pub struct Editor<'a> {
    pub secrets: &'a Secrets,
    /// One level of indentation in this file.
    unit: String,
    /// The indentation of the keys of a `[[runners]]` entry in this file.
    runner_indent: String,
    pub changes: Vec<KeyChange>,
    /// Keys whose secret did not resolve and that keep the value config.toml holds: what
    /// the plan says of them.
    pub kept: Vec<String>,
    /// Why a key could not be written: its secret did not resolve and config.toml has no
    /// value to keep.
    pub missing: Vec<crate::diag::Problem>,
    /// Where the notes of the table being edited start in `kept` (globals' notes stay
    /// before it: the warning at their reference says it).
    kept_from: usize,
}

impl<'a> Editor<'a> {
    /// An editor for `doc`, with the indentation it uses.
    pub fn new(doc: &DocumentMut, secrets: &'a Secrets) -> Self {
        let unit = infer_unit(doc);
        let runner_indent = doc
            .get("runners")
            .and_then(Item::as_array_of_tables)
            .and_then(|a| a.iter().find_map(key_indent))
            .unwrap_or_else(|| unit.clone());
        Self::with_indents(unit, runner_indent, secrets)
    }

    /// An editor for a config.toml read by [`crate::local::read`].
    pub fn for_file(local: &crate::local::layout::LocalDoc, secrets: &'a Secrets) -> Self {
        Self::with_indents(local.unit.clone(), local.runner_indent.clone(), secrets)
    }

    fn with_indents(unit: String, runner_indent: String, secrets: &'a Secrets) -> Self {
        Editor {
            secrets,
            unit,
            runner_indent,
            changes: Vec::new(),
            kept: Vec::new(),
            missing: Vec::new(),
            kept_from: 0,
        }
    }

    pub fn take_changes(&mut self) -> Vec<KeyChange> {
        std::mem::take(&mut self.changes)
    }

    /// `reason` with what [`Editor::kept`] recorded since the last call, for one runner.
    pub fn reason_with_kept(&mut self, reason: String) -> String {
        if self.kept.len() <= self.kept_from {
            return reason;
        }
        let kept = self.kept.split_off(self.kept_from).join("; ");
        format!("{reason} (warning: {kept})")
    }

    /// The first key that could not be written for want of its secret: planning stops there.
    pub fn check_missing(&self) -> Result<(), crate::diag::Problem> {
        match self.missing.first() {
            Some(p) => Err(p.clone()),
            None => Ok(()),
        }
    }

    /// The indentation of keys in a `[[runners]]` entry of this file.
    pub fn runner_key_indent(&self) -> &str {
        &self.runner_indent
    }

    /// Sets the declared keys of `declared` in `table`, recursing into tables and maps.
    /// `indent` is the indentation of keys in `table`; `spec` is its inventory entry.
    pub fn apply(
        &mut self,
        table: &mut dyn TableLike,
        indent: &str,
        declared: &desired::Table,
        spec: Option<&Key>,
        prefix: &str,
    ) {
        if prefix.is_empty() {
            self.kept_from = self.kept.len();
        }
        for e in &declared.entries {
            let key_spec = spec.and_then(|k| k.child(&e.key));
            let path = format!("{prefix}{}", e.key);
            self.apply_entry(table, indent, &e.key, &e.value, key_spec, &path);
        }
    }

    fn apply_entry(
        &mut self,
        table: &mut dyn TableLike,
        indent: &str,
        key: &str,
        value: &Value,
        spec: Option<&Key>,
        path: &str,
    ) {
        let existing = lookup(table, key).map(|(k, _)| k);
        let Some(actual) = existing else {
            self.insert_new(table, indent, key, value, path);
            return;
        };
        let item = table.get_mut(&actual).expect("key was just found");
        if let Value::Table(sub) = value
            && spec.is_none_or(|k| !matches!(k.kind, Kind::TableArray))
            && let Some(sub_table) = item.as_table_like_mut()
        {
            let sub_indent =
                key_indent_like(sub_table).unwrap_or_else(|| format!("{indent}{}", self.unit));
            self.apply(sub_table, &sub_indent, sub, spec, &format!("{path}."));
            return;
        }
        if same(item, value, spec, self.secrets) {
            return;
        }
        if let Some(p) = self.secrets.unresolved_in(value) {
            if matches!(value, Value::Secret(_)) {
                self.kept.push(format!(
                    "`{path}` keeps the value config.toml holds: {}",
                    p.message
                ));
            } else {
                self.missing.push(p.clone());
            }
            return;
        }
        let old = show_item(item);
        let new_item = self.styled(value, indent);
        match (item, new_item) {
            (Item::Value(old_v), Item::Value(mut new_v)) => {
                *new_v.decor_mut() = old_v.decor().clone();
                *old_v = new_v;
            }
            (slot, new_item) => *slot = new_item,
        }
        self.changes.push(KeyChange {
            path: path.to_string(),
            old: Some(old),
            new: Some(show_declared(value, self.secrets)),
        });
    }

    fn insert_new(
        &mut self,
        table: &mut dyn TableLike,
        indent: &str,
        key: &str,
        value: &Value,
        path: &str,
    ) {
        if let Some(p) = self.secrets.unresolved_in(value) {
            self.missing.push(p.clone());
            return;
        }
        let item = self.styled(value, indent);
        let is_value = item.is_value();
        self.record_added(value, path);
        table.insert(key, item);
        // A table's key decor sits inside its `[header]`; only plain keys are indented.
        if is_value && let Some(mut k) = table.key_mut(key) {
            k.leaf_decor_mut().set_prefix(indent);
        }
    }

    fn record_added(&mut self, value: &Value, path: &str) {
        match value {
            Value::Table(t) => {
                for e in &t.entries {
                    self.record_added(&e.value, &format!("{path}.{}", e.key));
                }
            }
            v => self.changes.push(KeyChange {
                path: path.to_string(),
                old: None,
                new: Some(show_declared(v, self.secrets)),
            }),
        }
    }

    /// The TOML item for a declared value, laid out for a table whose keys are at `indent`.
    fn styled(&self, value: &Value, indent: &str) -> Item {
        let mut item = to_toml(value, self.secrets);
        match &mut item {
            Item::Table(t) => self.style_table(t, indent),
            Item::ArrayOfTables(a) => self.style_array(a, indent),
            _ => {}
        }
        item
    }

    /// A new sub-table: its header at the parent's key indentation, its keys one level in.
    fn style_table(&self, t: &mut Table, header_indent: &str) {
        t.decor_mut().set_prefix(header_indent);
        let inner = format!("{header_indent}{}", self.unit);
        style_keys(t, &inner);
        for (_, item) in t.iter_mut() {
            match item {
                Item::Table(sub) => self.style_table(sub, &inner),
                Item::ArrayOfTables(a) => self.style_array(a, &inner),
                _ => {}
            }
        }
    }

    fn style_array(&self, a: &mut ArrayOfTables, header_indent: &str) {
        for t in a.iter_mut() {
            self.style_table(t, header_indent);
        }
    }

    /// Appends a new `[[runners]]` entry laid out as gitlab-runner writes one: identity and
    /// credentials first, then the declared settings.
    /// A new `[[runners]]` entry: `identity` first, then the declared settings, laid out as
    /// gitlab-runner writes an entry.
    pub fn new_runner(
        &mut self,
        identity: &[(&str, Item)],
        settings: &desired::Table,
        spec: &Key,
    ) -> Table {
        let indent = self.runner_indent.clone();
        let mut t = Table::new();
        t.decor_mut().set_prefix("\n");
        for (k, v) in identity {
            t.insert(k, v.clone());
        }
        style_keys(&mut t, &indent);
        let mut ordered = settings.clone();
        // gitlab-runner writes the executor before the other settings.
        if let Some(pos) = ordered.entries.iter().position(|e| e.key == "executor") {
            let e = ordered.entries.remove(pos);
            ordered.entries.insert(0, e);
        }
        self.apply(&mut t, &indent, &ordered, Some(spec), "");
        t
    }
}

fn style_keys(t: &mut Table, indent: &str) {
    let keys: Vec<String> = t
        .iter()
        .filter(|(_, i)| i.is_value())
        .map(|(k, _)| k.to_string())
        .collect();
    for k in keys {
        if let Some(mut key) = t.key_mut(&k) {
            key.leaf_decor_mut().set_prefix(indent);
        }
    }
}

/// The indentation of the first plain key of a table, if it has one.
pub(crate) fn key_indent(t: &Table) -> Option<String> {
    key_indent_like(t)
}

fn key_indent_like(t: &dyn TableLike) -> Option<String> {
    let (k, _) = t.iter().find(|(_, i)| i.is_value())?;
    let key = t.key(k)?;
    let prefix = key.leaf_decor().prefix()?.as_str()?.to_string();
    Some(
        prefix
            .rsplit('\n')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| *c == ' ' || *c == '\t')
            .collect(),
    )
}

/// One indentation level, learned from the file: the difference between a table header's
/// indentation and its keys'. gitlab-runner's own is two spaces.
fn infer_unit(doc: &DocumentMut) -> String {
    indent_unit(doc.as_table()).unwrap_or_else(|| "  ".to_string())
}

/// The same, from the tables below `root`; `None` when none tells.
pub(crate) fn indent_unit(root: &Table) -> Option<String> {
    fn header_indent(t: &Table) -> String {
        t.decor()
            .prefix()
            .and_then(|p| p.as_str())
            .and_then(|p| p.rsplit('\n').next())
            .unwrap_or("")
            .to_string()
    }
    fn search(t: &Table) -> Option<String> {
        for (_, item) in t.iter() {
            let tables: Vec<&Table> = match item {
                Item::Table(sub) => vec![sub],
                Item::ArrayOfTables(a) => a.iter().collect(),
                _ => continue,
            };
            for sub in tables {
                let h = header_indent(sub);
                if let Some(k) = key_indent(sub)
                    && k.len() > h.len()
                    && k.starts_with(&h)
                {
                    return Some(k[h.len()..].to_string());
                }
                if let Some(u) = search(sub) {
                    return Some(u);
                }
            }
        }
        None
    }
    search(root)
}

/// Sets a plain key of `table`, keeping the decor (indentation, trailing comment) of the value
/// it replaces, or the indentation of the table's keys when it is new.
pub fn set_scalar(table: &mut Table, key: &str, value: T) {
    if let Some(Item::Value(old)) = table.get_mut(key) {
        let decor = old.decor().clone();
        *old = value;
        *old.decor_mut() = decor;
        return;
    }
    let indent = key_indent(table).unwrap_or_default();
    table.insert(key, Item::Value(value));
    if let Some(mut k) = table.key_mut(key) {
        k.leaf_decor_mut().set_prefix(indent);
    }
}

/// A TOML value shown in a plan (for identity keys that are not declared settings).
pub fn shown(v: &T) -> String {
    show_item(&Item::Value(v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{Entry, Table as DTable};
    use crate::diag::{FileId, Loc};

    fn entry(key: &str, value: Value) -> Entry {
        Entry {
            key: key.into(),
            value,
            loc: Loc {
                file: FileId(0),
                span: (0, 0).into(),
            },
        }
    }

    #[test]
    fn a_new_entry_looks_like_gitlab_runner_wrote_it() {
        let mut doc: DocumentMut =
            "concurrent = 1\n\n[[runners]]\n  name = \"a\"\n  executor = \"shell\"\n"
                .parse()
                .unwrap();
        let secrets = Secrets::default();
        let mut ed = Editor::new(&doc, &secrets);
        let settings = DTable {
            entries: vec![
                entry(
                    "docker",
                    Value::Table(DTable {
                        entries: vec![entry("image", Value::String("alpine:3".into()))],
                    }),
                ),
                entry("executor", Value::String("docker".into())),
            ],
        };
        let identity = [
            ("name", toml_edit::value("b")),
            ("url", toml_edit::value("https://gitlab.example.com")),
            ("id", toml_edit::value(7)),
        ];
        let t = ed.new_runner(&identity, &settings, crate::keys::inventory().runner());
        doc["runners"].as_array_of_tables_mut().unwrap().push(t);
        assert_eq!(
            doc.to_string(),
            "concurrent = 1\n\n[[runners]]\n  name = \"a\"\n  executor = \"shell\"\n\n\
             [[runners]]\n  name = \"b\"\n  url = \"https://gitlab.example.com\"\n  id = 7\n  \
             executor = \"docker\"\n  [runners.docker]\n    image = \"alpine:3\"\n"
        );
    }

    #[test]
    fn changed_values_keep_their_comment_and_new_keys_their_neighbours_indent() {
        let mut doc: DocumentMut = "[[runners]]\n\tname = \"a\"\n\tlimit = 2 # why two\n"
            .parse()
            .unwrap();
        let secrets = Secrets::default();
        let mut ed = Editor::new(&doc, &secrets);
        let declared = DTable {
            entries: vec![
                entry("limit", Value::Integer(4)),
                entry("shell", Value::String("bash".into())),
            ],
        };
        let t = doc["runners"][0].as_table_mut().unwrap();
        ed.apply(
            t,
            "\t",
            &declared,
            Some(crate::keys::inventory().runner()),
            "",
        );
        assert_eq!(
            doc.to_string(),
            "[[runners]]\n\tname = \"a\"\n\tlimit = 4 # why two\n\tshell = \"bash\"\n"
        );
        assert_eq!(ed.changes.len(), 2);
    }
}
