//! Measures creating N runners from scratch against the simulator: N = 100, 1,000 and 10,000
//! at 0 and 20 ms of latency per request, at 8 and 32 runners in parallel. Each create is a
//! registration and the clearing of its claim marker (two requests). Prints wall time,
//! runners per second, the ratio to the network bound (2 x N x RTT / C), and the bytes
//! written (journal, config.toml, ownership record) relative to the final config.toml.
//! Asserts nothing about time.
//!
//! Run with: cargo bench --bench create (RUNNERFORM_BENCH_QUICK=1 skips N = 10,000)

use std::time::{Duration, Instant};

use runnerform::engine::{self, ApplyOptions, Options};
use runnerform::sim::{SimOptions, Simulator};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn run(n: usize, latency_ms: u64, concurrency: usize) -> (Duration, u64, u64) {
    let sim = Simulator::start(SimOptions::default()).expect("simulator");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gitlab-token"), sim.admin_token()).unwrap();
    let kdl = dir.path().join("runners.kdl");
    std::fs::write(
        &kdl,
        format!(
            "gitlab \"{}\" {{\n    token file=\"gitlab-token\"\n}}\nconfig \"config.toml\"\n\
             runner \"r\" count={n} {{\n    project \"acme/app\"\n    tags \"docker\"\n    \
             executor \"docker\"\n    docker {{\n        image \"alpine:3.20\"\n    }}\n}}\n",
            sim.url()
        ),
    )
    .unwrap();
    sim.set_latency("*", Duration::from_millis(latency_ms));
    let t = Instant::now();
    let desired = runnerform::desired::read(&kdl, runnerform::desired::RefCheck::Require)
        .desired
        .expect("valid");
    let planned = engine::plan(
        desired,
        &Options {
            concurrency,
            ..Options::default()
        },
    )
    .unwrap_or_else(|p| panic!("{}", p[0].message));
    let outcome = engine::apply(
        &planned,
        &ApplyOptions {
            concurrency,
            ..ApplyOptions::default()
        },
        &mut |_| {},
    )
    .unwrap_or_else(|f| panic!("{}", f.problem.message));
    let took = t.elapsed();
    assert_eq!(outcome.registered, n);
    assert_eq!(sim.runners().len(), n);
    let size = std::fs::metadata(dir.path().join("config.toml"))
        .unwrap()
        .len();
    (took, outcome.bytes_written, size)
}

fn main() {
    let quick = std::env::var_os("RUNNERFORM_BENCH_QUICK").is_some();
    println!("create N runners from scratch (register + clear the claim marker: 2 requests each)");
    println!(
        "{:>6} {:>8} {:>4} {:>10} {:>10} {:>8} {:>12}",
        "N", "latency", "C", "wall", "runners/s", "x bound", "bytes/final"
    );
    for n in [100usize, 1000, 10_000] {
        if quick && n > 1000 {
            continue;
        }
        for latency in [0u64, 20] {
            for c in [8usize, 32] {
                let (took, bytes, size) = run(n, latency, c);
                let bound = Duration::from_millis(2 * n as u64 * latency / c as u64);
                let ratio = if latency == 0 {
                    "-".to_string()
                } else {
                    format!("{:.2}", took.as_secs_f64() / bound.as_secs_f64())
                };
                println!(
                    "{n:>6} {:>6}ms {c:>4} {:>10.2?} {:>10.0} {ratio:>8} {:>12.2}",
                    latency,
                    took,
                    n as f64 / took.as_secs_f64(),
                    bytes as f64 / size as f64
                );
            }
        }
    }
}
