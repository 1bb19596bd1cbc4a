//! The test environment: a temporary directory, the real runnerform binary, and output
//! normalised for snapshots (temporary paths replaced, no colour, fixed width).

use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_runnerform");

/// The package root, where `tests/`, `examples/` and `schemas/` live.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct TestEnvironment {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout then stderr, as a person reading the terminal would see them.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl TestEnvironment {
    pub fn new() -> Self {
        TestEnvironment {
            dir: tempfile::tempdir().expect("temp dir"),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Runs runnerform in the environment's directory.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_in(self.path(), args)
    }

    /// Runs runnerform with a clean environment: only what the test set, no colour, width 100.
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Output {
        self.run_with(cwd, args, None)
    }

    /// Runs runnerform in the environment's directory with `input` on its stdin.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        self.run_with(self.path(), args, Some(input))
    }

    /// The command `run` would run, to spawn it and signal it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("HOME", self.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs runnerform as `run` does; also its peak resident memory in bytes.
    ///
    /// Linux counts in a process's peak the resident memory of the process it was spawned
    /// from (recorded at exec), and this test process holds other tests' data: runnerform is
    /// started from a small python3 process, whose children's peak is runnerform's own (the
    /// figure may include python's 10 MiB, never this process's).
    pub fn run_measured(&self, args: &[&str]) -> (Output, u64) {
        const MEASURE: &str = "import resource, subprocess, sys\n\
            r = subprocess.run(sys.argv[2:])\n\
            open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
            sys.exit(r.returncode)\n";
        let out_path = self.path().join(".measured.stdout");
        let err_path = self.path().join(".measured.stderr");
        let peak_path = self.path().join(".measured.peak");
        let mut cmd = Command::new("python3");
        cmd.arg("-c")
            .arg(MEASURE)
            .arg(&peak_path)
            .arg(BIN)
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("HOME", self.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let status = cmd
            .status()
            .expect("run python3 (it measures runnerform's memory)");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let peak_kib: u64 = read(&peak_path)
            .trim()
            .parse()
            .expect("python3 wrote the peak");
        let out = Output {
            code: status.code().unwrap_or(-1),
            stdout: read(&out_path),
            stderr: read(&err_path),
        };
        for p in [out_path, err_path, peak_path] {
            let _ = std::fs::remove_file(p);
        }
        assert!(
            unmasked_token(&out.combined()).is_none(),
            "runnerform {args:?} printed a token"
        );
        (out, peak_kib * 1024)
    }

    fn run_with(&self, cwd: &Path, args: &[&str], input: Option<&str>) -> Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(cwd)
            .env_clear()
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("HOME", self.path())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run runnerform");
        if let Some(text) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            let text = text.to_string();
            // Written from a thread: a child that does not read stdin must not block the test.
            std::thread::spawn(move || {
                let _ = stdin.write_all(text.as_bytes());
            });
        }
        let out = child.wait_with_output().expect("run runnerform");
        let tmp = self.path().to_string_lossy().to_string();
        let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&tmp, "$TMP");
        let out = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: clean(&out.stdout),
            stderr: clean(&out.stderr),
        };
        // Every scenario of the suite is checked: no token may ever reach the terminal.
        if let Some(token) = unmasked_token(&out.combined()) {
            panic!(
                "runnerform {args:?} printed a token ({token}…):\n{}",
                out.combined()
            );
        }
        out
    }
}

/// The start of the first token in `text` that is not masked, if any.
pub fn unmasked_token(text: &str) -> Option<String> {
    for prefix in runnerform::secrets::TOKEN_PREFIXES {
        for (i, _) in text.match_indices(prefix) {
            let boundary = text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            let next = text[i + prefix.len()..].chars().next();
            if boundary && next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Some(text[i..(i + prefix.len() + 2).min(text.len())].to_string());
            }
        }
    }
    None
}

/// A `runnerform sim` process serving on 127.0.0.1; killed when dropped.
pub struct RunningSim {
    child: Option<std::process::Child>,
    stderr_path: PathBuf,
    /// The JSON line the simulator printed first.
    pub first_line: String,
    pub url: String,
    pub admin_token: String,
}

impl TestEnvironment {
    /// Starts `runnerform sim ARGS` with the same clean environment as [`Self::run_in`] and
    /// waits (at most 30 s) for its first stdout line, `{"url": ..., "admin_token": ...}`.
    pub fn spawn_sim(&self, args: &[&str]) -> RunningSim {
        use std::io::BufRead;
        use std::process::Stdio;
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr_path = self.path().join(format!("sim-{n}.stderr"));
        let mut cmd = Command::new(BIN);
        cmd.arg("sim")
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("NO_COLOR", "1")
            .env("HOME", self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start runnerform sim");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = tx.send(first);
            // Anything printed after the first line would break the one-line contract.
            let rest: Vec<String> = lines.map_while(Result::ok).collect();
            assert!(
                rest.is_empty(),
                "runnerform sim printed more on stdout: {rest:?}"
            );
        });
        let first_line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_default();
        let mut sim = RunningSim {
            child: Some(child),
            stderr_path,
            first_line,
            url: String::new(),
            admin_token: String::new(),
        };
        let v: serde_json::Value = serde_json::from_str(&sim.first_line).unwrap_or_else(|e| {
            panic!(
                "runnerform sim did not print its JSON line ({e}): {:?}\nstderr:\n{}",
                sim.first_line,
                sim.stderr()
            )
        });
        sim.url = v["url"].as_str().expect("url").to_string();
        sim.admin_token = v["admin_token"].as_str().expect("admin_token").to_string();
        sim
    }
}

impl RunningSim {
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most 20 s); returns the exit code and stderr.
    pub fn terminate(mut self) -> (i32, String) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let code = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status.code().unwrap_or(-1);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("runnerform sim did not stop on SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        (code, self.stderr())
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
