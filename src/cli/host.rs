//! Which host of a fleet file this run is for.

use crate::cli::Cli;

/// `--host` (or `RUNNERFORM_HOST`), else the machine's hostname.
pub fn this_host(cli: &Cli) -> String {
    cli.host.clone().unwrap_or_else(hostname)
}

/// The kernel's hostname, as `hostname` prints it; empty when it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, and gethostname writes at most that
    // many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
