//! Running a runnerform process and reading its own time and peak memory.
//!
//! Linux counts in a process's peak the resident memory of the process it was spawned from
//! (recorded at exec), and a bench process holds thousands of generated runners: measured
//! directly, the figure would be the bench's as much as runnerform's. So runnerform is
//! started from a small python3 process that reports its child's peak and time (the peak
//! may include python's 10 MiB).

use std::process::{Command, Stdio};
use std::time::Duration;

const MEASURE: &str = "import resource, subprocess, sys, time\n\
    t = time.monotonic()\n\
    r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n\
    took = time.monotonic() - t\n\
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n\
    print(r.returncode, took, peak)\n";

/// Runs `cmd` (its program, arguments, directory and the variables it sets, in an otherwise
/// empty environment) to its end: whether it succeeded, its wall time, and its peak resident
/// memory in MiB.
pub fn run_measured(cmd: &Command) -> (bool, Duration, f64) {
    let mut py = Command::new("python3");
    py.arg("-c")
        .arg(MEASURE)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    py.env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(dir) = cmd.get_current_dir() {
        py.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            py.env(k, v);
        }
    }
    let out = py.output().expect("python3 runs the measured process");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace();
    let code: i32 = f.next().and_then(|s| s.parse().ok()).expect("exit code");
    let took: f64 = f.next().and_then(|s| s.parse().ok()).expect("time");
    let peak_kib: f64 = f.next().and_then(|s| s.parse().ok()).expect("peak");
    (code == 0, Duration::from_secs_f64(took), peak_kib / 1024.0)
}
