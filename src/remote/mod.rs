//! The remote view: GitLab's REST API v4, as far as runners go.
//!
//! Written from the API reference on its own, sharing no type with the simulator, so that a
//! misspelt field on either side shows up as a failing test instead of agreeing with itself.
//! Every answer is classified: a definite one (2xx, 4xx) is final, a transient one (5xx, 429,
//! timeouts, dropped connections) is retried with exponential backoff and jitter, honouring
//! `Retry-After`, and reported as transient if it persists. Only definite answers may ever
//! lead to deleting or recreating anything.

pub mod advice;
mod client;
mod error;
pub mod gitlab;
pub mod pace;
pub mod refresh;
pub mod wait;

pub use client::{Answer, Client, ClientOptions, Exchange, Observer, RetryPolicy};
pub use error::{Cause, RemoteError};
pub use gitlab::{Claim, Credentials, RemoteRunner, TokenInfo};
pub use pace::{Pace, PaceStats};
pub use refresh::{Questions, RefreshError, RemoteState, RemoteView, refresh};
