//! Python tools the tests run (python-gitlab, ansible-core), provisioned by the tests
//! themselves: a fresh machine with python3 and the package registry runs the whole suite
//! without any preparation.
//!
//! Each tool gets a virtualenv under `target/test-venvs/NAME`, made once and reused while its
//! pinned requirements stay the same. A venv is built in a temporary directory beside its
//! final place and renamed into place, so parallel tests (or two `cargo test` runs) never use
//! a half-made one. Where `python3 -m venv` is not available (Debian without python3-venv),
//! the packages are installed with `pip install --target` and found through PYTHONPATH.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::common::root;

/// A Python interpreter with some packages importable.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    /// The interpreter to run.
    pub python: PathBuf,
    /// Where the environment's scripts are (`ansible-playbook`…), put first on PATH.
    pub bin: PathBuf,
    /// Set for a `pip install --target` environment.
    pub pythonpath: Option<PathBuf>,
}

impl PythonEnv {
    /// A command for one of the environment's scripts (or the interpreter: `python`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(&self.python);
        if program != "python" {
            // Run by the interpreter, not by its #! line: that names the temporary directory
            // the venv was built in before it was renamed into place.
            c.arg(self.bin.join(program));
        }
        self.configure(&mut c);
        c
    }

    /// Puts the environment on a command's PATH (and PYTHONPATH).
    pub fn configure(&self, c: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.bin.clone()];
        dirs.extend(std::env::split_paths(&path));
        c.env("PATH", std::env::join_paths(dirs).expect("PATH joins"));
        if let Some(pp) = &self.pythonpath {
            c.env("PYTHONPATH", pp);
        }
        c.env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    }
}

static MAKING: Mutex<()> = Mutex::new(());

/// The environment NAME with exactly `requirements` (pip specifiers, pinned), made if needed.
/// Panics with what to do when python3 is missing or the registry cannot be reached: a
/// conformance check that skips would pass silently on a machine that cannot run it.
pub fn env(name: &str, requirements: &[&str]) -> PythonEnv {
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let base = root().join("target/test-venvs");
    std::fs::create_dir_all(&base).expect("create target/test-venvs");
    let dir = base.join(name);
    let stamp = requirements.join("\n");
    if let Some(env) = ready(&dir, &stamp) {
        return env;
    }
    let tmp = base.join(format!(".{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let env = make(&tmp, requirements);
    std::fs::write(tmp.join("runnerform-requirements"), &stamp).expect("write stamp");
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process finished the same environment first; use that one.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    ready(&dir, &stamp)
        .unwrap_or_else(|| panic!("{} was made but is not usable: {env:?}", dir.display()))
}

fn ready(dir: &Path, stamp: &str) -> Option<PythonEnv> {
    let have = std::fs::read_to_string(dir.join("runnerform-requirements")).ok()?;
    if have != stamp {
        return None;
    }
    let venv_python = dir.join("bin/python");
    if venv_python.exists() {
        return Some(PythonEnv {
            python: venv_python,
            bin: dir.join("bin"),
            pythonpath: None,
        });
    }
    let site = dir.join("site");
    site.exists().then(|| PythonEnv {
        python: PathBuf::from("python3"),
        bin: site.join("bin"),
        pythonpath: Some(site),
    })
}

fn make(dir: &Path, requirements: &[&str]) -> PythonEnv {
    let run = |c: &mut Command, what: &str| -> Result<(), String> {
        let out = c.output().map_err(|e| format!("{what}: cannot run: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let help = "the tests install their Python tools from PyPI into target/test-venvs; they \
                need python3 and access to the package registry";
    let venv = run(
        Command::new("python3").args(["-m", "venv"]).arg(dir),
        "python3 -m venv",
    );
    let env = match venv {
        Ok(()) => PythonEnv {
            python: dir.join("bin/python"),
            bin: dir.join("bin"),
            pythonpath: None,
        },
        Err(why) => {
            eprintln!("python3 -m venv is not available ({why}); using pip install --target");
            let _ = std::fs::remove_dir_all(dir);
            PythonEnv {
                python: PathBuf::from("python3"),
                bin: dir.join("site/bin"),
                pythonpath: Some(dir.join("site")),
            }
        }
    };
    let mut pip = Command::new(&env.python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    if let Some(site) = &env.pythonpath {
        pip.arg("--target").arg(site);
    }
    pip.args(requirements);
    if let Err(why) = run(&mut pip, &format!("pip install {}", requirements.join(" "))) {
        panic!("{why}\n{help}");
    }
    env
}
