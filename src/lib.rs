//! runnerform: config-as-code for GitLab Runner hosts.
//!
//! The desired runners are declared in KDL ([`desired`]); config.toml keys are known from
//! gitlab-runner's own inventory ([`keys`]); problems are reported with their source spans
//! ([`diag`]). The command-line layer lives in [`cli`] and is the only place that does
//! terminal I/O.

pub mod cli;
pub mod desired;
pub mod diag;
pub mod exit;
pub mod keys;
pub mod reference;
pub mod secrets;
