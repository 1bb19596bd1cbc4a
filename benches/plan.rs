//! Measures an offline plan of a config.toml against a KDL file, with 1,000 and with 10,000
//! runners side by side: in-process phases, the whole `runnerform plan --offline` process,
//! its peak memory, and how the time grows from 1,000 to 10,000 (linear planning makes that
//! about 10x). Prints the figures; asserts nothing about time.
//!
//! Run with: cargo bench --bench plan

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use runnerform::desired::{self, RefCheck};
use runnerform::local::expand::Environment;
use runnerform::plan::{Inputs, plan};
use runnerform::views;

#[path = "support/measure.rs"]
mod measure;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn config_toml(runners: usize) -> String {
    let mut s = String::from(
        "concurrent = 64\ncheck_interval = 3\n\n[session_server]\n  session_timeout = 1800\n",
    );
    for i in 0..runners {
        let _ = write!(
            s,
            "\n[[runners]]\n  name = \"r{i:04}\"\n  url = \"https://gitlab.example.com\"\n  id = {}\n  token = \"glrt-t1_benchbenchbench{i:05}\"\n  token_obtained_at = 2026-01-01T00:00:00Z\n  token_expires_at = 0001-01-01T00:00:00Z\n  executor = \"docker\"\n  limit = 2\n  [runners.docker]\n    image = \"rust:1.82\"\n    privileged = false\n    volumes = [\"/cache\"]\n  [runners.cache]\n    Type = \"s3\"\n    [runners.cache.s3]\n      BucketName = \"cache-{i}\"\n",
            i + 1
        );
    }
    s
}

fn kdl(runners: usize) -> String {
    let mut s = String::from(
        "gitlab \"https://gitlab.example.com\"\nconfig \"config.toml\" {\n    concurrent 64\n}\n\
         defaults {\n    project \"acme/app\"\n    executor \"docker\"\n    limit 2\n    docker {\n        image \"rust:1.83\"\n        volumes \"/cache\"\n    }\n}\n",
    );
    for i in 0..runners {
        let _ = write!(
            s,
            "runner \"r{i:04}\" {{\n    tags \"docker\"\n    cache {{\n        Type \"s3\"\n        s3 {{ BucketName \"cache-{i}\" }}\n    }}\n}}\n"
        );
    }
    s
}

fn state(runners: usize) -> String {
    let runners: Vec<String> = (0..runners)
        .map(|i| {
            format!(
                "{{\"name\":\"r{i:04}\",\"url\":\"https://gitlab.example.com\",\"id\":{},\"scope\":\"project acme/app\"}}",
                i + 1
            )
        })
        .collect();
    format!(
        "{{\"format\":1,\"runners\":[{}],\"pending_deletes\":[]}}\n",
        runners.join(",")
    )
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2])
}

struct Figures {
    runners: usize,
    read: (Duration, Duration),
    gather: (Duration, Duration),
    plan: (Duration, Duration),
    process: (Duration, Duration),
    peak_mib: f64,
    /// Instructions the process executes, counted by valgrind when it is installed: the
    /// measure of linear work that the memory hierarchy and a shared machine do not blur.
    instructions: Option<u64>,
}

/// Instructions `cmd` executes under callgrind; `None` without valgrind.
fn instructions(cmd: &mut Command) -> Option<u64> {
    let mut vg = Command::new("valgrind");
    vg.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .current_dir(cmd.get_current_dir()?)
        .stdout(std::process::Stdio::null());
    let out = vg.output().ok()?;
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.contains("Collected :"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

/// One size's files and what was measured of it so far.
struct Sample {
    runners: usize,
    dir: tempfile::TempDir,
    read: Vec<Duration>,
    gather: Vec<Duration>,
    planning: Vec<Duration>,
    process: Vec<Duration>,
    peak: f64,
}

impl Sample {
    fn new(runners: usize) -> Sample {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config_toml(runners)).unwrap();
        std::fs::write(dir.path().join("runners.kdl"), kdl(runners)).unwrap();
        std::fs::write(dir.path().join("runnerform-state.json"), state(runners)).unwrap();
        Sample {
            runners,
            dir,
            read: Vec::new(),
            gather: Vec::new(),
            planning: Vec::new(),
            process: Vec::new(),
            peak: 0.0,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runnerform"));
        cmd.args(["plan", "--offline", "--json"])
            .current_dir(self.dir.path());
        cmd
    }

    /// One round: the phases in-process, then the whole process.
    fn round(&mut self) {
        let kdl_path = self.dir.path().join("runners.kdl");
        let t = Instant::now();
        let d = desired::read(&kdl_path, RefCheck::Settings)
            .desired
            .expect("valid");
        self.read.push(t.elapsed());
        let t = Instant::now();
        let v = views::gather_local(&d, &views::config_path(None, &d)).unwrap();
        self.gather.push(t.elapsed());
        let t = Instant::now();
        let p = plan(&Inputs {
            desired: &d,
            local: &v.local,
            state: &v.state,
            state_text: v.state_text.as_deref(),
            secrets: &v.secrets,
            remote: None,
            targets: &[],
            delete_unmanaged: false,
            env: &Environment::default(),
            system_id: None,
        })
        .unwrap();
        self.planning.push(t.elapsed());
        assert_eq!(p.summary.update, self.runners);
        drop((p, v, d));
        let (ok, took, mib) = measure::run_measured(&self.command());
        assert!(ok);
        self.process.push(took);
        self.peak = self.peak.max(mib);
    }

    fn figures(self) -> Figures {
        Figures {
            instructions: instructions(&mut self.command()),
            runners: self.runners,
            read: median(self.read),
            gather: median(self.gather),
            plan: median(self.planning),
            process: median(self.process),
            peak_mib: self.peak,
        }
    }
}

/// 1,000 and 10,000 runners measured in turns (three rounds of the small for one of the
/// large), so that both see the same moments of a shared machine.
fn measure_both() -> (Figures, Figures) {
    let (mut small, mut large) = (Sample::new(1_000), Sample::new(10_000));
    for _ in 0..7 {
        for _ in 0..3 {
            small.round();
        }
        large.round();
    }
    (small.figures(), large.figures())
}

/// A config.toml of about 100 MiB (every entry unmanaged) against a file declaring two
/// runners: `plan --offline` and `apply --offline` (on a copy each round), min of 3.
fn large_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = config_toml(0);
    let mut i = 0;
    while text.len() < 100 << 20 {
        let _ = write!(
            text,
            "\n[[runners]]\n  name = \"u{i:06}\"\n  url = \"https://gitlab.example.com\"\n  id = {}\n  token = \"glrt-t1_largelargelarge{i:06}\"\n  token_obtained_at = 2026-01-01T00:00:00Z\n  token_expires_at = 0001-01-01T00:00:00Z\n  executor = \"docker\"\n  limit = 2\n  [runners.docker]\n    image = \"rust:1.82\"\n    privileged = false\n    volumes = [\"/cache\"]\n  [runners.cache]\n    Type = \"s3\"\n    [runners.cache.s3]\n      BucketName = \"cache-{i}\"\n",
            i + 1
        );
        i += 1;
    }
    std::fs::write(
        dir.path().join("runners.kdl"),
        "gitlab \"https://gitlab.example.com\"\nconfig \"config.toml\" {\n    concurrent 32\n}\n\
         runner \"u000005\" {\n    project \"acme/app\"\n    executor \"docker\"\n    limit 4\n    docker {\n        image \"rust:1.83\"\n    }\n}\n\
         runner \"fresh\" {\n    project \"acme/app\"\n    executor \"shell\"\n}\n",
    )
    .unwrap();
    let mib = text.len() as f64 / (1 << 20) as f64;
    println!("a config.toml of {mib:.0} MiB ({i} entries), two runners declared; min of 3");
    for args in [&["plan", "--offline"][..], &["apply", "--offline", "--yes"]] {
        let (mut best, mut peak) = (Duration::MAX, 0f64);
        for _ in 0..3 {
            std::fs::write(dir.path().join("config.toml"), &text).unwrap();
            let _ = std::fs::remove_file(dir.path().join("runnerform-state.json"));
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_runnerform"));
            cmd.args(args).current_dir(dir.path());
            let (ok, took, p) = measure::run_measured(&cmd);
            assert!(ok, "{args:?}");
            best = best.min(took);
            peak = peak.max(p);
        }
        println!(
            "  runnerform {:<22} {best:>8.2?}, peak memory {peak:.0} MiB ({:.1}x the file)",
            args.join(" "),
            peak / mib
        );
    }
}

fn main() {
    large_file();
    let (small, large) = measure_both();
    println!("offline plan, N runners in config.toml and in KDL (each updated); min / median");
    for f in [&small, &large] {
        let n = f.runners;
        println!("  N = {n}");
        println!(
            "    read KDL (parse, decode, check):   {:.1?} / {:.1?}",
            f.read.0, f.read.1
        );
        println!(
            "    read config.toml + state:          {:.1?} / {:.1?}",
            f.gather.0, f.gather.1
        );
        println!(
            "    plan (match, edit, render, diff):  {:.1?} / {:.1?}",
            f.plan.0, f.plan.1
        );
        println!(
            "    runnerform plan --offline --json:  {:.1?} / {:.1?}",
            f.process.0, f.process.1
        );
        println!(
            "    peak memory of that process:       {:.1} MiB",
            f.peak_mib
        );
    }
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!(
        "  10,000 / 1,000 (min): read KDL {:.1}x, read config.toml {:.1}x, plan {:.1}x, process {:.1}x",
        ratio(small.read.0, large.read.0),
        ratio(small.gather.0, large.gather.0),
        ratio(small.plan.0, large.plan.0),
        ratio(small.process.0, large.process.0)
    );
    match (small.instructions, large.instructions) {
        (Some(a), Some(b)) => println!(
            "  instructions of that process (callgrind): {a} / {b}, {:.2}x",
            b as f64 / a as f64
        ),
        _ => println!("  (valgrind is not installed: instructions not counted)"),
    }
}
