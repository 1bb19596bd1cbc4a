//! Replacing files safely: a lock that serialises runnerform processes, and atomic
//! replacement (temp file in the same directory, fsync, rename, fsync of the directory) that
//! keeps the file's mode and owner.
//!
//! gitlab-runner itself writes config.toml in place, so a crash half-way leaves a truncated
//! file; runnerform never does.

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

/// Atomically replaces `path` with `contents`. An existing file keeps its mode and owner; a
/// new one gets `new_mode`.
pub fn replace(path: &Path, contents: &[u8], new_mode: u32) -> Result<(), Problem> {
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
        let mode = existing
            .as_ref()
            .map_or(new_mode, |m| m.permissions().mode() & 0o7777);
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
