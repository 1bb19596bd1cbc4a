//! One module per command.

pub mod apply;
pub mod completions;
pub mod import;
pub mod man;
pub mod plan;
pub mod show;
pub mod sim;
pub mod status;
pub mod validate;
