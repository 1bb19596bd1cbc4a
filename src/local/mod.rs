//! The local view: gitlab-runner's config.toml, read losslessly, and runnerform's ownership
//! record beside it.
//!
//! config.toml is parsed with `toml_edit`, so comments, key order, quoting and blank lines
//! survive every edit that runnerform makes; [`edit`] changes only declared keys, [`write`]
//! replaces the file atomically under a lock, and [`state`] keeps the link between declared
//! runners and GitLab where gitlab-runner's own rewrites of config.toml cannot destroy it.

pub mod edit;
pub mod edits;
pub mod expand;
pub mod journal;
pub mod layout;
pub mod state;
pub mod value;
pub mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml_edit::{DocumentMut, Item};

use crate::diag::{Loc, Problem, Sources};

pub use layout::{Facts, LocalDoc};

/// What was read from disk, and enough about the file to replace it faithfully.
#[derive(Debug, Clone)]
pub struct LocalView {
    pub path: PathBuf,
    /// The file, parsed where a plan can change it. Shared with the plan's
    /// [`crate::plan::document::PlannedDocument`]: it holds the text of every entry.
    pub doc: Arc<LocalDoc>,
}

impl LocalView {
    /// A view of `text` as if read from `path` (for tests and tools that hold the text).
    pub fn from_text(path: &Path, text: &str) -> Result<Self, Problem> {
        remember_secrets_in_text(text);
        Ok(LocalView {
            path: path.to_path_buf(),
            doc: Arc::new(LocalDoc::parse(path, text.to_string())?),
        })
    }

    pub fn exists(&self) -> bool {
        self.doc.text().is_some()
    }

    /// The file's bytes as read (`None` when it does not exist yet).
    pub fn original(&self) -> Option<&str> {
        self.doc.text()
    }

    pub fn text(&self) -> &str {
        self.doc.text().unwrap_or("")
    }

    /// The whole file as one document, for readers that want every entry parsed (import).
    pub fn document(&self) -> Result<DocumentMut, Problem> {
        match self.doc.text() {
            Some(t) => parse(&self.path, t),
            None => Ok(DocumentMut::new()),
        }
    }
}

/// gitlab-runner's own default: `/etc/gitlab-runner/config.toml` for root, otherwise
/// `~/.gitlab-runner/config.toml`.
pub fn default_path() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return PathBuf::from("/etc/gitlab-runner/config.toml");
    }
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join(".gitlab-runner/config.toml"),
        _ => PathBuf::from("config.toml"),
    }
}

/// Reads config.toml. A missing file is an empty document; a file that is not valid TOML is
/// a located diagnostic (with tokens masked in the excerpt).
pub fn read(path: &Path) -> Result<LocalView, Problem> {
    let doc = match read_text(path)? {
        None => LocalDoc::empty(),
        Some(t) => {
            // Before parsing: a syntax error's excerpt must already mask them.
            remember_secrets_in_text(&t);
            LocalDoc::parse(path, t)?
        }
    };
    Ok(LocalView {
        path: path.to_path_buf(),
        doc: Arc::new(doc),
    })
}

/// config.toml's bytes, unparsed (`None` when it does not exist).
pub fn read_text(path: &Path) -> Result<Option<String>, Problem> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink is not a missing file: writing would replace the link.
            write::target_of(path)?;
            Ok(None)
        }
        Err(e) => Err(Problem::error(
            "io",
            format!(
                "cannot read {}: {}",
                path.display(),
                crate::desired::load::io_reason(&e)
            ),
        )
        .help("run as a user that can read config.toml, or pass --config-toml PATH")),
    }
}

/// The last component of every config.toml key that holds a credential: runner tokens and
/// the secret settings ([`crate::desired::value::SECRET_KEYS`]).
pub(crate) fn is_secret_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("token")
        || crate::desired::value::SECRET_KEYS.iter().any(|k| {
            k.rsplit('.')
                .next()
                .is_some_and(|last| last.eq_ignore_ascii_case(key))
        })
}

fn remember_value(v: &str) {
    // `$VAR` is gitlab-runner's reference to its environment, not a secret.
    if crate::desired::render::env_reference(v).is_none() {
        crate::secrets::remember(v);
    }
}

/// Remembers every credential config.toml holds, so that it is masked wherever it shows up
/// (a legacy token has no prefix to be recognised by).
pub fn remember_secrets(table: &dyn toml_edit::TableLike) {
    for (k, item) in table.iter() {
        match item {
            Item::Value(toml_edit::Value::String(s)) if is_secret_key(k) => {
                remember_value(s.value())
            }
            Item::Value(toml_edit::Value::InlineTable(t)) => remember_secrets(t),
            Item::Table(t) => remember_secrets(t),
            Item::ArrayOfTables(a) => a.iter().for_each(|t| remember_secrets(t)),
            _ => {}
        }
    }
}

/// The same from text that may not parse: each `key = "value"` line whose key is a
/// credential's.
pub fn remember_secrets_in_text(text: &str) {
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().rsplit('.').next().unwrap_or_default();
        let key = key.trim_matches(|c| c == '"' || c == '\'' || c == ' ');
        if !is_secret_key(key) {
            continue;
        }
        let value = value.trim();
        let quote = match value.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => continue,
        };
        let inner = &value[1..];
        let end = inner.find(quote).unwrap_or(inner.len());
        remember_value(&inner[..end]);
    }
}

pub fn parse(path: &Path, text: &str) -> Result<DocumentMut, Problem> {
    text.parse::<DocumentMut>().map_err(|e| {
        let mut sources = Sources::default();
        let file = sources.add(path, path.display().to_string(), text.to_string());
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        Problem::error(
            "bad_toml",
            format!("config.toml is not valid TOML: {message}"),
        )
        .at(
            &sources,
            Loc {
                file,
                span: (span.start, span.end.saturating_sub(span.start)).into(),
            },
            "here",
        )
        .help(
            "runnerform changes nothing until the file parses; fix it by hand or restore \
                 it from a backup",
        )
    })
}
