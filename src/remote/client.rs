//! HTTP to GitLab: authentication, retries, pagination.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::pace::{Outcome, Pace};
use super::{Cause, RemoteError};

/// 429s one paced request may draw before it is reported: pacing makes a second one rare,
/// and the bound keeps a GitLab that never lets up from holding a run forever.
const THROTTLED_ANSWERS: u32 = 20;

/// How transient failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First backoff; doubled on every retry, with up to 50% jitter.
    pub base: Duration,
    /// Longest single wait, also for `Retry-After`.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // gitlab-runner's own client gives up after 5 attempts.
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The GitLab instance, without `/api/v4`.
    pub url: String,
    /// Access token, sent as `PRIVATE-TOKEN`; never logged.
    pub token: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// Timeout of one request.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientOptions {
    pub fn new(url: &str) -> Self {
        ClientOptions {
            url: url.to_string(),
            token: None,
            ca_file: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    api: String,
    token: Option<String>,
    retry: RetryPolicy,
    observer: Option<Arc<dyn Observer>>,
    pace: Option<Arc<Pace>>,
}

/// One request to GitLab once it is over (retries included), as an [`Observer`] sees it. It
/// holds what was sent, never the access token; a request body may hold a runner token, so
/// whoever shows it masks it.
#[derive(Debug)]
pub struct Exchange<'a> {
    pub method: &'a Method,
    /// The path below `/api/v4`.
    pub path: &'a str,
    pub query: &'a [(&'a str, String)],
    pub body: Option<&'a Value>,
    /// GitLab's status, when it answered.
    pub status: Option<u16>,
    /// Why the request failed, when it did.
    pub error: Option<String>,
    /// Attempts made, when they were more than one or the request gave up.
    pub attempts: Option<u32>,
    pub elapsed: Duration,
}

/// Told of every request the client makes: how a front end logs requests (`-v`) and counts
/// progress, without the client knowing about terminals.
pub trait Observer: std::fmt::Debug + Send + Sync {
    fn exchanged(&self, exchange: &Exchange<'_>);
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// An answer from GitLab.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub next_page: Option<u32>,
}

impl Client {
    pub fn new(opts: &ClientOptions) -> Result<Client, RemoteError> {
        // reqwest is built without a default TLS provider; ring is the one compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder()
            .user_agent(format!("runnerform/{}", env!("CARGO_PKG_VERSION")))
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            // A redirect would carry PRIVATE-TOKEN (and runner tokens in bodies) to wherever
            // it points, and a 302 silently turns a POST into a GET. None is followed: the
            // answer is reported as GitLab gave it.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &opts.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                RemoteError::Setup(format!("cannot read CA file {}: {e}", ca.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RemoteError::Setup(format!("{} holds no PEM certificate: {e}", ca.display()))
            })?;
            b = b.tls_certs_merge(certs);
        }
        let http = b
            .build()
            .map_err(|e| RemoteError::Setup(format!("cannot set up HTTP: {e}")))?;
        let url = opts.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(RemoteError::Setup(format!("{url} is not an http(s) URL")));
        }
        if let Some(t) = &opts.token
            && let Some(problem) = token_problem(t)
        {
            return Err(RemoteError::Setup(problem));
        }
        Ok(Client {
            http,
            api: format!("{url}/api/v4"),
            token: opts.token.clone(),
            retry: opts.retry,
            observer: None,
            pace: None,
        })
    }

    /// Reports every request from now on to `observer` (clones made later share it).
    pub fn observe(&mut self, observer: Arc<dyn Observer>) {
        self.observer = Some(observer);
    }

    /// Paces every request this client (and its clones) sends: see [`Pace`].
    pub fn with_pace(mut self, pace: Arc<Pace>) -> Client {
        self.pace = Some(pace);
        self
    }

    pub fn pace(&self) -> Option<&Arc<Pace>> {
        self.pace.as_ref()
    }

    /// Sends one request, retrying transient failures. `Ok` for 2xx only; any other
    /// definite status is `RemoteError::Definite` with GitLab's message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, RemoteError> {
        self.observed(method, path, query, body, true).await
    }

    /// For requests that must not happen twice (registering a runner): retried only when
    /// GitLab cannot have acted on them (429, or no connection at all). A 5xx or a dropped
    /// answer may come after GitLab did the work, so it is reported, not repeated.
    pub async fn call_once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, RemoteError> {
        self.observed(method, path, query, body, false).await
    }

    /// [`Self::send`], reported to the observer once it is over.
    async fn observed(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        repeatable: bool,
    ) -> Result<Answer, RemoteError> {
        let Some(observer) = &self.observer else {
            return self.send(method, path, query, body, repeatable).await;
        };
        let started = Instant::now();
        let result = self
            .send(method.clone(), path, query, body, repeatable)
            .await;
        let (status, error, attempts) = match &result {
            Ok(a) => (Some(a.status), None, None),
            Err(e @ RemoteError::Definite { status, .. }) => {
                (Some(*status), Some(e.to_string()), None)
            }
            Err(e @ RemoteError::Transient { attempts, .. }) => {
                (None, Some(e.to_string()), Some(*attempts))
            }
            Err(e) => (None, Some(e.to_string()), None),
        };
        observer.exchanged(&Exchange {
            method: &method,
            path,
            query,
            body,
            status,
            error,
            attempts,
            elapsed: started.elapsed(),
        });
        result
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        repeatable: bool,
    ) -> Result<Answer, RemoteError> {
        let mut attempt = 0;
        // 429s under pacing that took no attempt.
        let mut spared = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.api))
                .query(query);
            if let Some(t) = &self.token {
                req = req.header("PRIVATE-TOKEN", t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let ticket = match &self.pace {
                Some(p) => Some(p.acquire().await),
                None => None,
            };
            let (wait, last, cause, safe) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if let Some(t) = ticket {
                        t.answered(Outcome::from_answer(status.as_u16(), resp.headers()));
                    }
                    if transient(status) {
                        let after = retry_after(&resp);
                        (
                            after,
                            format!("HTTP {}", status.as_u16()),
                            Cause::Status,
                            status.as_u16() == 429,
                        )
                    } else {
                        return self.answer(resp).await;
                    }
                }
                Err(e) if untrusted_certificate(&e) => {
                    return Err(RemoteError::Setup(format!(
                        "GitLab's TLS certificate is not trusted ({}): if a private CA signed \
                         it, add ca_file \"/path/to/ca.pem\" to the gitlab node",
                        chain(&e)
                    )));
                }
                Err(e) => {
                    let cause = cause_of(&e);
                    (None, describe(&e, cause), cause, e.is_connect())
                }
            };
            // Under pacing a 429 is GitLab asking to slow down, not a failure: it takes no
            // attempt, within a bound of its own.
            if self.pace.is_some() && cause == Cause::Status && safe && spared < THROTTLED_ANSWERS {
                spared += 1;
            }
            // A handshake in the wrong protocol fails the same way every time.
            let hopeless = cause == Cause::Tls;
            if attempt - spared >= self.retry.attempts || !(repeatable || safe) || hopeless {
                return Err(RemoteError::Transient {
                    attempts: attempt,
                    last,
                    cause,
                });
            }
            tokio::time::sleep(
                wait.unwrap_or_else(|| self.backoff(attempt))
                    .min(self.retry.cap),
            )
            .await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.retry.base.saturating_mul(1 << (attempt - 1).min(16));
        let jitter = jitter_fraction();
        exp.mul_f64(1.0 + jitter * 0.5).min(self.retry.cap)
    }

    async fn answer(&self, resp: reqwest::Response) -> Result<Answer, RemoteError> {
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            return Err(redirected(status, &resp));
        }
        let next_page = resp
            .headers()
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let text = resp.text().await.map_err(|e| RemoteError::Transient {
            attempts: 1,
            last: describe(&e, Cause::Dropped),
            cause: Cause::Dropped,
        })?;
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(_) if (200..300).contains(&status) => {
                    return Err(RemoteError::Malformed {
                        what: format!("a {status} answer that is not JSON"),
                    });
                }
                Err(_) => Value::String(text.trim().chars().take(200).collect()),
            }
        };
        if (200..300).contains(&status) {
            Ok(Answer {
                status,
                body,
                next_page,
            })
        } else {
            Err(RemoteError::Definite {
                status,
                message: crate::secrets::mask(&message_of(&body)),
            })
        }
    }

    /// Every page of a list endpoint.
    pub async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, RemoteError> {
        let mut out = Vec::new();
        let mut page = 1u32;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("per_page", "100".to_string()));
            let a = self.call(Method::GET, path, &q, None).await?;
            match a.body {
                Value::Array(items) => out.extend(items),
                _ => {
                    return Err(RemoteError::Malformed {
                        what: format!("{path} did not answer with a list"),
                    });
                }
            }
            match a.next_page {
                Some(n) if n > page => page = n,
                _ => return Ok(out),
            }
        }
    }
}

/// Why a token cannot be sent as an HTTP header, in words a user can act on.
fn token_problem(token: &str) -> Option<String> {
    let problem = if token.contains(['\n', '\r']) {
        "contains a line break (a trailing newline from `echo` or a file?)"
    } else if token.bytes().any(|b| b.is_ascii_control()) {
        "contains a control character"
    } else if !token.is_ascii() {
        "contains a character that is not ASCII"
    } else if token != token.trim() {
        "starts or ends with a space"
    } else {
        return None;
    };
    Some(format!(
        "the GitLab access token value {problem}; GitLab tokens are one line of ASCII letters, \
         digits, `-` and `_`: remove it where the token is set"
    ))
}

/// A 3xx answer, described without following it.
fn redirected(status: u16, resp: &reqwest::Response) -> RemoteError {
    let from = resp.url();
    let origin = from.origin().ascii_serialization();
    let to = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| {
            from.join(l)
                .map_or_else(|_| l.to_string(), |u| u.to_string())
        });
    let same = to
        .as_deref()
        .and_then(|t| reqwest::Url::parse(t).ok())
        .is_some_and(|u| u.origin().ascii_serialization() == origin);
    let message = match &to {
        Some(to) if same => format!(
            "a redirect to {to}; runnerform follows no redirect (a POST would become a GET): \
             set the gitlab URL to where GitLab is served"
        ),
        Some(to) => format!(
            "a redirect to {to}, another origin than {origin}; runnerform sends credentials only \
             to the declared GitLab and follows no redirect: if GitLab moved, set the gitlab URL \
             to its new address"
        ),
        None => "a redirect without a Location; runnerform follows no redirect".to_string(),
    };
    RemoteError::Definite {
        status,
        message: crate::secrets::mask(&message),
    }
}

fn transient(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 409 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (GitLab does not send HTTP dates there).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        out.push(err.to_string());
        cur = err.source();
    }
    out.last().cloned().unwrap_or_default()
}

/// A certificate that does not verify will not verify on a retry either.
fn untrusted_certificate(e: &reqwest::Error) -> bool {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("unknownissuer") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Which of the failures a person can tell apart this is. hyper and rustls wrap their errors
/// in io errors whose `source()` skips the inner error, so both the chain and each io error's
/// payload are looked at, and their words where no type says it.
fn cause_of(e: &reqwest::Error) -> Cause {
    if e.is_timeout() {
        return Cause::Timeout;
    }
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return Cause::Tls;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Cause::Refused,
                std::io::ErrorKind::TimedOut => return Cause::Timeout,
                _ => {}
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return Cause::Tls;
            }
        }
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return Cause::Dns;
        }
        if text.contains("connection refused") {
            return Cause::Refused;
        }
        if text.contains("corrupt message") || text.contains("handshake") {
            return Cause::Tls;
        }
        cur = err.source();
    }
    if e.is_connect() {
        Cause::Connect
    } else if e.is_body() || e.is_decode() {
        Cause::Dropped
    } else {
        Cause::Connect
    }
}

fn describe(e: &reqwest::Error, cause: Cause) -> String {
    match cause {
        Cause::Timeout => "timed out".into(),
        Cause::Refused => "connection refused".into(),
        Cause::Dns => "the host name does not resolve".into(),
        Cause::Tls => format!("the TLS handshake failed: {}", chain(e)),
        Cause::Dropped => "the connection dropped while reading the answer".into(),
        Cause::Status => "GitLab answered with an error".into(),
        Cause::Connect if e.is_connect() => "could not connect".into(),
        Cause::Connect => "the connection failed".into(),
    }
}

/// GitLab's error bodies: `{"message": "..."}`, `{"message": {"field": ["..."]}}`,
/// `{"error": "...", "error_description": "..."}`, or plain text.
fn message_of(body: &Value) -> String {
    match body {
        Value::Object(o) => {
            if let Some(m) = o.get("message") {
                return match m {
                    Value::String(s) => s.clone(),
                    Value::Object(fields) => fields
                        .iter()
                        .map(|(k, v)| {
                            let msgs: Vec<String> = v
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|x| x.as_str().map(str::to_string))
                                        .collect()
                                })
                                .unwrap_or_default();
                            format!("{k} {}", msgs.join(", "))
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                    other => other.to_string(),
                };
            }
            match (o.get("error"), o.get("error_description")) {
                (Some(e), Some(d)) => format!(
                    "{}: {}",
                    e.as_str().unwrap_or_default(),
                    d.as_str().unwrap_or_default()
                ),
                (Some(e), None) => e.as_str().unwrap_or_default().to_string(),
                _ => body.to_string(),
            }
        }
        Value::String(s) => s.clone(),
        Value::Null => "(no body)".into(),
        other => other.to_string(),
    }
}

/// A fraction in [0, 1) for backoff jitter; quality does not matter, spread does.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() % 10_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_error_bodies_become_one_line() {
        let v: Value = serde_json::json!({"message": "403 Forbidden - Insufficient permissions"});
        assert_eq!(message_of(&v), "403 Forbidden - Insufficient permissions");
        let v = serde_json::json!({"message": {"tags_list": ["can not be empty when runner is not allowed to pick untagged jobs"]}});
        assert_eq!(
            message_of(&v),
            "tags_list can not be empty when runner is not allowed to pick untagged jobs"
        );
        let v =
            serde_json::json!({"error": "insufficient_scope", "error_description": "needs api"});
        assert_eq!(message_of(&v), "insufficient_scope: needs api");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = Client::new(&ClientOptions {
            retry: RetryPolicy {
                attempts: 5,
                base: Duration::from_millis(100),
                cap: Duration::from_millis(500),
            },
            ..ClientOptions::new("http://127.0.0.1:9")
        })
        .unwrap();
        let b1 = c.backoff(1);
        let b3 = c.backoff(3);
        assert!(b1 >= Duration::from_millis(100) && b1 < Duration::from_millis(151));
        assert!(b3 >= Duration::from_millis(400) && b3 <= Duration::from_millis(500));
        assert_eq!(c.backoff(10), Duration::from_millis(500));
    }
}
