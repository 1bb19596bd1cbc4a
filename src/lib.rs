//! runnerform: config-as-code for GitLab Runner hosts.
//!
//! The desired runners are declared in KDL ([`desired`]); config.toml keys are known from
//! gitlab-runner's own inventory ([`keys`]); problems are reported with their source spans
//! ([`diag`]). [`engine`] is the library API: it plans against config.toml ([`local`]),
//! GitLab ([`remote`]) and the OS service ([`service`]) with the pure planner ([`plan`]),
//! and carries plans out step by step. The command-line layer lives in [`cli`] and is the only
//! place that does terminal I/O.

// Problems carry their source excerpt so they can be rendered anywhere; they are built on
// the error path only, so their size costs nothing where it matters.
#![allow(clippy::result_large_err)]

pub(crate) mod apply;
pub mod cli;
pub mod desired;
pub mod diag;
pub mod duration;
pub mod engine;
pub mod exit;
pub mod import;
pub mod keys;
pub mod local;
pub mod output;
pub mod plan;
pub mod reference;
pub mod remote;
pub mod secrets;
pub mod service;
pub mod sim;
pub mod time;
pub mod views;
