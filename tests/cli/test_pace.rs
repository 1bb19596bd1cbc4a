//! Politeness to GitLab: a plan under GitLab's rate limit paces itself to the announced quota
//! instead of drawing a 429 per request in flight, a slow GitLab makes it keep fewer requests
//! in flight, and throttling alone never fails a run. Counts come from the simulator's
//! request log, never from timing.

use std::fmt::Write;
use std::time::Duration;

use reqwest::Method;
use runnerform::remote::{Client, ClientOptions};
use runnerform::sim::{Fault, FaultKind, LoggedRequest, RateLimit, SimOptions, Simulator};
use serde_json::json;

use crate::common::TestEnvironment;
use crate::test_sim::Client as Http;

/// A host whose config.toml, ownership record and KDL file hold `n` runners registered on
/// the simulator, as an earlier apply left them.
fn fleet(sim: &Simulator, n: usize) -> TestEnvironment {
    let client = Client::new(&ClientOptions {
        token: Some(sim.admin_token()),
        ..ClientOptions::new(&sim.url())
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ids: Vec<i64> = rt.block_on(async {
        let mut ids = Vec::new();
        for i in 0..n {
            let body = json!({
                "runner_type": "project_type",
                "project_id": 1001,
                "description": format!("r{i:03}"),
                "tag_list": ["docker"],
            });
            ids.push(client.create_runner(&body).await.unwrap().id);
        }
        ids
    });
    let url = sim.url();
    let mut toml = String::from("concurrent = 4\n");
    let mut kdl = format!(
        "gitlab \"{url}\" {{\n    token env=\"GITLAB_TOKEN\"\n}}\nconfig \"config.toml\"\n\
         defaults {{\n    project \"acme/app\"\n    executor \"shell\"\n    tags \"docker\"\n}}\n"
    );
    let mut state = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let _ = write!(
            toml,
            "\n[[runners]]\n  name = \"r{i:03}\"\n  url = \"{url}\"\n  id = {id}\n  token = \"glrt-t1_paceTESTpaceTEST{i:03}\"\n  executor = \"shell\"\n"
        );
        let _ = writeln!(kdl, "runner \"r{i:03}\"");
        state.push(
            json!({"name": format!("r{i:03}"), "url": url, "id": id, "scope": "project acme/app"}),
        );
    }
    let mut env = TestEnvironment::new();
    env.write("config.toml", &toml);
    env.write("runners.kdl", &kdl);
    env.write(
        "runnerform-state.json",
        &json!({"format": 1, "runners": state, "pending_deletes": []}).to_string(),
    );
    env.set_env("GITLAB_TOKEN", &sim.admin_token());
    env
}

fn runner_reads(log: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    log.iter()
        .filter(|r| {
            r.method == "GET"
                && r.path
                    .strip_prefix("/api/v4/runners/")
                    .is_some_and(|id| id.parse::<u64>().is_ok())
        })
        .collect()
}

#[test]
fn a_plan_of_200_runners_under_a_limit_of_60_requests_per_2_seconds_draws_at_most_8_throttled_answers()
 {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let env = fleet(&sim, 200);
    sim.set_rate_limit(Some(RateLimit::new(60, Duration::from_secs(2))));
    sim.clear_requests();

    let out = env.run(&["plan", "--json"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["runners"].as_array().unwrap().len(), 200);

    let log = sim.requests();
    let throttled = log.iter().filter(|r| r.status == Some(429)).count();
    assert!(
        throttled <= 8,
        "{throttled} answers were 429 out of {} requests",
        log.len()
    );
    // Every runner was read, and the limit was really in force: more requests were made than
    // one window allows.
    let read: Vec<_> = runner_reads(&log)
        .into_iter()
        .filter(|r| r.status == Some(200))
        .collect();
    assert_eq!(read.len(), 200);
    assert!(log.len() > 60);
}

#[test]
fn a_slow_gitlab_makes_the_refresh_keep_fewer_requests_in_flight_instead_of_piling_them_up() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let env = fleet(&sim, 200);
    // Two workers, 20 ms each: 32 requests in flight would wait 320 ms for an answer.
    sim.set_workers(Some(2));
    sim.set_latency("*", Duration::from_millis(20));
    sim.clear_requests();

    let out = env.run(&["plan", "--concurrency", "32"]);
    assert_eq!(out.code, 0, "{}", out.combined());

    let log = sim.requests();
    let reads = runner_reads(&log);
    assert_eq!(reads.len(), 200);
    // Once the latency is noticed, the client presses far less than its cap of 32.
    let mut late: Vec<u32> = reads[100..].iter().map(|r| r.in_flight).collect();
    late.sort_unstable();
    let median = late[late.len() / 2];
    let most = late[late.len() - 1];
    assert!(
        median <= 8 && most <= 16,
        "requests in flight at arrival over the last 100 reads: median {median}, most {most}"
    );
}

#[test]
fn a_runner_read_refused_with_429_more_often_than_the_retry_attempts_still_plans() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let env = fleet(&sim, 3);
    let id = sim.runners()[1].id;
    let path = format!("/api/v4/runners/{id}");
    // GitLab's own limiter (JSON body, Retry-After, no RateLimit-* headers), seven times in a
    // row for one runner: more than the five attempts a failing request gets.
    sim.inject(
        Fault::new(&path, FaultKind::RateLimited { retry_after: 0 })
            .method("GET")
            .times(7),
    );
    sim.clear_requests();

    let out = env.run(&["plan"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let statuses: Vec<Option<u16>> = sim
        .requests()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.status)
        .collect();
    let mut expected = vec![Some(429); 7];
    expected.push(Some(200));
    assert_eq!(statuses, expected);
}

#[tokio::test]
async fn the_rate_limit_control_endpoint_throttles_each_token_with_gitlabs_headers() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let c = Http::new(&sim.url());
    let admin = sim.admin_token();
    let (_, other) = sim.user_with_token("ci", &["api"]).unwrap();
    c.send(
        Method::PUT,
        "/-/sim/rate_limit",
        None,
        Some(json!({"requests": 3, "period_seconds": 60})),
    )
    .await
    .expect(200);
    assert_eq!(
        sim.rate_limit(),
        Some(RateLimit::new(3, Duration::from_secs(60)))
    );

    // Windows are aligned to the minute: wait out a window that is about to end, so all
    // four requests fall into one.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    if now.as_secs() % 60 > 55 {
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    for left in [2, 1, 0] {
        let r = c.get("/api/v4/version", &admin).await;
        r.expect(200);
        assert_eq!(r.header("ratelimit-remaining"), left.to_string());
        assert_eq!(r.header("ratelimit-limit"), "3");
        assert_eq!(r.header("ratelimit-name"), "throttle_authenticated_api");
        assert!(r.headers.get("retry-after").is_none());
    }
    let r = c.get("/api/v4/version", &admin).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.text, "Retry later\n");
    assert_eq!(r.header("ratelimit-observed"), "4");
    assert_eq!(r.header("ratelimit-remaining"), "0");
    let reset: i64 = r.header("ratelimit-reset").parse().unwrap();
    assert_eq!(reset % 60, 0);
    let retry_after: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(r.header("ratelimit-resettime").ends_with(" GMT"));

    // Another token has a quota of its own.
    c.get("/api/v4/version", &other).await.expect(200);
    let logged = sim.requests();
    assert_eq!(logged.last().unwrap().status, Some(200));
    assert_eq!(
        logged
            .iter()
            .filter(|r| r.fault.as_deref() == Some("rate limit"))
            .count(),
        1
    );

    c.send(Method::DELETE, "/-/sim/rate_limit", None, None)
        .await
        .expect(200);
    let r = c.get("/api/v4/version", &admin).await;
    r.expect(200);
    assert!(r.headers.get("ratelimit-remaining").is_none());
    c.send(
        Method::PUT,
        "/-/sim/rate_limit",
        None,
        Some(json!({"requests": 0, "period_seconds": 60})),
    )
    .await
    .expect(400);
}
