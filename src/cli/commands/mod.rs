//! One module per command.

pub mod apply;
pub mod import;
pub mod plan;
pub mod sim;
pub mod status;
pub mod validate;
