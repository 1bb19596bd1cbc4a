//! `--state FILE`: the simulated GitLab saved as JSON after every change and loaded at start.
//!
//! The file holds the simulator's tokens (it is its database), so it is written 0600, and
//! atomically (temporary file in the same directory, fsync, rename) so a crash never leaves
//! half a state behind.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::state::{STATE_FORMAT, State};

/// `Ok(None)` when the file does not exist yet.
pub fn load(path: &Path) -> Result<Option<State>, String> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut st: State = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a simulator state file: {e}", path.display()))?;
    if st.format != STATE_FORMAT {
        return Err(format!(
            "{} has state format {}, this simulator reads format {STATE_FORMAT}",
            path.display(),
            st.format
        ));
    }
    st.reindex();
    Ok(Some(st))
}

pub fn save(path: &Path, st: &State) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(st).map_err(std::io::Error::other)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
