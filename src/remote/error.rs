//! Why a call to GitLab did not succeed, in kinds a caller can act on.

use std::fmt;

/// Why no answer came, as far as the transport can tell: each calls for a different fix, so
/// each gets its own words (see [`super::advice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// GitLab answered, but with a status worth retrying (5xx, 429, 408, 409).
    Status,
    /// Nothing listens at that host and port.
    Refused,
    /// The host name does not resolve.
    Dns,
    /// The TLS handshake failed for another reason than the certificate: most often an
    /// https URL for a server that speaks plain http.
    Tls,
    /// No answer within the request timeout.
    Timeout,
    /// The connection was made and then dropped.
    Dropped,
    /// Any other failure to connect.
    Connect,
}

/// Why a call to GitLab did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// GitLab answered, definitely: the status and its message (never a token).
    Definite { status: u16, message: String },
    /// No definite answer after every retry: timeouts, connection errors, 5xx, 429.
    Transient {
        attempts: u32,
        last: String,
        cause: Cause,
    },
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

    /// Why no answer came, for a transient failure.
    pub fn cause(&self) -> Option<Cause> {
        match self {
            RemoteError::Transient { cause, .. } => Some(*cause),
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
            RemoteError::Transient { attempts, last, .. } => {
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
