//! Replacing files safely: a lock that serialises runnerform processes, and atomic
//! replacement (temp file in the same directory, fsync, rename, fsync of the directory) that
//! keeps the file's mode and owner.
//!
//! gitlab-runner itself writes config.toml in place, so a crash half-way leaves a truncated
//! file; runnerform never does.
//!
//! Files as they are found are kept so: a symlinked config.toml (configuration management,
//! containers) has its target replaced and the link kept, and a file's line endings (CRLF,
//! or a mix) survive an edit ([`keep_line_endings`]). A file that will hold credentials is
//! made private (0600, as gitlab-runner writes it) whatever its mode was.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::diag::Problem;

pub const LOCK_NAME: &str = ".runnerform.lock";

/// Held while applying; released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

fn io_problem(what: &str, path: &Path, e: &std::io::Error) -> Problem {
    Problem::error(
        "io",
        format!(
            "cannot {what} {}: {}",
            path.display(),
            crate::desired::load::io_reason(e)
        ),
    )
}

/// Creates the directory of config.toml (mode 0700, as gitlab-runner does) when missing.
pub fn ensure_dir(dir: &Path) -> Result<(), Problem> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_problem("create directory", dir, &e))
}

/// Takes the lock beside config.toml, waiting up to `wait` for another runnerform process to
/// finish. `on_wait` runs once, when the lock is found taken.
pub fn lock(config_toml: &Path, wait: Duration, on_wait: impl FnOnce()) -> Result<Lock, Problem> {
    let dir = config_toml.parent().unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let path = dir.join(LOCK_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_problem("open lock file", &path, &e))?;
    let start = Instant::now();
    let mut on_wait = Some(on_wait);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file, path }),
            Err(TryLockError::WouldBlock) => {
                if let Some(f) = on_wait.take() {
                    f();
                }
                if start.elapsed() >= wait {
                    return Err(Problem::error(
                        "locked",
                        format!(
                            "another runnerform is applying to {} (it holds {})",
                            config_toml.display(),
                            path.display()
                        ),
                    )
                    .help("wait for it to finish and run again; nothing was changed"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::Error(e)) => return Err(io_problem("lock", &path, &e)),
        }
    }
}

/// The file a write to `path` replaces: `path` itself, or the final target of a symlink.
/// A link whose target does not exist is an error that names the target: writing a regular
/// file in the link's place would leave whatever reads the target with the old content.
pub fn target_of(path: &Path) -> Result<PathBuf, Problem> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|_| {
            let target = std::fs::read_link(path)
                .map_or_else(|_| "(unreadable)".to_string(), |t| t.display().to_string());
            Problem::error(
                "dangling_symlink",
                format!(
                    "{} is a symbolic link to {target}, which does not exist",
                    path.display()
                ),
            )
            .help(
                "create the link's target (or its directory), or remove the link so that \
                 runnerform writes a regular file; nothing was changed",
            )
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// Whether `contents` holds a credential (a runner token or a secret setting), in which case
/// the file must not be readable by others.
pub fn holds_credentials(contents: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(contents) else {
        return false;
    };
    text.lines().any(|line| {
        let Some((key, value)) = line.split_once('=') else {
            return false;
        };
        let key = key.trim().rsplit('.').next().unwrap_or_default();
        let key = key.trim_matches(|c| c == '"' || c == '\'' || c == ' ');
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        super::is_secret_key(key) && !value.is_empty() && !value.starts_with('$')
    })
}

/// The mode a file gets when `contents` replace it: its own, made private when it will hold
/// credentials. `None` when that is the mode it has (or it is new).
pub fn tightened_mode(path: &Path, contents: &[u8]) -> Option<(u32, u32)> {
    let old = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    let new = old & !0o077;
    (old != new && holds_credentials(contents)).then_some((old, new))
}

/// What a plan's diff says before the text when writing `contents` makes `path` private, in
/// git's words (`old mode` / `new mode`); empty otherwise.
pub fn mode_lines(path: &Path, contents: &str) -> String {
    match tightened_mode(path, contents.as_bytes()) {
        Some((old, new)) => format!(
            "old mode {old:04o}\nnew mode {new:04o} (config.toml will hold credentials: made \
             private, as gitlab-runner writes it)\n"
        ),
        None => String::new(),
    }
}

/// Like [`replace`], and the file ends up 0600 whatever mode it had: for files that describe
/// a host's credentials even with them masked (saved plans).
pub fn replace_private(path: &Path, contents: &[u8]) -> Result<(), Problem> {
    let target = target_of(path)?;
    // The old file is made private first: `replace` then keeps that mode.
    if target.is_file() {
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_problem("set the mode of", &target, &e))?;
    }
    replace(path, contents, 0o600)
}

/// Atomically replaces `path` with `contents`. An existing file keeps its mode and owner
/// (made private when it will hold credentials); a new one gets `new_mode`. A symlink is
/// kept and its target replaced.
pub fn replace(path: &Path, contents: &[u8], new_mode: u32) -> Result<(), Problem> {
    let path = &target_of(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let existing = std::fs::metadata(path).ok();
    let name = path
        .file_name()
        .map_or_else(|| "config.toml".into(), |n| n.to_string_lossy().to_string());
    let tmp = dir.join(format!(".{name}.runnerform-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_problem("create", &tmp, &e))?;
        f.write_all(contents)
            .map_err(|e| io_problem("write", &tmp, &e))?;
        let mut mode = existing
            .as_ref()
            .map_or(new_mode, |m| m.permissions().mode() & 0o7777);
        if holds_credentials(contents) {
            mode &= !0o077;
        }
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_problem("set the mode of", &tmp, &e))?;
        if let Some(m) = &existing {
            // Only root can give a file away; for anyone else the owner is already theirs.
            if (m.uid(), m.gid()) != (current_uid(), current_gid()) {
                std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))
                    .map_err(|e| io_problem("keep the owner of", path, &e))?;
            }
        }
        f.sync_all().map_err(|e| io_problem("sync", &tmp, &e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_problem("replace", path, &e))?;
        if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `new` (written by `toml_edit`, which ends every line with `\n`) with the line endings of
/// `old`: all CRLF when `old` is all CRLF; in a mixed file, each line that `old` had keeps its
/// own ending and a new line takes the ending of the line before it.
pub fn keep_line_endings(old: &str, new: String) -> String {
    if !old.contains("\r\n") || new.contains('\r') {
        return new;
    }
    let new = new.as_str();
    let lf_only = old.matches('\n').count() != old.matches("\r\n").count();
    if !lf_only {
        return new.replace('\n', "\r\n");
    }
    let old_lines: Vec<(&str, bool)> = old
        .split_inclusive('\n')
        .map(|l| match l.strip_suffix("\r\n") {
            Some(body) => (body, true),
            None => (l.strip_suffix('\n').unwrap_or(l), false),
        })
        .collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    let old_bodies: Vec<&str> = old_lines.iter().map(|(b, _)| *b).collect();
    let new_bodies: Vec<&str> = new_lines
        .iter()
        .map(|l| l.strip_suffix('\n').unwrap_or(l))
        .collect();
    let diff = similar::capture_diff_slices(similar::Algorithm::Myers, &old_bodies, &new_bodies);
    let mut out = String::with_capacity(new.len() + new.len() / 32);
    let mut crlf = false;
    for op in diff {
        for change in op.iter_changes(&old_bodies, &new_bodies) {
            match change.tag() {
                similar::ChangeTag::Delete => {
                    crlf = old_lines[change.old_index().unwrap_or(0)].1;
                }
                tag => {
                    if tag == similar::ChangeTag::Equal {
                        crlf = old_lines[change.old_index().unwrap_or(0)].1;
                    }
                    let i = change.new_index().unwrap_or(0);
                    let line = new_lines[i];
                    match line.strip_suffix('\n') {
                        Some(body) if crlf => {
                            out.push_str(body);
                            out.push_str("\r\n");
                        }
                        _ => out.push_str(line),
                    }
                }
            }
        }
    }
    out
}

fn current_uid() -> u32 {
    // SAFETY: no preconditions, cannot fail.
    unsafe { libc::geteuid() }
}

fn current_gid() -> u32 {
    // SAFETY: no preconditions, cannot fail.
    unsafe { libc::getegid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_mode_and_creates_new_files_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/config.toml");
        replace(&p, b"a = 1\n", 0o600).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let d = std::fs::metadata(p.parent().unwrap()).unwrap();
        assert_eq!(d.permissions().mode() & 0o777, 0o700);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace(&p, b"a = 2\n", 0o600).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a = 2\n");
        let leftovers = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temp file left behind");
    }

    #[test]
    fn line_endings_are_kept_line_by_line() {
        assert_eq!(
            keep_line_endings("a\r\nb\r\n", "a\nc\nb\n".to_string()),
            "a\r\nc\r\nb\r\n"
        );
        assert_eq!(keep_line_endings("a\nb\n", "a\nc\n".to_string()), "a\nc\n");
        let mixed = "a = 1\r\nb = 2\nc = 3\r\n";
        let new = "a = 1\nb = 5\nc = 3\nd = 4\n";
        assert_eq!(
            keep_line_endings(mixed, new.to_string()),
            "a = 1\r\nb = 5\nc = 3\r\nd = 4\r\n"
        );
        let new = "a = 1\nb = 2\nx = 9\nc = 3\n";
        assert_eq!(
            keep_line_endings(mixed, new.to_string()),
            "a = 1\r\nb = 2\nx = 9\nc = 3\r\n"
        );
    }

    #[test]
    fn a_symlink_is_kept_and_its_target_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        std::fs::write(&real, "a = 1\n").unwrap();
        let link = dir.path().join("config.toml");
        std::os::unix::fs::symlink("real.toml", &link).unwrap();
        replace(&link, b"a = 2\n", 0o600).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "a = 2\n");
        let dangling = dir.path().join("dangling.toml");
        std::os::unix::fs::symlink("missing/target.toml", &dangling).unwrap();
        let err = replace(&dangling, b"a = 3\n", 0o600).unwrap_err();
        assert!(
            err.message.contains("missing/target.toml"),
            "{}",
            err.message
        );
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_file_that_will_hold_a_token_becomes_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "concurrent = 1\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let with_token = b"[[runners]]\n  token = \"legacytoken1234\"\n";
        assert_eq!(tightened_mode(&p, with_token), Some((0o644, 0o600)));
        assert_eq!(tightened_mode(&p, b"concurrent = 2\n"), None);
        replace(&p, with_token, 0o600).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_second_lock_waits_then_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        let held = lock(&p, Duration::ZERO, || {}).unwrap();
        let mut waited = false;
        let err = lock(&p, Duration::from_millis(120), || waited = true).unwrap_err();
        assert!(waited);
        assert!(err.message.contains("another runnerform"));
        drop(held);
        lock(&p, Duration::ZERO, || {}).unwrap();
    }
}
