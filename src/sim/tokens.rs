//! Token generation: the prefixes GitLab issues, random bodies.
//!
//! A simulator token only has to be unguessable by accident and unique, so a SplitMix64
//! stream seeded from the clock, the process and a counter is enough; no crypto crate.

use std::sync::atomic::{AtomicU64, Ordering};

use super::state::RunnerType;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Default for Rng {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        Rng(nanos ^ (std::process::id() as u64).rotate_left(32) ^ n.wrapping_mul(0x9E37) ^ addr)
    }
}

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` characters from `[0-9A-Za-z]`.
    pub fn alnum(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..n)
            .map(|_| ALPHABET[(self.next_u64() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit((self.next_u64() % 16) as u32, 16).unwrap_or('0'))
            .collect()
    }
}

/// How a runner came to exist decides the family of its authentication token, and a reset
/// keeps the family (reference §2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFamily {
    /// `glrt-`: created with `POST /user/runners` (or "in the UI").
    Created,
    /// `glrtr-`: registered with a registration token on `POST /runners`.
    Registered,
}

/// A runner authentication token with the partition prefix GitLab adds since 17.5
/// (`t1_` instance, `t2_` group, `t3_` project).
pub fn runner_token(rng: &mut Rng, family: TokenFamily, ty: RunnerType) -> String {
    let prefix = match family {
        TokenFamily::Created => "glrt-",
        TokenFamily::Registered => "glrtr-",
    };
    let partition = match ty {
        RunnerType::InstanceType => 1,
        RunnerType::GroupType => 2,
        RunnerType::ProjectType => 3,
    };
    format!("{prefix}t{partition}_{}", rng.alnum(27))
}

pub fn personal_access_token(rng: &mut Rng) -> String {
    format!("glpat-{}", rng.alnum(20))
}

/// `GR1348941…`: the legacy registration token prefix (rotation date 2022-02-25).
pub fn registration_token(rng: &mut Rng) -> String {
    format!("GR1348941{}", rng.alnum(20))
}
