//! Measures an offline plan of a 1,000-runner config.toml against a 1,000-runner KDL file:
//! in-process phases, the whole `runnerform plan --offline` process, and the process's peak
//! memory. Prints the figures; asserts nothing about time.
//!
//! Run with: cargo bench --bench plan

use std::fmt::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runnerform::desired::{self, RefCheck};
use runnerform::local::expand::Environment;
use runnerform::plan::{Inputs, plan};
use runnerform::views;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNNERS: usize = 1000;
const ROUNDS: usize = 15;

fn config_toml() -> String {
    let mut s = String::from(
        "concurrent = 64\ncheck_interval = 3\n\n[session_server]\n  session_timeout = 1800\n",
    );
    for i in 0..RUNNERS {
        let _ = write!(
            s,
            "\n[[runners]]\n  name = \"r{i:04}\"\n  url = \"https://gitlab.example.com\"\n  id = {}\n  token = \"glrt-t1_benchbenchbench{i:05}\"\n  token_obtained_at = 2026-01-01T00:00:00Z\n  token_expires_at = 0001-01-01T00:00:00Z\n  executor = \"docker\"\n  limit = 2\n  [runners.docker]\n    image = \"rust:1.82\"\n    privileged = false\n    volumes = [\"/cache\"]\n  [runners.cache]\n    Type = \"s3\"\n    [runners.cache.s3]\n      BucketName = \"cache-{i}\"\n",
            i + 1
        );
    }
    s
}

fn kdl() -> String {
    let mut s = String::from(
        "gitlab \"https://gitlab.example.com\"\nconfig \"config.toml\" {\n    concurrent 64\n}\n\
         defaults {\n    project \"acme/app\"\n    executor \"docker\"\n    limit 2\n    docker {\n        image \"rust:1.83\"\n        volumes \"/cache\"\n    }\n}\n",
    );
    for i in 0..RUNNERS {
        let _ = write!(
            s,
            "runner \"r{i:04}\" {{\n    tags \"docker\"\n    cache {{\n        Type \"s3\"\n        s3 {{ BucketName \"cache-{i}\" }}\n    }}\n}}\n"
        );
    }
    s
}

fn state() -> String {
    let runners: Vec<String> = (0..RUNNERS)
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

fn child_peak_rss_kib() -> i64 {
    // SAFETY: getrusage writes into the struct we pass and has no other effect.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), config_toml()).unwrap();
    std::fs::write(dir.path().join("runners.kdl"), kdl()).unwrap();
    std::fs::write(dir.path().join("runnerform-state.json"), state()).unwrap();
    let kdl_path = dir.path().join("runners.kdl");

    let (mut read, mut gather, mut planning) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let d = desired::read(&kdl_path, RefCheck::Settings)
            .desired
            .expect("valid");
        read.push(t.elapsed());
        let t = Instant::now();
        let v = views::gather_local(&d, &views::config_path(None, &d)).unwrap();
        gather.push(t.elapsed());
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
        planning.push(t.elapsed());
        assert_eq!(p.summary.update, RUNNERS);
    }
    let mut process = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_runnerform"))
            .args(["plan", "--offline", "--json"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        process.push(t.elapsed());
        assert!(status.success());
    }
    let peak = child_peak_rss_kib();
    let (r0, r1) = median(read);
    let (g0, g1) = median(gather);
    let (p0, p1) = median(planning);
    let (x0, x1) = median(process);
    println!(
        "offline plan, {RUNNERS} runners in config.toml and in KDL (each updated), {ROUNDS} rounds"
    );
    println!("  read KDL (parse, decode, check):   min {r0:.1?}, median {r1:.1?}");
    println!("  read config.toml + state:          min {g0:.1?}, median {g1:.1?}");
    println!("  plan (diff, edit, render text):    min {p0:.1?}, median {p1:.1?}");
    println!("  runnerform plan --offline --json:  min {x0:.1?}, median {x1:.1?}");
    println!(
        "  peak memory of that process:       {:.1} MiB",
        peak as f64 / 1024.0
    );
}
