//! Exit codes, a stable contract for scripts.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success (with `plan --detailed-exitcode`: no changes) |
//! | 1    | error: bad input, a failed check, a failed call; nothing was changed by the failed step |
//! | 2    | only with `plan --detailed-exitcode`: changes are pending (drift) |

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Error = 1,
    Changes = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}
