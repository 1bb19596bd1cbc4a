//! Load: 64 concurrent clients create and delete 10,000 runners in total. Afterwards every id
//! is unique and every token worked exactly until its runner was deleted or its token reset.
//!
//! Each client is one keep-alive HTTP/1.1 connection driven by hand: a general-purpose client
//! costs more CPU per request in a debug build than the simulator does, and on a two-core
//! machine the test would mostly measure the client.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use runnerform::sim::{SimOptions, Simulator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CLIENTS: usize = 64;
const RUNNERS: usize = 10_000;

struct Conn(BufReader<TcpStream>);

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).unwrap();
        Conn(BufReader::new(s))
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = token
            .map(|t| format!("PRIVATE-TOKEN: {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.0
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("write");
        let mut line = String::new();
        self.0.read_line(&mut line).await.expect("status line");
        let status: u16 = line
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut len = 0;
        loop {
            let mut h = String::new();
            self.0.read_line(&mut h).await.expect("header");
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().expect("content-length");
            }
        }
        let mut buf = vec![0; len];
        self.0.read_exact(&mut buf).await.expect("body");
        (status, serde_json::from_slice(&buf).unwrap_or(Value::Null))
    }

    async fn verify(&mut self, token: &str) -> u16 {
        self.call(
            "POST",
            "/api/v4/runners/verify",
            None,
            Some(json!({"token": token})),
        )
        .await
        .0
    }
}

/// What became of one runner.
#[derive(Debug, Clone)]
enum Fate {
    Kept,
    DeletedById,
    DeletedByToken,
    /// Its first token was replaced by this one.
    Reset(String),
}

#[derive(Debug, Clone)]
struct Outcome {
    id: u64,
    token: String,
    fate: Fate,
}

/// One runner in eight is also checked over HTTP right before and after what happens to it.
fn checked_over_http(n: usize) -> bool {
    n % 32 < 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_leave_a_consistent_state() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let admin = sim.admin_token();
    let app = sim.project_id("acme/app").unwrap();
    let addr = sim.addr();
    let started = Instant::now();

    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CLIENTS {
        let admin = admin.clone();
        tasks.spawn(async move {
            let mut c = Conn::open(addr).await;
            let mut out = Vec::new();
            for n in (worker..RUNNERS).step_by(CLIENTS) {
                let body = if n % 3 == 0 {
                    json!({"runner_type": "instance_type", "tag_list": [format!("w{worker}")]})
                } else {
                    json!({"runner_type": "project_type", "project_id": app, "description": format!("r{n}")})
                };
                let (status, b) = c.call("POST", "/api/v4/user/runners", Some(&admin), Some(body)).await;
                assert_eq!(status, 201, "{b}");
                let id = b["id"].as_u64().unwrap();
                let token = b["token"].as_str().unwrap().to_string();
                let check = checked_over_http(n);
                if check {
                    assert_eq!(c.verify(&token).await, 200);
                }
                let fate = match n % 4 {
                    0 => Fate::Kept,
                    1 => {
                        let (s, b) = c.call("DELETE", &format!("/api/v4/runners/{id}"), Some(&admin), None).await;
                        assert_eq!(s, 204, "{b}");
                        Fate::DeletedById
                    }
                    2 => {
                        let (s, b) = c.call("DELETE", "/api/v4/runners", None, Some(json!({"token": token}))).await;
                        assert_eq!(s, 204, "{b}");
                        Fate::DeletedByToken
                    }
                    _ => {
                        let (s, b) = c
                            .call("POST", "/api/v4/runners/reset_authentication_token", None, Some(json!({"token": token})))
                            .await;
                        assert_eq!(s, 201, "{b}");
                        Fate::Reset(b["token"].as_str().unwrap().to_string())
                    }
                };
                if check {
                    let old_valid = matches!(fate, Fate::Kept);
                    assert_eq!(c.verify(&token).await, if old_valid { 200 } else { 403 }, "runner {id}");
                    if let Fate::Reset(new) = &fate {
                        assert_eq!(c.verify(new).await, 200, "runner {id}");
                    }
                }
                out.push(Outcome { id, token, fate });
            }
            out
        });
    }
    let mut outcomes = Vec::with_capacity(RUNNERS);
    while let Some(r) = tasks.join_next().await {
        outcomes.extend(r.expect("client task"));
    }
    let elapsed = started.elapsed();
    assert_eq!(outcomes.len(), RUNNERS);

    let unique: HashSet<u64> = outcomes.iter().map(|o| o.id).collect();
    assert_eq!(unique.len(), RUNNERS, "every created runner got its own id");
    let tokens: HashSet<&str> = outcomes.iter().map(|o| o.token.as_str()).collect();
    assert_eq!(tokens.len(), RUNNERS, "every token is unique");

    // Every token, in process: the lookup the runner endpoints use.
    let stored: HashMap<u64, _> = sim.runners().into_iter().map(|r| (r.id, r)).collect();
    let mut kept = 0;
    for o in &outcomes {
        match &o.fate {
            Fate::Kept => {
                kept += 1;
                assert!(stored.contains_key(&o.id));
                assert_eq!(sim.runner_for_token(&o.token), Some(o.id));
            }
            Fate::Reset(new) => {
                kept += 1;
                assert!(stored.contains_key(&o.id));
                assert_eq!(
                    sim.runner_for_token(&o.token),
                    None,
                    "old token of {}",
                    o.id
                );
                assert_eq!(sim.runner_for_token(new), Some(o.id));
            }
            Fate::DeletedById | Fate::DeletedByToken => {
                assert!(
                    !stored.contains_key(&o.id),
                    "runner {} survived its delete",
                    o.id
                );
                assert_eq!(sim.runner_for_token(&o.token), None);
            }
        }
    }
    assert_eq!(
        stored.len(),
        kept,
        "no runner exists that no client created"
    );
    assert_eq!(kept, RUNNERS / 2);

    let mut c = Conn::open(addr).await;
    let (s, _) = c
        .call(
            "GET",
            "/api/v4/runners/all?per_page=100&page=50",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let log = sim.requests();
    assert!(
        log.iter().all(|r| r.status.is_some_and(|s| s < 500)),
        "no server errors"
    );
    let changes = log.iter().filter(|r| r.changed).count();
    assert!(
        changes >= RUNNERS * 7 / 4,
        "every create and every delete or reset changed state"
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "load took {elapsed:?}; something is serialising badly"
    );
    eprintln!(
        "{RUNNERS} runners by {CLIENTS} clients in {elapsed:?} ({} requests)",
        log.len()
    );
}
