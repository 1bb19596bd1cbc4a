//! One module per command.

pub mod apply;
pub mod plan;
pub mod validate;
