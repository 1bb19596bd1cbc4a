//! A fuzzing harness for the inputs runnerform reads from users: KDL files, config.toml and
//! what import makes of it. cargo-fuzz needs a nightly toolchain, so inputs are mutated here
//! from the real examples and fixtures by a seeded generator, within a time box that suits CI
//! (`RUNNERFORM_FUZZ_SECS`, default a few seconds per target; `RUNNERFORM_FUZZ_SEED` to
//! replay). The oracle is design invariant 12: no panic, no abort, no hang, and every KDL
//! error located. Every crasher found is kept in `tests/fuzz/` and replayed on every run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runnerform::desired::{self, RefCheck};
use runnerform::local::LocalView;
use runnerform::local::layout::LocalDoc;

use crate::common::{BIN, TestEnvironment, root};

/// A small, fast, seeded generator (xorshift64*): reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed() -> u64 {
    std::env::var("RUNNERFORM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0016)
}

fn budget() -> Duration {
    let secs = std::env::var("RUNNERFORM_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    Duration::from_secs(secs)
}

/// Fragments that reach the parsers' corners: nesting, annotations, strings of every kind,
/// comments, bytes that are not UTF-8, special files, long runs.
const KDL_PIECES: &[&[u8]] = &[
    b"{",
    b"}",
    b"(t)",
    b"(",
    b")",
    b"\"",
    b"#\"",
    b"\"#",
    b"\"\"\"\n",
    b"r#\"",
    b"/*",
    b"*/",
    b"//",
    b"/-",
    b"\\",
    b";",
    b"=",
    b"#true",
    b"false",
    b"#null",
    b"#inf",
    b"-",
    b"0x",
    b"1e999",
    b"\xff",
    b"\xc3",
    b"\x00",
    b"\r\n",
    b"\t",
    b"\xef\xbb\xbf",
    b"include \"/dev/zero\"\n",
    b"include \"runners.kdl\"\n",
    b"runner \"x\" {\n",
    b"token env=\"X\"\n",
    b"count=",
    b"defaults {",
    b"template \"t\" {",
    b"host \"h\" {",
    b"docker {",
    b"99999999999999999999",
];

const TOML_PIECES: &[&[u8]] = &[
    b"[",
    b"]",
    b"[[runners]]\n",
    b"{",
    b"}",
    b"\"",
    b"'''",
    b"\"\"\"",
    b"=",
    b"\n",
    b"\r\n",
    b"\\u",
    b"\xff",
    b"\x00",
    b"token = \"legacytok3n0001\"\n",
    b"name = \"x\"\n",
    b"url = \"$URL\"\n",
    b"id = 1\n",
    b"[runners.docker]\n",
    b"a.b.c = 1\n",
    b"1979-05-27T07:32:00Z",
    b"inf",
    b"nan",
    b"0x",
    b"#",
    b"executor = \"docker\"\n",
    b"volumes = [",
    b"], ",
];

/// One random change to `input`, sometimes several stacked.
fn mutate(rng: &mut Rng, input: &[u8], pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let p = pieces[rng.below(pieces.len())];
                out.splice(at..at, p.iter().copied());
            }
            2 if !out.is_empty() => {
                let end = (at + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            3 if !out.is_empty() => {
                // A chunk repeated many times: deep nesting, long lines, many errors.
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(8)).min(out.len());
                let chunk = out[start..end].to_vec();
                let times = [2, 50, 1_500, 12_000][rng.below(4)];
                let rep: Vec<u8> = chunk.repeat(times);
                out.splice(at..at, rep);
            }
            4 => {
                let p = pieces[rng.below(pieces.len())];
                let rep = p.repeat([10, 400, 2_000][rng.below(3)]);
                out.splice(at..at, rep);
            }
            5 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + rng.below(200)).min(out.len());
                let chunk = out[start..end].to_vec();
                out.splice(at..at, chunk);
            }
            _ => out.insert(at.min(out.len()), (rng.next() & 0xff) as u8),
        }
    }
    out.truncate(1 << 20);
    out
}

fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file() && (ext.is_empty() || p.extension().is_some_and(|e| e == ext)));
    out.sort();
    out
}

fn kdl_seeds() -> Vec<Vec<u8>> {
    let mut paths = files_in(&root().join("examples"), "kdl");
    paths.extend(files_in(&root().join("tests/malformed"), "kdl"));
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn toml_seeds() -> Vec<Vec<u8>> {
    crate::test_fixtures::fixtures()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn corpus(target: &str) -> PathBuf {
    root().join("tests/fuzz").join(target)
}

/// Keeps a crasher where the suite replays it, and says where.
fn keep(target: &str, input: &[u8], why: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    let path = corpus(target).join(format!("crash-{:016x}", h.finish()));
    let _ = std::fs::create_dir_all(corpus(target));
    let _ = std::fs::write(&path, input);
    format!("{why}; kept as {}", path.display())
}

/// Runs the binary on one KDL input; `Err` says what went wrong.
fn run_kdl(env: &TestEnvironment, input: &[u8]) -> Result<(), String> {
    std::fs::write(env.path().join("runners.kdl"), input).unwrap();
    for args in [&["validate"][..], &["plan", "--offline"][..]] {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(env.path())
            .env_clear()
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("HOME", env.path())
            .env("RUNNERFORM_HOST", "fuzz")
            .arg("--config-toml")
            .arg(env.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read while it runs: a child writing more than a pipe holds would otherwise block.
        let mut pipe = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut stderr = String::new();
            use std::io::Read;
            let _ = pipe.read_to_string(&mut stderr);
            stderr
        });
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{args:?} did not finish in 30 s"));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stderr = reader.join().unwrap_or_default();
        match status.code() {
            Some(0..=2) => {}
            Some(c) => return Err(format!("{args:?} exited {c}: {}", tail(&stderr))),
            None => {
                return Err(format!(
                    "{args:?} was killed by a signal: {}",
                    tail(&stderr)
                ));
            }
        }
        if stderr.len() > 2 << 20 {
            return Err(format!(
                "{args:?} printed {} bytes of diagnostics",
                stderr.len()
            ));
        }
        for code in ["runnerform::syntax", "runnerform::encoding"] {
            let errors = stderr.matches(code).count();
            let located = stderr
                .split("runnerform::")
                .filter(|block| code.ends_with(block.split_whitespace().next().unwrap_or("")))
                .filter(|block| block.contains("╭─["))
                .count();
            if errors != located {
                return Err(format!(
                    "{args:?}: a KDL error without a location: {}",
                    tail(&stderr)
                ));
            }
        }
    }
    Ok(())
}

fn tail(s: &str) -> String {
    let start = s.len().saturating_sub(600);
    let mut i = start;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    s[i..].to_string()
}

/// The desired state the config.toml target is planned against: one declared runner that
/// adopts an entry of the fuzzed file, and a global key.
fn small_desired(env: &TestEnvironment) -> desired::Desired {
    let path = env.write(
        "desired.kdl",
        "gitlab \"https://gitlab.example.com\" {\n    token env=\"GITLAB_TOKEN\"\n}\nconfig \"config.toml\" {\n    concurrent 3\n}\nrunner \"x\" {\n    instance\n    executor \"docker\"\n    docker {\n        image \"alpine:3\"\n    }\n    cache {\n        s3 {\n            SecretKey env=\"FUZZ_UNSET\"\n        }\n    }\n}\n",
    );
    let loaded = desired::read(&path, RefCheck::Settings);
    loaded.desired.expect("the fuzz declaration is valid")
}

/// Reads, plans against and imports one config.toml input, in-process.
fn run_toml(d: &desired::Desired, input: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok(());
    };
    let text = text.to_string();
    let result = std::panic::catch_unwind(|| {
        let path = Path::new("/nonexistent/config.toml");
        let whole = runnerform::local::parse(path, &text);
        let view = LocalView::from_text(path, &text);
        assert_eq!(
            whole.is_ok(),
            view.is_ok(),
            "read whole and cut into entries, the file must be as valid"
        );
        let (Ok(doc), Ok(local)) = (whole, view) else {
            return;
        };
        // Cut into entries or parsed whole, the file has the same entries and is written
        // back the same.
        let whole = LocalDoc::parse_whole(path, text.clone()).expect("parsed above");
        assert_eq!(local.doc.facts(), whole.facts());
        let as_read = |d: &LocalDoc| d.render(d.head(), [], []);
        assert_eq!(as_read(&local.doc), as_read(&whole));
        let survey = runnerform::import::survey(&doc);
        let _ = runnerform::import::render(
            &survey,
            &runnerform::import::Options {
                config_path: "config.toml",
                gitlab_token_env: "GITLAB_TOKEN",
                service: None,
            },
            &runnerform::import::Answers::NotAsked("fuzz".into()),
        );
        let secrets = runnerform::local::value::Secrets::default();
        let _ = runnerform::plan::plan(&runnerform::plan::Inputs {
            desired: d,
            local: &local,
            state: &Default::default(),
            state_text: None,
            secrets: &secrets,
            remote: None,
            targets: &[],
            delete_unmanaged: false,
            env: &runnerform::local::expand::Environment::default(),
            system_id: None,
        });
    });
    result.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

fn fuzz(
    target: &str,
    seeds: &[Vec<u8>],
    pieces: &[&[u8]],
    mut check: impl FnMut(&[u8]) -> Result<(), String>,
) -> usize {
    for kept in files_in(&corpus(target), "") {
        // The in-process target's `crash-in-flight` may come and go meanwhile.
        let Ok(input) = std::fs::read(&kept) else {
            continue;
        };
        if let Err(why) = check(&input) {
            panic!("{target}: {} fails again: {why}", kept.display());
        }
    }
    let mut rng = Rng(seed() ^ target.len() as u64);
    let start = Instant::now();
    let mut runs = 0;
    while start.elapsed() < budget() {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, pieces);
        runs += 1;
        if let Err(why) = check(&input) {
            panic!("{target}: {}", keep(target, &input, &why));
        }
    }
    runs
}

#[test]
fn fuzzed_kdl_files_never_crash_hang_or_go_unlocated() {
    let env = TestEnvironment::new();
    env.write("config.toml", "concurrent = 1\n");
    let runs = fuzz("kdl", &kdl_seeds(), KDL_PIECES, |input| {
        run_kdl(&env, input)
    });
    eprintln!("kdl: {runs} inputs");
    assert!(runs > 0);
}

/// The KDL reader in-process, hundreds of times faster than through the binary. A stack
/// overflow would abort the whole test binary, so the input is written where the next run
/// replays it (through the binary) before it is tried, and removed once it passed.
fn run_kdl_in_process(env: &TestEnvironment, input: &[u8]) -> Result<(), String> {
    let in_flight = corpus("kdl").join("crash-in-flight");
    let _ = std::fs::write(&in_flight, input);
    let path = env.path().join("runners.kdl");
    std::fs::write(&path, input).unwrap();
    let result = std::panic::catch_unwind(|| {
        let loaded = desired::read(&path, RefCheck::Warn);
        let unlocated =
            loaded.problems.list.iter().find(|p| {
                matches!(p.code, "syntax" | "encoding" | "too_complex") && p.loc.is_none()
            });
        unlocated.map(|p| format!("a KDL error without a location: {}", p.message))
    });
    let _ = std::fs::remove_file(&in_flight);
    match result {
        Ok(None) => Ok(()),
        Ok(Some(why)) => Err(why),
        Err(p) => Err(p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())),
    }
}

#[test]
fn fuzzed_kdl_files_never_panic_in_the_reader() {
    let env = TestEnvironment::new();
    let runs = fuzz("kdl", &kdl_seeds(), KDL_PIECES, |input| {
        let input = &input[..input.len().min(256 << 10)];
        run_kdl_in_process(&env, input)
    });
    eprintln!("kdl in-process: {runs} inputs");
    assert!(runs > 0);
}

#[test]
fn fuzzed_config_toml_files_never_panic_in_the_reader_the_editor_or_import() {
    let env = TestEnvironment::new();
    let d = small_desired(&env);
    let runs = fuzz("config-toml", &toml_seeds(), TOML_PIECES, |input| {
        run_toml(&d, input)
    });
    eprintln!("config-toml: {runs} inputs");
    assert!(runs > 0);
}
