//! Injected trouble: latency, error statuses, rate limiting, dropped connections and broken
//! JSON, each for requests whose path matches a pattern and for a set number of times.
//!
//! A fault fires before the request reaches the simulated GitLab (nothing changes), or with
//! `after` once GitLab has handled it: the change is made and the answer is lost, which is
//! how a client learns whether it can survive a proxy error after a successful create.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// An error status: 500 as Rails answers it (JSON), 502/503/504 as a proxy does (HTML).
    Status { status: u16 },
    /// 429 from GitLab's own limiter or migration backoff: JSON `message` + `Retry-After`.
    RateLimited { retry_after: u64 },
    /// 429 from Rack::Attack throttling: plain `Retry later` + `RateLimit-*` headers.
    Throttled { retry_after: u64 },
    /// The connection closes without an answer.
    Drop,
    /// A 200 whose JSON body is cut short.
    MalformedJson,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// `GET`, `POST`, ...; any method when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// The request path, `*` matching any run of characters: `/api/v4/runners/*`.
    pub path: String,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many matching requests it hits before it is used up.
    #[serde(default = "one")]
    pub times: u32,
    /// Let GitLab handle the request first, then spoil the response.
    #[serde(default)]
    pub after: bool,
    /// Let this many matching requests through untouched before the fault starts.
    #[serde(default)]
    pub skip: u32,
}

impl Fault {
    pub fn new(path: &str, kind: FaultKind) -> Self {
        Fault {
            method: None,
            path: path.into(),
            kind,
            times: 1,
            after: false,
            skip: 0,
        }
    }

    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_ascii_uppercase());
        self
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    pub fn after(mut self) -> Self {
        self.after = true;
        self
    }

    /// Spares the first `n` matching requests.
    pub fn after_first(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && glob(&self.path, path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub path: String,
    pub millis: u64,
}

#[derive(Debug, Default)]
pub struct Faults {
    pending: Vec<Fault>,
    latency: Vec<Latency>,
}

impl Faults {
    pub fn add(&mut self, f: Fault) {
        if f.times > 0 {
            self.pending.push(f);
        }
    }

    pub fn clear(&mut self) {
        self.pending.clear();
        self.latency.clear();
    }

    pub fn clear_latency(&mut self) {
        self.latency.clear();
    }

    pub fn pending(&self) -> Vec<Fault> {
        self.pending.clone()
    }

    pub fn set_latency(&mut self, l: Latency) {
        self.latency.retain(|x| x.path != l.path);
        if l.millis > 0 {
            self.latency.push(l);
        }
    }

    pub fn latency(&self) -> Vec<Latency> {
        self.latency.clone()
    }

    /// The longest delay configured for a path.
    pub fn delay_for(&self, path: &str) -> Option<Duration> {
        self.latency
            .iter()
            .filter(|l| glob(&l.path, path))
            .map(|l| Duration::from_millis(l.millis))
            .max()
    }

    /// Uses up one shot of the first fault matching the request.
    pub fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let i = self.pending.iter().position(|f| f.matches(method, path))?;
        let f = &mut self.pending[i];
        if f.skip > 0 {
            f.skip -= 1;
            return None;
        }
        f.times -= 1;
        let fired = f.clone();
        if f.times == 0 {
            self.pending.remove(i);
        }
        Some(fired)
    }
}

/// `*` matches any run of characters (slashes included); everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_segments_and_tails() {
        assert!(glob("/api/v4/runners/*", "/api/v4/runners/12"));
        assert!(glob("*", "/anything"));
        assert!(glob(
            "/api/v4/*/runners",
            "/api/v4/projects/acme%2Fapp/runners"
        ));
        assert!(!glob("/api/v4/runners", "/api/v4/runners/12"));
        assert!(!glob("/api/v4/user/runners", "/api/v4/user"));
    }

    #[test]
    fn faults_are_used_up_in_order() {
        let mut f = Faults::default();
        f.add(Fault::new("/a", FaultKind::Drop).times(2).method("post"));
        assert_eq!(f.take("GET", "/a"), None);
        assert!(f.take("POST", "/a").is_some());
        assert!(f.take("POST", "/a").is_some());
        assert_eq!(f.take("POST", "/a"), None);
    }
}
