use std::fmt;

/// Why a call to GitLab did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// GitLab answered, definitely: the status and its message (never a token).
    Definite { status: u16, message: String },
    /// No definite answer after every retry: timeouts, connection errors, 5xx, 429.
    Transient { attempts: u32, last: String },
    /// GitLab answered 2xx with a body that is not what the API promises.
    Malformed { what: String },
    /// The client could not be set up (bad URL, unreadable CA file).
    Setup(String),
}

impl RemoteError {
    pub fn status(&self) -> Option<u16> {
        match self {
            RemoteError::Definite { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A definite "this does not exist / this token is not valid": the only answers that may
    /// lead to recreating or forgetting a runner.
    pub fn is_definitely_gone(&self) -> bool {
        matches!(self.status(), Some(403 | 404 | 410 | 422))
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::Definite { status, message } => {
                write!(f, "GitLab answered {status}: {message}")
            }
            RemoteError::Transient { attempts, last } => {
                write!(
                    f,
                    "GitLab did not answer after {attempts} attempts ({last})"
                )
            }
            RemoteError::Malformed { what } => write!(f, "GitLab's answer was malformed: {what}"),
            RemoteError::Setup(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for RemoteError {}
