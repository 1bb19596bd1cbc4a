//! The apply journal: every effect on GitLab is recorded here, appended and synced, before
//! apply goes on, so that config.toml and the ownership record can be written once at the
//! end instead of after every token.
//!
//! It sits beside config.toml (`runnerform-journal.jsonl`, mode 0600: it holds runner tokens
//! until they are in config.toml) and is removed once config.toml and the record are written.
//! A journal found at the start of a later run means an apply stopped (a crash, a kill); it is
//! replayed into config.toml and the ownership record before anything is planned, so no token
//! is lost and no effect is repeated. Appends from runners applied in parallel share one sync
//! (group commit).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use toml_edit::{Item, Table};

use super::edits::Edits;
use super::layout::LocalDoc;
use super::state::{self, Intent, Managed, State};
use crate::diag::Problem;
use crate::local::edit::set_scalar;

pub const FILE_NAME: &str = "runnerform-journal.jsonl";

pub fn path_for(config_toml: &Path) -> PathBuf {
    config_toml
        .parent()
        .unwrap_or(Path::new("."))
        .join(FILE_NAME)
}

/// One effect, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// A registration is about to be sent, with its claim marker.
    Intent { intent: Intent },
    /// GitLab handed out credentials for a declared runner.
    Credentials {
        name: String,
        /// The entry they belong in: its GitLab id before this apply (0: none), its name.
        entry_id: i64,
        entry_name: Option<String>,
        url: String,
        id: i64,
        token: String,
        obtained_at: String,
        expires_at: Option<String>,
        scope: Option<String>,
        /// The registration this one replaces, deleted on GitLab by a later step.
        replaces: Option<i64>,
    },
    /// A runner was deleted on GitLab.
    Deleted { name: String, id: Option<i64> },
}

struct Inner {
    buffer: Vec<u8>,
    /// Records appended / records known to be on disk.
    appended: u64,
    flushing: bool,
    failed: Option<String>,
}

/// An open journal. Appends wait until their record is on disk.
pub struct Journal {
    path: PathBuf,
    file: Arc<std::fs::File>,
    inner: Mutex<Inner>,
    durable: tokio::sync::watch::Sender<u64>,
    /// Bytes written, for the benchmark's accounting.
    pub bytes: std::sync::atomic::AtomicU64,
}

impl Journal {
    pub fn create(config_toml: &Path) -> Result<Journal, Problem> {
        let path = path_for(config_toml);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io(&path, "create", &e))?;
        Ok(Journal {
            path,
            file: Arc::new(file),
            inner: Mutex::new(Inner {
                buffer: Vec::new(),
                appended: 0,
                flushing: false,
                failed: None,
            }),
            durable: tokio::sync::watch::channel(0).0,
            bytes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Appends a record and returns once it is synced to disk. Callers applying in parallel
    /// share syncs: whoever finds none running writes everything queued and syncs once.
    pub async fn append(&self, record: &Record) -> Result<(), Problem> {
        let mut line = serde_json::to_vec(record).expect("records serialise");
        line.push(b'\n');
        let mut seen = self.durable.subscribe();
        let mine = {
            let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            g.buffer.extend_from_slice(&line);
            g.appended += 1;
            g.appended
        };
        loop {
            if *seen.borrow_and_update() >= mine {
                return Ok(());
            }
            let batch = {
                let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(why) = &g.failed {
                    return Err(io_text(&self.path, why));
                }
                if g.flushing {
                    None
                } else {
                    g.flushing = true;
                    Some((std::mem::take(&mut g.buffer), g.appended))
                }
            };
            match batch {
                Some((bytes, upto)) => {
                    let file = self.file.clone();
                    let n = bytes.len() as u64;
                    let done = tokio::task::spawn_blocking(move || {
                        (&*file).write_all(&bytes)?;
                        file.sync_data()
                    })
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(|r| r);
                    let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                    g.flushing = false;
                    match done {
                        Ok(()) => {
                            self.bytes
                                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                            drop(g);
                            self.durable.send_modify(|d| *d = (*d).max(upto));
                        }
                        Err(e) => {
                            g.failed = Some(e.to_string());
                            drop(g);
                            // Wake the others so that they see the failure.
                            self.durable.send_modify(|_| {});
                            return Err(io(&self.path, "write", &e));
                        }
                    }
                }
                None => {
                    let _ = seen.changed().await;
                }
            }
        }
    }

    /// Everything is in config.toml and the ownership record: the journal goes.
    pub fn finish(self) -> Result<(), Problem> {
        std::fs::remove_file(&self.path).map_err(|e| io(&self.path, "remove", &e))
    }
}

fn io(path: &Path, what: &str, e: &std::io::Error) -> Problem {
    io_text(
        path,
        &format!("cannot {what} it: {}", crate::desired::load::io_reason(e)),
    )
}

fn io_text(path: &Path, why: &str) -> Problem {
    Problem::error(
        "journal",
        format!("the apply journal {}: {why}", path.display()),
    )
    .help(
        "nothing more is sent to GitLab; what GitLab already did is recorded, and the next \
         runnerform run finishes writing it",
    )
}

/// What a replay did, for the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub records: usize,
    pub credentials: usize,
    pub deletes: usize,
}

/// Reads a journal's records; a torn last line (the process died while appending) is
/// dropped: what it held was never acted on (its sync had not returned).
pub fn read(config_toml: &Path) -> Result<Option<Vec<Record>>, Problem> {
    let path = path_for(config_toml);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path, "read", &e)),
    };
    let mut records = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => records.push(r),
            Err(_) => break,
        }
    }
    Ok(Some(records))
}

/// Finishes what an apply that stopped left in its journal: writes the credentials it
/// recorded into config.toml and the ownership record, then removes the journal and any
/// temporary file a crash left. The caller holds the lock.
pub fn recover(config_toml: &Path) -> Result<Option<Recovered>, Problem> {
    clean_temporary_files(config_toml);
    let Some(records) = read(config_toml)? else {
        return Ok(None);
    };
    let local = super::read(config_toml)?;
    let (mut st, _) = state::read(config_toml)?;
    let mut doc = Entries {
        local: &local.doc,
        edits: Edits::new(&local.doc),
    };
    let mut out = Recovered {
        records: records.len(),
        ..Recovered::default()
    };
    for r in &records {
        replay(r, &mut doc, &mut st, &mut out);
    }
    let text = super::write::keep_line_endings(local.text(), doc.edits.render(&local.doc));
    if Some(text.as_str()) != local.original() {
        super::write::replace(config_toml, text.as_bytes(), 0o600)?;
    }
    super::write::replace(
        &state::path_for(config_toml),
        st.to_json().as_bytes(),
        0o600,
    )?;
    let path = path_for(config_toml);
    std::fs::remove_file(&path).map_err(|e| io(&path, "remove", &e))?;
    Ok(Some(out))
}

fn replay(r: &Record, doc: &mut Entries, st: &mut State, out: &mut Recovered) {
    match r {
        Record::Intent { intent } => {
            st.pending_creates.retain(|i| i.name != intent.name);
            st.pending_creates.push(intent.clone());
        }
        Record::Credentials {
            name,
            entry_id,
            entry_name,
            url,
            id,
            token,
            obtained_at,
            expires_at,
            scope,
            replaces,
        } => {
            out.credentials += 1;
            let at = (*entry_id > 0)
                .then(|| doc.position(|_, i| i == *entry_id))
                .flatten()
                .or_else(|| {
                    entry_name
                        .as_deref()
                        .and_then(|n| doc.position(|name, _| name == Some(n)))
                })
                .or_else(|| doc.position(|n, _| n == Some(name)));
            let expires = expires_at
                .as_deref()
                .unwrap_or("0001-01-01T00:00:00Z")
                .parse::<toml_edit::Datetime>()
                .ok();
            let obtained = obtained_at.parse::<toml_edit::Datetime>().ok();
            let fill = |t: &mut toml_edit::Table| {
                set_scalar(t, "id", (*id).into());
                set_scalar(t, "token", token.as_str().into());
                if let Some(o) = obtained {
                    set_scalar(t, "token_obtained_at", o.into());
                }
                if let Some(x) = expires {
                    set_scalar(t, "token_expires_at", x.into());
                }
            };
            match at {
                Some(at) => fill(doc.table_mut(at)),
                None => {
                    // The entry was never written: a minimal one; the next plan adds the
                    // declared settings.
                    let mut t = toml_edit::Table::new();
                    t.decor_mut().set_prefix("\n");
                    t.insert("name", toml_edit::value(name.as_str()));
                    t.insert("url", toml_edit::value(url.as_str()));
                    fill(&mut t);
                    for (_, v) in t.iter_mut() {
                        if let Some(v) = v.as_value_mut() {
                            v.decor_mut().set_prefix(" ");
                        }
                    }
                    let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
                    for k in keys {
                        if let Some(mut key) = t.key_mut(&k) {
                            key.leaf_decor_mut().set_prefix("  ");
                        }
                    }
                    doc.edits.appended.push(t);
                }
            }
            st.runners.retain(|m| &m.name != name && m.id != *id);
            st.pending_creates.retain(|i| &i.name != name);
            st.runners.push(Managed {
                name: name.clone(),
                url: url.clone(),
                id: *id,
                scope: scope.clone(),
            });
            if let Some(old) = replaces.filter(|old| old != id && *old > 0)
                && !st.pending_deletes.iter().any(|m| m.id == old)
            {
                st.pending_deletes.push(Managed {
                    name: name.clone(),
                    url: url.clone(),
                    id: old,
                    scope: None,
                });
            }
        }
        Record::Deleted { name, id } => {
            out.deletes += 1;
            st.runners
                .retain(|m| !(&m.name == name && id.is_none_or(|i| m.id == i)));
            st.pending_deletes
                .retain(|m| !(Some(m.id) == *id || (id.is_none() && &m.name == name)));
            let hit = doc.position(|n, i| match id {
                Some(id) => i == *id,
                None => n == Some(name.as_str()),
            });
            if let Some(at) = hit {
                doc.remove(at);
            }
        }
    }
}

/// The entries as the replay has them so far: the original ones (as read, edited or removed)
/// and the ones it added.
struct Entries<'a> {
    local: &'a LocalDoc,
    edits: Edits,
}

#[derive(Clone, Copy)]
enum At {
    Original(usize),
    New(usize),
}

impl Entries<'_> {
    /// The first entry whose name and id satisfy `f`.
    fn position(&self, f: impl Fn(Option<&str>, i64) -> bool) -> Option<At> {
        fn of(t: &Table) -> (Option<&str>, i64) {
            (
                t.get("name").and_then(Item::as_str),
                t.get("id").and_then(Item::as_integer).unwrap_or(0),
            )
        }
        let original = (0..self.local.len())
            .filter(|i| !self.edits.removed[*i])
            .find(|i| match self.edits.edited_table(*i) {
                Some(t) => {
                    let (name, id) = of(&t);
                    f(name, id)
                }
                None => {
                    let facts = &self.local.facts()[*i];
                    f(facts.name.as_deref(), facts.id)
                }
            })
            .map(At::Original);
        original.or_else(|| {
            self.edits
                .appended
                .iter()
                .position(|t| {
                    let (name, id) = of(t);
                    f(name, id)
                })
                .map(At::New)
        })
    }

    fn table_mut(&mut self, at: At) -> &mut Table {
        match at {
            At::Original(i) => self.edits.entry_mut(self.local, i),
            At::New(i) => &mut self.edits.appended[i],
        }
    }

    fn remove(&mut self, at: At) {
        match at {
            At::Original(i) => self.edits.removed[i] = true,
            At::New(i) => {
                self.edits.appended.remove(i);
            }
        }
    }
}

/// Removes the temporary files of an atomic replace that a crash interrupted (they may hold
/// tokens). Only runnerform's own names are touched.
pub fn clean_temporary_files(config_toml: &Path) {
    let dir = config_toml.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = format!(".runnerform-{}.tmp", std::process::id());
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.')
            && name.contains(".runnerform-")
            && name.ends_with(".tmp")
            && !name.ends_with(&me)
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_writes_credentials_into_the_entry_or_a_new_one_and_records_ownership() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(
            &cfg,
            "concurrent = 1\n\n[[runners]]\n  name = \"a\"\n  url = \"http://g\"\n  id = 1\n  token = \"old\"\n",
        )
        .unwrap();
        let creds = |name: &str, entry_id: i64, id: i64| Record::Credentials {
            name: name.into(),
            entry_id,
            entry_name: None,
            url: "http://g".into(),
            id,
            token: format!("glrt-new-{id}"),
            obtained_at: "2026-01-01T00:00:00Z".into(),
            expires_at: None,
            scope: Some("instance".into()),
            replaces: (entry_id > 0).then_some(entry_id),
        };
        let lines: Vec<String> = [creds("a", 1, 7), creds("b", 0, 8)]
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        // A torn last line is dropped.
        std::fs::write(
            path_for(&cfg),
            format!("{}\n{}\n{{\"record\":\"cred", lines[0], lines[1]),
        )
        .unwrap();
        std::fs::write(dir.path().join(".config.toml.runnerform-1.tmp"), "x").unwrap();
        let got = recover(&cfg).unwrap().unwrap();
        assert_eq!(got.credentials, 2);
        let text = std::fs::read_to_string(&cfg).unwrap();
        let doc: toml_edit::DocumentMut = text.parse().unwrap();
        assert_eq!(doc["runners"][0]["id"].as_integer(), Some(7));
        assert_eq!(doc["runners"][0]["token"].as_str(), Some("glrt-new-7"));
        assert_eq!(doc["runners"][1]["name"].as_str(), Some("b"));
        assert_eq!(doc["runners"][1]["id"].as_integer(), Some(8));
        let (st, _) = state::read(&cfg).unwrap();
        assert_eq!(st.runners.len(), 2);
        assert_eq!(
            st.pending_deletes.len(),
            1,
            "the replaced registration is deleted later"
        );
        assert!(!path_for(&cfg).exists());
        assert!(!dir.path().join(".config.toml.runnerform-1.tmp").exists());
        assert!(recover(&cfg).unwrap().is_none());
    }
}
