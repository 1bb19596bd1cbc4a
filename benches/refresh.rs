//! Measures the refresh of an online plan for 1,000 runners against the simulator with 20 ms
//! of latency on every request: bounded concurrency against one request at a time, in the
//! same run. Prints the figures and the ratio; asserts nothing about time.
//!
//! Run with: cargo bench --bench refresh

use std::time::{Duration, Instant};

use runnerform::remote::{Client, ClientOptions, Questions, refresh};
use runnerform::sim::{SimOptions, Simulator};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNNERS: usize = 1000;
const LATENCY: Duration = Duration::from_millis(20);

fn main() {
    let sim = Simulator::start(SimOptions::default()).expect("simulator");
    let client = Client::new(&ClientOptions {
        token: Some(sim.admin_token()),
        ..ClientOptions::new(&sim.url())
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ids = Vec::new();
    rt.block_on(async {
        for i in 0..RUNNERS {
            let body = serde_json::json!({
                "runner_type": "project_type",
                "project_id": 1001,
                "description": format!("r{i}"),
                "tag_list": ["docker"],
            });
            ids.push(client.create_runner(&body).await.unwrap().id);
        }
    });
    sim.set_latency("*", LATENCY);
    let questions = || Questions {
        namespaces: vec![("projects".into(), "acme/app".into())],
        runner_ids: ids.clone(),
        ..Questions::default()
    };
    let mut results = Vec::new();
    for concurrency in [16usize, 1] {
        let t = Instant::now();
        let view = rt
            .block_on(refresh(&client, questions(), concurrency))
            .unwrap();
        let took = t.elapsed();
        assert_eq!(view.runners.len(), RUNNERS);
        results.push((concurrency, took));
    }
    println!("refresh of {RUNNERS} runners, {LATENCY:?} latency per request (simulator)");
    for (c, took) in &results {
        println!("  concurrency {c:>2}: {took:.2?}");
    }
    let ratio = results[1].1.as_secs_f64() / results[0].1.as_secs_f64();
    println!("  one-at-a-time / concurrent: {ratio:.1}x");
}
