//! Pacing requests to GitLab: how many may be in flight, adapted to how GitLab answers.
//!
//! A refresh is bound by round trips, so many requests in flight make it fast; but GitLab is
//! shared, throttles clients (GitLab.com: 2,000 authenticated API requests per minute) and
//! slows down under load. A [`Pace`] is shared by every request a [`super::Client`] sends:
//!
//! - **Window** (AIMD, as TCP does it): up to `cap` requests (`--concurrency`) in flight. It
//!   starts small and doubles every round trip, grows by one per round trip after a setback,
//!   and halves on a 429, a 503, a request left unanswered, or latency that rose to more than
//!   twice the quickest round trip seen (latency alone: not below 4), at most once per round
//!   trip.
//! - **Quota**: GitLab's throttles announce themselves in `RateLimit-Observed`,
//!   `RateLimit-Remaining` and `RateLimit-Reset` (Unix seconds) on every answer. Once seen,
//!   no more requests are in flight than the window has quota left, and when it is spent the
//!   next request waits for the window to end, so a long refresh under a limit draws no 429
//!   at all instead of one per request in flight.
//! - **Pause**: a 429 (`Retry-After`, else the quota's reset, else one second) holds back
//!   every request, not only the one that was refused.
//!
//! Nothing here decides what a request means: retries and their limits stay in the client.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::sync::Notify;

/// `--concurrency` unless given: a refresh is bound by round trips, so the more in flight the
/// sooner it is done, and the window keeps GitLab from being pressed harder than it answers.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Requests in flight before the first answer: enough to find the round trip quickly, few
/// enough not to burst into a limit nobody has announced yet.
const INITIAL_WINDOW: f64 = 8.0;
/// Latency counts as risen above this multiple of the quickest round trip (plus a little,
/// so that sub-millisecond round trips on a loopback do not trip it).
const LATENCY_FACTOR: u32 = 2;
const LATENCY_SLACK: Duration = Duration::from_millis(10);
/// Latency alone never cuts the window below this: round trips over the internet jitter, and
/// a few requests in flight do not overload a GitLab that is merely far away.
const LATENCY_FLOOR: f64 = 4.0;
/// After the quota's window ends, wait this much longer: the server's clock decides.
const RESET_MARGIN: Duration = Duration::from_millis(50);
/// A 429 that says nothing about when to come back.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);
/// Longest pause one answer can impose (GitLab.com's windows are one minute).
const MAX_PAUSE: Duration = Duration::from_secs(120);

/// What GitLab said about its rate limit in one answer's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub observed: u64,
    pub remaining: u64,
    /// Unix seconds at which the window ends.
    pub reset: i64,
}

impl Quota {
    /// `RateLimit-Observed`, `RateLimit-Remaining` and `RateLimit-Reset`, when all three are
    /// there and are numbers.
    pub fn from_headers(h: &HeaderMap) -> Option<Quota> {
        let num = |k: &str| h.get(k)?.to_str().ok()?.trim().parse::<i64>().ok();
        Some(Quota {
            observed: u64::try_from(num("ratelimit-observed")?).ok()?,
            remaining: u64::try_from(num("ratelimit-remaining")?).ok()?,
            reset: num("ratelimit-reset")?,
        })
    }
}

/// How one request ended, as far as pacing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// GitLab answered with this status.
    Answered {
        status: u16,
        quota: Option<Quota>,
        retry_after: Option<Duration>,
    },
    /// No answer (connection refused, dropped, timed out).
    Failed,
}

impl Outcome {
    pub fn from_answer(status: u16, headers: &HeaderMap) -> Outcome {
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Outcome::Answered {
            status,
            quota: Quota::from_headers(headers),
            retry_after,
        }
    }
}

/// Counters for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaceStats {
    pub sent: u64,
    /// Answers with status 429.
    pub throttled: u64,
    /// Times the window was cut (429, 503, risen latency).
    pub cuts: u64,
    /// Most requests in flight at once.
    pub peak_in_flight: usize,
    /// Requests in flight allowed now.
    pub window: usize,
}

#[derive(Debug)]
struct Budget {
    /// End of the quota's window on this machine's clock, and GitLab's own name for it.
    ends: Instant,
    reset: i64,
    /// The window's quota (observed + remaining) and the least remaining any answer in it
    /// reported. Requests sent and not yet answered may or may not be counted already, so
    /// at most `remaining` are ever in flight.
    quota: u64,
    remaining: u64,
    /// The window ended on this machine's clock and no answer from the next one came yet.
    fresh: bool,
}

#[derive(Debug)]
struct State {
    cap: usize,
    window: f64,
    threshold: f64,
    in_flight: usize,
    quickest: Option<Duration>,
    smoothed: Option<Duration>,
    last_cut: Option<Instant>,
    paused_until: Option<Instant>,
    budget: Option<Budget>,
    stats: PaceStats,
}

/// Why a request may not be sent yet.
#[derive(Debug, PartialEq, Eq)]
enum Hold {
    /// Until an answer frees a slot.
    Answer,
    /// Until then (or an answer, whichever first).
    Until(Instant),
}

impl State {
    fn new(cap: usize) -> State {
        let cap = cap.max(1);
        State {
            cap,
            window: INITIAL_WINDOW.min(cap as f64),
            threshold: cap as f64,
            in_flight: 0,
            quickest: None,
            smoothed: None,
            last_cut: None,
            paused_until: None,
            budget: None,
            stats: PaceStats::default(),
        }
    }

    fn allowed(&self) -> usize {
        (self.window.floor() as usize).clamp(1, self.cap)
    }

    fn may_send(&mut self, now: Instant) -> Result<(), Hold> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Err(Hold::Until(until));
            }
            self.paused_until = None;
        }
        if let Some(b) = &mut self.budget
            && !b.fresh
            && now >= b.ends + RESET_MARGIN
        {
            // A new window: its whole quota, of which the requests still in flight may take
            // some, until an answer from it says how much is left.
            b.fresh = true;
            b.remaining = b.quota;
        }
        if self.in_flight >= self.allowed() {
            return Err(Hold::Answer);
        }
        if let Some(b) = &self.budget
            && self.in_flight as u64 >= b.remaining
        {
            return Err(if b.fresh {
                Hold::Answer
            } else {
                Hold::Until(b.ends + RESET_MARGIN)
            });
        }
        Ok(())
    }

    fn sent(&mut self) {
        self.in_flight += 1;
        self.stats.sent += 1;
        self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.in_flight);
    }

    /// Halves the window, once per round trip: answers to requests sent before the last cut
    /// were shaped by the window before it.
    fn cut(&mut self, sent_at: Instant, now: Instant, floor: f64) {
        if self.last_cut.is_some_and(|c| sent_at < c) || self.window <= floor {
            return;
        }
        self.window = (self.window / 2.0).max(floor).max(1.0);
        self.threshold = self.window;
        self.last_cut = Some(now);
        self.stats.cuts += 1;
    }

    fn grow(&mut self) {
        let step = if self.window < self.threshold {
            1.0
        } else {
            1.0 / self.window
        };
        self.window = (self.window + step).min(self.cap as f64);
    }

    fn pause(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    fn answered(&mut self, sent_at: Instant, now: Instant, wall_ms: i64, outcome: Outcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Outcome::Answered {
            status,
            quota,
            retry_after,
        } = outcome
        else {
            // Timed out or dropped: as much a sign of overload as a 503.
            self.cut(sent_at, now, 1.0);
            return;
        };
        if let Some(q) = quota {
            self.learn(q, now, wall_ms);
        }
        match status {
            429 => {
                self.stats.throttled += 1;
                self.cut(sent_at, now, 1.0);
                let wait = retry_after
                    .or_else(|| {
                        self.budget
                            .as_ref()
                            .map(|b| b.ends.saturating_duration_since(now) + RESET_MARGIN)
                    })
                    .unwrap_or(DEFAULT_PAUSE)
                    .min(MAX_PAUSE);
                self.pause(now + wait);
            }
            503 => self.cut(sent_at, now, 1.0),
            _ => {
                let rtt = now.saturating_duration_since(sent_at);
                let quickest = self.quickest.map_or(rtt, |q| q.min(rtt));
                self.quickest = Some(quickest);
                let smoothed = self.smoothed.map_or(rtt, |s| (s * 7 + rtt) / 8);
                self.smoothed = Some(smoothed);
                if smoothed > quickest * LATENCY_FACTOR + LATENCY_SLACK {
                    self.cut(sent_at, now, LATENCY_FLOOR);
                } else {
                    self.grow();
                }
            }
        }
    }

    /// Takes in what an answer said of the quota: a later window replaces the one known, an
    /// earlier one (a slow answer) says nothing new.
    fn learn(&mut self, q: Quota, now: Instant, wall_ms: i64) {
        let quota = q.observed.saturating_add(q.remaining).max(1);
        let ends = now + Duration::from_millis((q.reset * 1000 - wall_ms).max(0) as u64);
        match &mut self.budget {
            // A slow answer from a window that ended says nothing new; should GitLab's clock
            // lag this one, the 429 it answers with pauses everyone.
            Some(b) if q.reset < b.reset || (q.reset == b.reset && b.fresh) => {}
            Some(b) if q.reset == b.reset => {
                b.remaining = b.remaining.min(q.remaining);
                b.quota = b.quota.max(quota);
            }
            _ => {
                self.budget = Some(Budget {
                    ends,
                    reset: q.reset,
                    quota,
                    remaining: q.remaining,
                    fresh: false,
                });
            }
        }
    }
}

/// The pace of one client's requests; share it (`Arc`) between every request to one GitLab.
#[derive(Debug)]
pub struct Pace {
    state: Mutex<State>,
    freed: Notify,
}

/// A request's place in flight. Dropped without [`Ticket::answered`] it counts as a request
/// that got no answer.
#[derive(Debug)]
pub struct Ticket {
    pace: Arc<Pace>,
    sent_at: Instant,
    done: bool,
}

impl Ticket {
    /// What GitLab answered; frees the place.
    pub fn answered(mut self, outcome: Outcome) {
        self.done = true;
        self.pace.finish(self.sent_at, outcome);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.pace.finish(self.sent_at, Outcome::Failed);
        }
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Pace {
    /// At most `cap` requests in flight (`--concurrency`).
    pub fn new(cap: usize) -> Arc<Pace> {
        Arc::new(Pace {
            state: Mutex::new(State::new(cap)),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a request may be sent, and counts it as in flight.
    pub async fn acquire(self: &Arc<Self>) -> Ticket {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let now = Instant::now();
            let hold = {
                let mut st = self.lock();
                match st.may_send(now) {
                    Ok(()) => {
                        st.sent();
                        None
                    }
                    Err(h) => Some(h),
                }
            };
            match hold {
                None => {
                    return Ticket {
                        pace: self.clone(),
                        sent_at: now,
                        done: false,
                    };
                }
                Some(Hold::Answer) => freed.await,
                Some(Hold::Until(t)) => {
                    tokio::select! {
                        _ = &mut freed => {}
                        _ = tokio::time::sleep_until(t.into()) => {}
                    }
                }
            }
        }
    }

    fn finish(&self, sent_at: Instant, outcome: Outcome) {
        self.lock()
            .answered(sent_at, Instant::now(), wall_ms(), outcome);
        self.freed.notify_waiters();
    }

    pub fn stats(&self) -> PaceStats {
        let st = self.lock();
        PaceStats {
            window: st.allowed(),
            ..st.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(status: u16) -> Outcome {
        Outcome::Answered {
            status,
            quota: None,
            retry_after: None,
        }
    }

    #[test]
    fn the_window_doubles_per_round_trip_up_to_the_cap() {
        let t0 = Instant::now();
        let mut st = State::new(32);
        assert_eq!(st.allowed(), 8);
        for round in 0..3u64 {
            let sent = t0 + Duration::from_millis(20 * round);
            let n = st.allowed();
            for _ in 0..n {
                assert_eq!(st.may_send(sent), Ok(()));
                st.sent();
            }
            assert_eq!(st.may_send(sent), Err(Hold::Answer));
            for _ in 0..n {
                st.answered(sent, sent + Duration::from_millis(20), 0, ok(200));
            }
        }
        assert_eq!(st.allowed(), 32);
    }

    #[test]
    fn a_429_halves_the_window_once_and_pauses_everyone() {
        let t0 = Instant::now();
        let mut st = State::new(32);
        st.window = 32.0;
        for _ in 0..32 {
            st.sent();
        }
        let at = t0 + Duration::from_millis(5);
        let throttled = Outcome::Answered {
            status: 429,
            quota: None,
            retry_after: Some(Duration::from_secs(2)),
        };
        // Every request that was in flight together is refused: one cut, not 32.
        for _ in 0..32 {
            st.answered(t0, at, 0, throttled);
        }
        assert_eq!(
            (st.allowed(), st.stats.cuts, st.stats.throttled),
            (16, 1, 32)
        );
        assert_eq!(
            st.may_send(at),
            Err(Hold::Until(at + Duration::from_secs(2)))
        );
        assert_eq!(st.may_send(at + Duration::from_secs(2)), Ok(()));
    }

    #[test]
    fn latency_that_doubles_cuts_the_window() {
        let t0 = Instant::now();
        let mut st = State::new(32);
        st.window = 32.0;
        st.threshold = 32.0;
        let mut sent = t0;
        for i in 0..40u64 {
            st.sent();
            // The first answers take 20 ms, then GitLab slows to 200 ms.
            let rtt = if i < 10 { 20 } else { 200 };
            let back = sent + Duration::from_millis(rtt);
            st.answered(sent, back, 0, ok(200));
            sent = back;
        }
        // Down to the floor latency alone may push it to, and no further.
        assert_eq!(st.allowed(), LATENCY_FLOOR as usize);
    }

    #[test]
    fn with_a_quota_no_more_than_the_remaining_requests_are_in_flight() {
        let t0 = Instant::now();
        let wall = 1_000_000_i64; // Unix ms
        let mut st = State::new(32);
        st.window = 32.0;
        let q = |observed, remaining| Outcome::Answered {
            status: 200,
            quota: Some(Quota {
                observed,
                remaining,
                reset: 1_002, // 2 s after `wall`
            }),
            retry_after: None,
        };
        st.sent();
        st.answered(t0, t0, wall, q(57, 3));
        for _ in 0..3 {
            assert_eq!(st.may_send(t0), Ok(()));
            st.sent();
        }
        // Three in flight, three left: the fourth waits for the window to end.
        let ends = t0 + Duration::from_secs(2) + RESET_MARGIN;
        assert_eq!(st.may_send(t0), Err(Hold::Until(ends)));
        for _ in 0..3 {
            st.answered(t0, t0, wall, q(60, 0));
        }
        assert_eq!(st.may_send(t0), Err(Hold::Until(ends)));
        // A new window: its whole quota (60) may be used.
        for _ in 0..32 {
            assert_eq!(st.may_send(ends), Ok(()));
            st.sent();
        }
        assert_eq!(st.stats.throttled, 0);
    }

    #[test]
    fn quota_headers_are_read_from_an_answer() {
        let mut h = HeaderMap::new();
        h.insert("ratelimit-observed", "6".parse().unwrap());
        h.insert("ratelimit-remaining", "1994".parse().unwrap());
        h.insert("ratelimit-reset", "1641505278".parse().unwrap());
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(
            Outcome::from_answer(429, &h),
            Outcome::Answered {
                status: 429,
                quota: Some(Quota {
                    observed: 6,
                    remaining: 1994,
                    reset: 1_641_505_278
                }),
                retry_after: Some(Duration::from_secs(3)),
            }
        );
        h.remove("ratelimit-reset");
        assert_eq!(Quota::from_headers(&h), None);
    }
}
