//! What to tell a person when GitLab cannot be used: the failure in words that name its
//! cause, and the one thing to do about it.
//!
//! "Could not connect, try again" is the answer that wastes an afternoon: a refused port, a
//! misspelt host name, an https URL for a plain-http server and a project the token's user is
//! not a member of each have their own fix, and retrying helps none of them. The planning code
//! turns a [`RemoteError`] or [`RefreshError`] into an [`Advice`] here and prints it; the
//! classification of transport failures lives with the client ([`Cause`]).

use super::{Cause, RefreshError, RemoteError};

/// A message (what happened) and a hint (what to do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    pub message: String,
    pub hint: String,
}

/// The GitLab URL with a trailing `/api/v4` removed, when it has one: runnerform adds that
/// suffix itself, so a URL that carries it asks `/api/v4/api/v4/...` and gets 404s that read
/// like a bad token.
pub fn without_api_suffix(url: &str) -> Option<&str> {
    let trimmed = url.trim_end_matches('/');
    trimmed
        .strip_suffix("/api/v4")
        .filter(|base| base.contains("://"))
}

/// The failure of the first request (checking the access token): the URL, the network or the
/// token.
pub fn token_check(url: &str, e: &RemoteError) -> Advice {
    if let Some(base) = without_api_suffix(url) {
        return Advice {
            message: format!(
                "the GitLab URL {url} ends in /api/v4, which runnerform adds itself, so GitLab \
                 was asked for {url}/api/v4/… ({e})"
            ),
            hint: format!("drop the suffix: gitlab \"{base}\""),
        };
    }
    if let Some(a) = unreachable(url, e) {
        return a;
    }
    let hint = match e.status() {
        Some(401) => "the token is unknown, expired or revoked: create a new one".to_string(),
        Some(403) => "the token is valid but may not read its own details: give it the api \
                      scope (or read_api with create_runner and manage_runner)"
            .to_string(),
        Some(404) => format!(
            "{url} answered 404 for /api/v4/personal_access_tokens/self: check that the URL is \
             GitLab's address (the page you log in on), without a path"
        ),
        _ => "check the GitLab URL and that GitLab is reachable".to_string(),
    };
    Advice {
        message: format!("cannot use the access token with {url}: {e}"),
        hint,
    }
}

/// A refresh that failed: a group or project the token's user cannot see, or no definite
/// answer about a runner.
pub fn refresh(url: &str, e: &RefreshError) -> Advice {
    match e {
        RefreshError::UnknownNamespace { kind, path, error }
            if matches!(error.status(), Some(403 | 404)) =>
        {
            let (what, role) = match kind.as_str() {
                "groups" => ("group", "Owner"),
                _ => ("project", "Maintainer"),
            };
            let message = if error.status() == Some(403) {
                format!(
                    "{what} {path} cannot be read with this access token ({error}): the token's \
                     user is not a member of it with a role that may manage runners"
                )
            } else {
                format!(
                    "{what} {path} cannot be found with this access token ({error}): it does not \
                     exist, or the token's user is not a member of it"
                )
            };
            Advice {
                message,
                hint: format!(
                    "retrying will not help: add the token's user to {path} with the {role} role \
                     (GitLab requires {role} to create and manage a {what}'s runners), or \
                     correct the path"
                ),
            }
        }
        RefreshError::UnknownNamespace { .. } => Advice {
            message: e.to_string(),
            hint: "nothing was planned or changed".into(),
        },
        RefreshError::Unanswered { what, error } => match unreachable(url, error) {
            Some(a) => Advice {
                message: format!("{what}: {}", a.message),
                hint: a.hint,
            },
            None => Advice {
                message: e.to_string(),
                hint: "nothing was planned or changed: runnerform acts only on definite answers \
                       from GitLab; try again"
                    .into(),
            },
        },
    }
}

/// The words for a GitLab that could not be reached at all, by cause; `None` when GitLab
/// answered (or the cause has no better words than the error's own).
pub fn unreachable(url: &str, e: &RemoteError) -> Option<Advice> {
    let RemoteError::Transient { attempts, last, .. } = e else {
        return None;
    };
    let (host, port) = host_port(url);
    let tries = if *attempts > 1 {
        format!(" ({attempts} attempts)")
    } else {
        String::new()
    };
    let advice = match e.cause()? {
        Cause::Refused => Advice {
            message: format!(
                "connection refused by {host}:{port}{tries}: the host is up but nothing listens \
                 on that port"
            ),
            hint: format!(
                "check the port in {url}, and that GitLab (or `runnerform sim`) is running there"
            ),
        },
        Cause::Dns => Advice {
            message: format!(
                "the host name {host} does not resolve (DNS lookup failed){tries}: no such host \
                 is known to this machine"
            ),
            hint: format!(
                "check {host} in {url} for a typo, and this machine's DNS (/etc/resolv.conf)"
            ),
        },
        Cause::Tls if url.starts_with("https://") => Advice {
            message: format!(
                "TLS failure with {host}:{port} ({last}): the server does not speak TLS on \
                 that port"
            ),
            hint: format!(
                "if the server speaks plain HTTP (as `runnerform sim` does), write the URL as \
                 {}; otherwise check the port",
                url.replacen("https://", "http://", 1)
            ),
        },
        Cause::Timeout => Advice {
            message: format!("{url} did not answer in time{tries}: {e}"),
            hint: "nothing was planned or changed; check the network path (HTTPS_PROXY, \
                   NO_PROXY), or raise the gitlab node's `timeout`"
                .into(),
        },
        _ => return None,
    };
    Some(advice)
}

/// Host and port of an http(s) URL, for messages; the URL itself when it does not parse.
fn host_port(url: &str) -> (String, u16) {
    match reqwest::Url::parse(url) {
        Ok(u) => (
            u.host_str().unwrap_or(url).to_string(),
            u.port_or_known_default().unwrap_or(0),
        ),
        Err(_) => (url.to_string(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_suffix_is_recognised() {
        assert_eq!(
            without_api_suffix("https://gitlab.example.com/api/v4/"),
            Some("https://gitlab.example.com")
        );
        assert_eq!(
            without_api_suffix("https://example.com/gitlab/api/v4"),
            Some("https://example.com/gitlab")
        );
        assert_eq!(without_api_suffix("https://gitlab.example.com"), None);
        assert_eq!(without_api_suffix("/api/v4"), None);
    }

    #[test]
    fn each_cause_has_its_own_words() {
        let e = |cause| RemoteError::Transient {
            attempts: 5,
            last: "x".into(),
            cause,
        };
        let url = "https://gitlab.example.com:8443";
        let refused = unreachable(url, &e(Cause::Refused)).unwrap();
        let dns = unreachable(url, &e(Cause::Dns)).unwrap();
        let tls = unreachable(url, &e(Cause::Tls)).unwrap();
        assert!(
            refused
                .message
                .contains("connection refused by gitlab.example.com:8443")
        );
        assert!(dns.message.contains("does not resolve"));
        assert!(!dns.message.contains("refused"));
        assert!(tls.message.starts_with("TLS failure"));
        assert!(tls.hint.contains("http://gitlab.example.com:8443"));
        assert!(unreachable(url, &e(Cause::Status)).is_none());
        let gone = RefreshError::UnknownNamespace {
            kind: "projects".into(),
            path: "acme/app".into(),
            error: RemoteError::Definite {
                status: 404,
                message: "404 Project Not Found".into(),
            },
        };
        let a = refresh(url, &gone);
        assert!(a.hint.contains("Maintainer role"), "{}", a.hint);
        assert!(!a.hint.contains("try again"));
    }
}
