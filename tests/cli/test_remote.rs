//! runnerform's GitLab client against the simulator over real HTTP: what is retried, what is
//! final, and how long it waits.

use std::time::{Duration, Instant};

use reqwest::Method;
use runnerform::remote::{Client, ClientOptions, RemoteError, RetryPolicy};
use runnerform::sim::{Fault, FaultKind, SimOptions, Simulator};

fn client(sim: &Simulator, attempts: u32) -> Client {
    Client::new(&ClientOptions {
        token: Some(sim.admin_token()),
        retry: RetryPolicy {
            attempts,
            base: Duration::from_millis(20),
            cap: Duration::from_secs(3),
        },
        ..ClientOptions::new(&sim.url())
    })
    .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn server_errors_and_dropped_connections_are_retried_until_an_answer() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let c = client(&sim, 5);
    sim.inject(Fault::new("/api/v4/version", FaultKind::Status { status: 502 }).times(2));
    sim.inject(Fault::new("/api/v4/version", FaultKind::Drop));
    let a = rt()
        .block_on(c.call(Method::GET, "/version", &[], None))
        .unwrap();
    assert_eq!(a.status, 200);
    assert!(a.body["version"].is_string());
    let hits = sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/v4/version"))
        .count();
    assert_eq!(hits, 4, "two 502s, one drop, one answer");
}

#[test]
fn retry_after_is_honoured() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let c = client(&sim, 3);
    sim.inject(Fault::new(
        "/api/v4/version",
        FaultKind::RateLimited { retry_after: 1 },
    ));
    let t = Instant::now();
    let a = rt()
        .block_on(c.call(Method::GET, "/version", &[], None))
        .unwrap();
    assert_eq!(a.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        t.elapsed()
    );
}

#[test]
fn definite_answers_are_final_and_never_retried() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let c = client(&sim, 5);
    let err = rt()
        .block_on(c.call(Method::GET, "/runners/999999", &[], None))
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(err.is_definitely_gone());
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(sim.requests().len(), 1);
}

#[test]
fn persistent_failures_are_transient_errors_not_definite_ones() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let c = client(&sim, 3);
    sim.inject(Fault::new("/api/v4/runners/*", FaultKind::Status { status: 503 }).times(10));
    let err = rt()
        .block_on(c.call(Method::GET, "/runners/1", &[], None))
        .unwrap_err();
    assert!(
        matches!(err, RemoteError::Transient { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(
        !err.is_definitely_gone(),
        "a 503 must never lead to a delete"
    );
}

#[test]
fn a_malformed_success_is_reported_as_such() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let c = client(&sim, 2);
    sim.inject(Fault::new("/api/v4/version", FaultKind::MalformedJson));
    let err = rt()
        .block_on(c.call(Method::GET, "/version", &[], None))
        .unwrap_err();
    assert!(matches!(err, RemoteError::Malformed { .. }), "{err:?}");
}

#[test]
fn lists_follow_every_page() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let c = client(&sim, 2);
    let rt = rt();
    for i in 0..130 {
        let body =
            serde_json::json!({"runner_type": "instance_type", "description": format!("r{i}")});
        rt.block_on(c.call(Method::POST, "/user/runners", &[], Some(&body)))
            .unwrap();
    }
    let all = rt.block_on(c.list_all("/runners/all", &[])).unwrap();
    assert_eq!(all.len(), 130);
    let pages = sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/v4/runners/all"))
        .count();
    assert_eq!(pages, 2, "100 per page");
}
