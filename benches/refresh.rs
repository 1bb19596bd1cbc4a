//! Measures the refresh of an online plan against the simulator with 20 ms of latency on
//! every request, side by side in one run: 1,000 and 10,000 runners at the default
//! concurrency and at C = 1, 8, 32, each against its bound (N x RTT / C); the whole
//! `runnerform plan` process with its peak memory; and a refresh under a fixed-window rate
//! limit, with the number of 429s it drew. Prints the figures; asserts nothing about time.
//!
//! Run with: cargo bench --bench refresh (RUNNERFORM_BENCH_FULL=1 adds 10,000 runners at
//! C = 1, which takes more than three minutes).

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use runnerform::remote::pace::DEFAULT_CONCURRENCY;
use runnerform::remote::{Client, ClientOptions, Pace, Questions, refresh};
use runnerform::sim::{RateLimit, SimOptions, Simulator};

#[path = "support/measure.rs"]
mod measure;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LATENCY: Duration = Duration::from_millis(20);

fn runtime() -> tokio::runtime::Runtime {
    // What the command line uses.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Registers `n` runners named r00000… on acme/app; their ids in order.
fn populate(sim: &Simulator, client: &Client, n: usize) -> Vec<i64> {
    runtime().block_on(async {
        let mut ids = vec![0; n];
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            if tasks.len() >= 32
                && let Some(done) = tasks.join_next().await
            {
                let (i, id) = done.unwrap();
                ids[i] = id;
            }
            let c = client.clone();
            tasks.spawn(async move {
                let body = serde_json::json!({
                    "runner_type": "project_type",
                    "project_id": 1001,
                    "description": format!("r{i:05}"),
                    "tag_list": ["docker"],
                });
                (i, c.create_runner(&body).await.unwrap().id)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, id) = done.unwrap();
            ids[i] = id;
        }
        let _ = sim;
        ids
    })
}

/// One in-process refresh of `ids` at concurrency `c`; its time and the pace's counters.
fn timed_refresh(
    client: &Client,
    ids: &[i64],
    c: usize,
) -> (Duration, runnerform::remote::PaceStats) {
    let paced = client.clone().with_pace(Pace::new(c));
    let q = Questions {
        namespaces: vec![("projects".into(), "acme/app".into())],
        runner_ids: ids.to_vec(),
        ..Questions::default()
    };
    let rt = runtime();
    let t = Instant::now();
    let view = rt.block_on(refresh(&paced, q, c)).unwrap();
    let took = t.elapsed();
    assert_eq!(view.runners.len(), ids.len());
    (took, paced.pace().unwrap().stats())
}

/// A directory with config.toml, the ownership record and a KDL file for the first `n`
/// runners, as an earlier apply would have left them.
fn host(url: &str, ids: &[i64]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::from("concurrent = 64\n");
    let mut kdl = format!(
        "gitlab \"{url}\" {{\n    token env=\"GITLAB_TOKEN\"\n}}\nconfig \"config.toml\"\n\
         defaults {{\n    project \"acme/app\"\n    executor \"docker\"\n    tags \"docker\"\n    docker {{\n        image \"alpine:3.20\"\n    }}\n}}\n"
    );
    let mut state = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let _ = write!(
            toml,
            "\n[[runners]]\n  name = \"r{i:05}\"\n  url = \"{url}\"\n  id = {id}\n  token = \"glrt-t1_benchbenchbench{i:05}\"\n  token_obtained_at = 2026-01-01T00:00:00Z\n  token_expires_at = 0001-01-01T00:00:00Z\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine:3.20\"\n"
        );
        let _ = writeln!(kdl, "runner \"r{i:05}\"");
        state.push(format!(
            "{{\"name\":\"r{i:05}\",\"url\":\"{url}\",\"id\":{id},\"scope\":\"project acme/app\"}}"
        ));
    }
    std::fs::write(dir.path().join("config.toml"), toml).unwrap();
    std::fs::write(dir.path().join("runners.kdl"), kdl).unwrap();
    std::fs::write(
        dir.path().join("runnerform-state.json"),
        format!(
            "{{\"format\":1,\"runners\":[{}],\"pending_deletes\":[]}}\n",
            state.join(",")
        ),
    )
    .unwrap();
    dir
}

/// `runnerform plan --json` in `dir`: its time and its own peak resident memory (MiB).
fn plan_process(dir: &std::path::Path, token: &str) -> (Duration, f64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runnerform"));
    cmd.args(["plan", "--json"])
        .current_dir(dir)
        .env("GITLAB_TOKEN", token);
    let (ok, took, peak) = measure::run_measured(&cmd);
    assert!(ok, "runnerform plan failed in {}", dir.display());
    (took, peak)
}

fn main() {
    let full = std::env::var_os("RUNNERFORM_BENCH_FULL").is_some();
    let sim = Simulator::start(SimOptions::default()).expect("simulator");
    let token = sim.admin_token();
    let client = Client::new(&ClientOptions {
        token: Some(token.clone()),
        ..ClientOptions::new(&sim.url())
    })
    .unwrap();
    let all = populate(&sim, &client, 10_000);

    sim.set_latency("*", LATENCY);
    println!(
        "refresh of N runners in-process (simulator, {LATENCY:?} latency per request); bound = N x RTT / C"
    );
    for (n, mut cs) in [
        (1_000, vec![DEFAULT_CONCURRENCY, 1, 8, 32]),
        (
            10_000,
            if full {
                vec![DEFAULT_CONCURRENCY, 1, 8, 32]
            } else {
                vec![DEFAULT_CONCURRENCY, 8, 32]
            },
        ),
    ] {
        // The default is one of the others: measured once.
        let mut seen = Vec::new();
        cs.retain(|c| {
            let fresh = !seen.contains(c);
            seen.push(*c);
            fresh
        });
        for c in cs {
            let (took, stats) = timed_refresh(&client, &all[..n], c);
            let bound = LATENCY * (n as u32) / (c as u32);
            let label = if c == DEFAULT_CONCURRENCY {
                format!("C = {c} (default)")
            } else {
                format!("C = {c}")
            };
            println!(
                "  N = {n:>6}, {label:<16} {took:>9.2?}  bound {bound:>8.2?}  ratio {:.2}x  (peak in flight {}, 429s {})",
                took.as_secs_f64() / bound.as_secs_f64(),
                stats.peak_in_flight,
                stats.throttled
            );
        }
    }

    println!("runnerform plan --json (whole process: read KDL and config.toml, refresh, plan)");
    for (n, latency) in [(1_000, LATENCY), (1_000, Duration::ZERO), (10_000, LATENCY)] {
        sim.set_latency("*", latency);
        let dir = host(&sim.url(), &all[..n]);
        let mut best = (Duration::MAX, 0.0f64);
        for _ in 0..3 {
            let (took, mib) = plan_process(dir.path(), &token);
            best = (best.0.min(took), best.1.max(mib));
        }
        println!(
            "  N = {n:>6}, latency {latency:>5?}, C = {DEFAULT_CONCURRENCY}: {:>9.2?} (min of 3), peak memory {:.1} MiB",
            best.0, best.1
        );
    }

    // A long refresh under GitLab's throttle: 1,000 requests against 300 per 2 s.
    sim.set_latency("*", LATENCY);
    let limit = RateLimit::new(300, Duration::from_secs(2));
    sim.set_rate_limit(Some(limit));
    sim.clear_requests();
    let n = 1_000;
    let (took, stats) = timed_refresh(&client, &all[..n], DEFAULT_CONCURRENCY);
    let throttled = sim
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    sim.set_rate_limit(None);
    // n + 1 requests fill this many windows; the first may be nearly over when the refresh
    // starts, so all but it and the last must pass in full.
    let windows = (n + 1).div_ceil(limit.requests as usize).saturating_sub(2);
    println!(
        "refresh of {n} runners under a rate limit of {} requests per {} s, {LATENCY:?} latency, C = {DEFAULT_CONCURRENCY}:",
        limit.requests, limit.period_seconds
    );
    println!(
        "  {took:.2?} (at least {windows} full windows must pass: {} s), {throttled} answers 429 (pace counted {}), window cut {} times",
        windows as u64 * limit.period_seconds,
        stats.throttled,
        stats.cuts
    );
}
