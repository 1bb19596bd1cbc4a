//! What happens around every GitLab API request: injected latency and faults, and the
//! request log tests read (tokens masked, never raw).

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Shared;
use super::auth;
use super::clock;
use super::faults::{Fault, FaultKind};
use super::server::Connection;
use crate::secrets::mask;

/// Requests kept in the log; older ones fall off so a long-running simulator stays bounded.
pub const LOG_CAPACITY: usize = 100_000;

/// The prefix of the simulator's own control endpoints, which are neither faulted nor logged.
pub const CONTROL_PREFIX: &str = "/-/sim";

tokio::task_local! {
    /// Set by [`Shared::with`] when the request changed the simulated GitLab.
    pub(crate) static CHANGED: Cell<bool>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub seq: u64,
    pub method: String,
    /// Path and query, with anything token-like masked.
    pub path: String,
    /// `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    /// POST, PUT, PATCH or DELETE.
    pub write: bool,
    /// The request changed the simulated GitLab's state.
    pub changed: bool,
    /// The injected fault that shaped the answer, if any (`rate limit` for a request the
    /// simulator's rate limit rejected).
    pub fault: Option<String>,
    /// API requests in progress when it arrived, itself included (those waiting for a
    /// worker count): how hard the client was pressing.
    #[serde(default)]
    pub in_flight: u32,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    next_seq: u64,
    entries: VecDeque<LoggedRequest>,
}

impl RequestLog {
    fn push(&mut self, mut e: LoggedRequest) -> LoggedRequest {
        self.next_seq += 1;
        e.seq = self.next_seq;
        if self.entries.len() == LOG_CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(e.clone());
        e
    }

    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.entries.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The path and query as shown in the log: token parameters blanked, token-shaped text
/// masked.
pub fn shown_target(uri: &Uri) -> String {
    let path = uri.path();
    let Some(q) = uri.query() else {
        return mask(path);
    };
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        if matches!(&*k, "private_token" | "access_token" | "token") {
            out.append_pair(&k, "[MASKED]");
        } else {
            out.append_pair(&k, &v);
        }
    }
    mask(&format!("{path}?{}", out.finish()))
}

fn is_write(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

fn fault_name(f: &Fault) -> String {
    let when = if f.after { " (after handling)" } else { "" };
    match &f.kind {
        FaultKind::Status { status } => format!("status {status}{when}"),
        FaultKind::RateLimited { retry_after } => format!("rate_limited {retry_after}s{when}"),
        FaultKind::Throttled { retry_after } => format!("throttled {retry_after}s{when}"),
        FaultKind::Drop => format!("drop{when}"),
        FaultKind::MalformedJson => format!("malformed_json{when}"),
    }
}

fn status_response(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = code.canonical_reason().unwrap_or("Error");
    match status {
        // What nginx or Workhorse in front of Rails sends.
        502..=504 => (
            code,
            [(header::CONTENT_TYPE, "text/html")],
            format!(
                "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
            ),
        )
            .into_response(),
        _ => (code, axum::Json(json!({ "message": format!("{status} {reason}") }))).into_response(),
    }
}

fn rate_limited(retry_after: u64) -> Response {
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({
            "message": "This endpoint has been requested too many times. Try again later."
        })),
    )
        .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    res
}

fn throttled(retry_after: u64) -> Response {
    let reset = clock::wall_ms() + retry_after as i64 * 1000;
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "text/plain")],
        "Retry later\n",
    )
        .into_response();
    let h = res.headers_mut();
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set("ratelimit-name", "throttle_authenticated_api".into());
    set("ratelimit-limit", "7200".into());
    set("ratelimit-observed", "7201".into());
    set("ratelimit-remaining", "0".into());
    set("ratelimit-reset", (reset / 1000).to_string());
    set("ratelimit-resettime", clock::http_date(reset));
    set("retry-after", retry_after.to_string());
    res
}

/// A 200 whose JSON stops half way; built from the real answer when there is one.
async fn malformed(real: Option<Response>) -> Response {
    let bytes = match real {
        Some(r) => to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap_or_default(),
        None => axum::body::Bytes::from_static(b"{\"message\":\"ok\"}"),
    };
    let cut = (bytes.len() / 2).max(1).min(bytes.len());
    let mut res = Response::new(Body::from(bytes.slice(..cut)));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicU32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What GitLab's Rack::Attack answers a throttled request with: plain text.
fn over_the_limit() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "text/plain")],
        "Retry later\n",
    )
        .into_response()
}

/// Answers as the fault says, or `None` when the connection is to be dropped.
async fn faulted(f: &Fault, real: Option<Response>) -> Option<Response> {
    Some(match f.kind {
        FaultKind::Status { status } => status_response(status),
        FaultKind::RateLimited { retry_after } => rate_limited(retry_after),
        FaultKind::Throttled { retry_after } => throttled(retry_after),
        FaultKind::MalformedJson => malformed(real).await,
        FaultKind::Drop => return None,
    })
}

pub async fn observe(State(app): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with(CONTROL_PREFIX) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let shown = shown_target(req.uri());
    let conn = req.extensions().get::<Connection>().cloned();
    let in_flight = app.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _counted = InFlight(&app.in_flight);
    let worker = super::lock(&app.workers).semaphore();
    let _worker = match worker {
        Some(w) => w.acquire_owned().await.ok(),
        None => None,
    };

    let delay = super::lock(&app.faults).delay_for(&path);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let key = auth::token_of(req.headers(), req.uri()).unwrap_or_else(|| {
        conn.as_ref()
            .map_or_else(|| "unknown peer".to_string(), |c| c.peer.ip().to_string())
    });
    let quota = super::lock(&app.limiter).count(&key, clock::wall_ms());
    let limited = quota.as_ref().is_some_and(|q| !q.allowed);
    let fault = if limited {
        None
    } else {
        super::lock(&app.faults).take(method.as_str(), &path)
    };

    let (response, changed) = match &fault {
        _ if limited => (Some(over_the_limit()), false),
        Some(f) if !f.after => (faulted(f, None).await, false),
        _ => {
            let (real, changed) = CHANGED
                .scope(Cell::new(false), async {
                    let r = next.run(req).await;
                    (r, CHANGED.with(Cell::get))
                })
                .await;
            match &fault {
                Some(f) => (faulted(f, Some(real)).await, changed),
                None => (Some(real), changed),
            }
        }
    };

    let response = response.map(|mut r| {
        if let Some(q) = &quota {
            q.write_headers(r.headers_mut());
        }
        r
    });

    let entry = super::lock(&app.log).push(LoggedRequest {
        seq: 0,
        method: method.to_string(),
        path: shown,
        status: response.as_ref().map(|r| r.status().as_u16()),
        write: is_write(&method),
        changed,
        fault: if limited {
            Some("rate limit".to_string())
        } else {
            fault.as_ref().map(fault_name)
        },
        in_flight,
    });
    if app.echo_requests {
        let status = entry
            .status
            .map_or_else(|| "dropped".to_string(), |s| s.to_string());
        let fault = entry
            .fault
            .as_deref()
            .map(|f| format!(" [fault: {f}]"))
            .unwrap_or_default();
        eprintln!("{} {} -> {status}{fault}", entry.method, entry.path);
    }

    match response {
        Some(r) => r,
        None => {
            match conn {
                Some(c) => c.drop_now(),
                // Without our accept loop there is no connection to close; a bare 502 is
                // the nearest thing a client can observe.
                None => return status_response(502),
            }
            std::future::pending().await
        }
    }
}
