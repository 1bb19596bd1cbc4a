//! GitLab's throttles, as the simulator enforces them: a fixed-window rate limit per access
//! token, and a bounded number of workers serving the API.
//!
//! The rate limit behaves like GitLab's Rack::Attack throttles (`throttle_authenticated_api`):
//! requests are counted per token (per peer address without one) in fixed windows aligned to
//! the Unix epoch; every answer carries `RateLimit-Name`, `RateLimit-Limit` (the quota per
//! minute), `RateLimit-Observed`, `RateLimit-Remaining` and `RateLimit-Reset` (Unix seconds);
//! a request over the quota is answered 429 `Retry later` with `RateLimit-ResetTime` and
//! `Retry-After` added. Rejected requests count too, as they do on GitLab.
//!
//! Workers stand for Puma's: with `workers` set, at most that many API requests are served
//! at once and the rest wait their turn, so a client that keeps many requests in flight sees
//! its latency grow, which is what a slow or overloaded GitLab looks like.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::clock;

/// A fixed-window rate limit: `requests` per `period_seconds`, per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub requests: u32,
    pub period_seconds: u64,
}

impl RateLimit {
    pub fn new(requests: u32, period: Duration) -> Self {
        RateLimit {
            requests,
            period_seconds: period.as_secs().max(1),
        }
    }

    /// The quota as GitLab announces it: per minute, whatever the period.
    fn per_minute(&self) -> u64 {
        (u64::from(self.requests) * 60).div_ceil(self.period_seconds.max(1))
    }
}

/// One counted request: whether it may be served, and the headers its answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub observed: u64,
    pub remaining: u64,
    /// Unix milliseconds at which the window ends.
    pub reset_ms: i64,
    limit: RateLimit,
    now_ms: i64,
}

impl Verdict {
    /// `Retry-After` of a rejected request: whole seconds until the window ends, at least 1.
    pub fn retry_after(&self) -> u64 {
        ((self.reset_ms - self.now_ms).max(1) as u64).div_ceil(1000)
    }

    /// The `RateLimit-*` headers (and `Retry-After` when rejected).
    pub fn write_headers(&self, h: &mut HeaderMap) {
        let mut set = |k: &'static str, v: String| {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        };
        set("ratelimit-name", "throttle_authenticated_api".into());
        set("ratelimit-limit", self.limit.per_minute().to_string());
        set("ratelimit-observed", self.observed.to_string());
        set("ratelimit-remaining", self.remaining.to_string());
        set("ratelimit-reset", (self.reset_ms / 1000).to_string());
        if !self.allowed {
            set("ratelimit-resettime", clock::http_date(self.reset_ms));
            set("retry-after", self.retry_after().to_string());
        }
    }
}

/// The counters of the rate limit, by token or peer.
#[derive(Debug, Default)]
pub struct Limiter {
    limit: Option<RateLimit>,
    /// Key to (window index, requests counted in it).
    windows: HashMap<String, (i64, u64)>,
    throttled: u64,
}

impl Limiter {
    pub fn set(&mut self, limit: Option<RateLimit>) {
        self.limit = limit.filter(|l| l.requests > 0);
        self.windows.clear();
    }

    pub fn get(&self) -> Option<RateLimit> {
        self.limit
    }

    /// Requests answered 429 by the limit since it was set.
    pub fn throttled(&self) -> u64 {
        self.throttled
    }

    /// Counts one request for `key` at `now_ms`; `None` when no limit is set.
    pub fn count(&mut self, key: &str, now_ms: i64) -> Option<Verdict> {
        let limit = self.limit?;
        let period_ms = limit.period_seconds.max(1) as i64 * 1000;
        let window = now_ms.div_euclid(period_ms);
        // Old windows are of no use; dropping them keeps a long-running simulator bounded.
        if self.windows.len() > 10_000 {
            self.windows.retain(|_, (w, _)| *w == window);
        }
        let slot = self.windows.entry(key.to_string()).or_insert((window, 0));
        if slot.0 != window {
            *slot = (window, 0);
        }
        slot.1 += 1;
        let observed = slot.1;
        let quota = u64::from(limit.requests);
        let allowed = observed <= quota;
        if !allowed {
            self.throttled += 1;
        }
        Some(Verdict {
            allowed,
            observed,
            remaining: quota.saturating_sub(observed),
            reset_ms: (window + 1) * period_ms,
            limit,
            now_ms,
        })
    }
}

/// How many API requests are served at once.
#[derive(Debug, Default)]
pub struct Workers {
    pool: Option<(usize, Arc<Semaphore>)>,
}

impl Workers {
    pub fn set(&mut self, workers: Option<usize>) {
        self.pool = workers
            .filter(|n| *n > 0)
            .map(|n| (n, Arc::new(Semaphore::new(n))));
    }

    pub fn get(&self) -> Option<usize> {
        self.pool.as_ref().map(|(n, _)| *n)
    }

    pub fn semaphore(&self) -> Option<Arc<Semaphore>> {
        self.pool.as_ref().map(|(_, s)| s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_quota_then_rejects_until_it_ends() {
        let mut l = Limiter::default();
        assert!(l.count("t", 0).is_none());
        l.set(Some(RateLimit::new(3, Duration::from_secs(2))));
        let start = 10_000; // a window boundary: 10 s is a multiple of 2 s
        for i in 1..=3 {
            let v = l.count("t", start + i).unwrap();
            assert!(v.allowed);
            assert_eq!((v.observed, v.remaining), (i as u64, 3 - i as u64));
            assert_eq!(v.reset_ms, 12_000);
        }
        let v = l.count("t", start + 500).unwrap();
        assert!(!v.allowed);
        assert_eq!((v.observed, v.remaining, v.retry_after()), (4, 0, 2));
        // Another token has its own quota.
        assert!(l.count("u", start + 600).unwrap().allowed);
        // The next window starts afresh.
        let v = l.count("t", 12_000).unwrap();
        assert!(v.allowed && v.observed == 1 && v.reset_ms == 14_000);
        assert_eq!(l.throttled(), 1);
    }

    #[test]
    fn headers_announce_the_quota_per_minute_and_rejections_say_when_to_retry() {
        let mut l = Limiter::default();
        l.set(Some(RateLimit::new(60, Duration::from_secs(2))));
        let v = l.count("t", 4_000).unwrap();
        let mut h = HeaderMap::new();
        v.write_headers(&mut h);
        assert_eq!(h["ratelimit-limit"], "1800");
        assert_eq!(h["ratelimit-remaining"], "59");
        assert_eq!(h["ratelimit-reset"], "6");
        assert!(h.get("retry-after").is_none());
        for _ in 0..60 {
            l.count("t", 5_100);
        }
        let v = l.count("t", 5_100).unwrap();
        let mut h = HeaderMap::new();
        v.write_headers(&mut h);
        assert_eq!(h["retry-after"], "1");
        assert_eq!(h["ratelimit-observed"], "62");
        assert!(h.get("ratelimit-resettime").is_some());
    }
}
