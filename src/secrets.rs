//! Masking of secrets in anything runnerform shows.
//!
//! Two kinds of values are masked: anything that starts like a GitLab token (by prefix), and
//! every value runnerform learned is secret by where it came from (a secret reference, a
//! `token` field, a secret setting in config.toml), whatever it looks like. The second kind is
//! kept in a process-wide registry ([`remember`]) because such values travel far from where
//! they were read: into GitLab's error bodies, diffs, saved plans and diagnostics. Copies of a
//! remembered value as it appears URL-encoded or JSON-escaped are masked too.
//!
//! Masking keeps the byte length of the text, so spans computed on the original text still
//! point at the same places in the masked one (diagnostics render source excerpts).

use std::sync::RwLock;

/// Token prefixes that GitLab issues: runner authentication tokens (`glrt-`, `glrtr-`),
/// personal/project/group access tokens (`glpat-`), legacy registration tokens (`GR1348941`),
/// CI job and deploy tokens.
pub const TOKEN_PREFIXES: &[&str] = &["glrt-", "glrtr-", "glpat-", "GR1348941", "glcbt-", "gldt-"];

/// Values shorter than this are not remembered: masking every `12345` or `secret` in the
/// output would eat ordinary words and numbers, and a credential that short is no secret.
pub const MIN_REMEMBERED_LEN: usize = 8;

/// Every spelling of every remembered value, longest first so that a value containing
/// another is masked whole.
static REMEMBERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Records `value` as a secret: from now on [`mask`] hides it, and its URL-encoded and
/// JSON-escaped spellings, wherever they appear. Short values are ignored.
pub fn remember(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_REMEMBERED_LEN {
        return;
    }
    let mut spellings = vec![value.to_string()];
    spellings.push(form_urlencoded::byte_serialize(value.as_bytes()).collect());
    spellings.push(percent_encode_all(value));
    if let Ok(json) = serde_json::to_string(value) {
        spellings.push(json[1..json.len() - 1].to_string());
    }
    let mut known = REMEMBERED.write().unwrap_or_else(|e| e.into_inner());
    for s in spellings {
        if !known.contains(&s) {
            known.push(s);
        }
    }
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Percent-encoding of everything but RFC 3986's unreserved characters: how a token looks in
/// a query string or path built by another client.
fn percent_encode_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `s` is (or holds) a remembered secret.
pub fn is_remembered(s: &str) -> bool {
    let known = REMEMBERED.read().unwrap_or_else(|e| e.into_inner());
    known.iter().any(|k| {
        s.match_indices(k.as_str())
            .any(|(at, _)| stands_alone(s.as_bytes(), at, at + k.len()))
    })
}

/// ```
/// use runnerform::secrets::looks_like_token;
/// assert!(looks_like_token("glpat-xyz"));
/// assert!(!looks_like_token("GITLAB_TOKEN"));
/// ```
pub fn looks_like_token(s: &str) -> bool {
    TOKEN_PREFIXES.iter().any(|p| s.trim().starts_with(p))
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
}

/// Replaces the secret part of every token in `text` with `*`, keeping prefixes and length,
/// and every remembered secret with `*` whole.
///
/// ```
/// let shown = runnerform::secrets::mask("token = \"glrt-abc123\"");
/// assert_eq!(shown, "token = \"glrt-******\"");
/// ```
pub fn mask(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary = i == 0 || !is_token_char(bytes[i - 1]);
        let prefix = at_boundary
            .then(|| {
                TOKEN_PREFIXES
                    .iter()
                    .find(|p| bytes[i..].starts_with(p.as_bytes()))
            })
            .flatten();
        match prefix {
            Some(p) => {
                let mut j = i + p.len();
                while j < bytes.len() && is_token_char(bytes[j]) {
                    out[j] = b'*';
                    j += 1;
                }
                i = j;
            }
            None => i += 1,
        }
    }
    let known = REMEMBERED.read().unwrap_or_else(|e| e.into_inner());
    for k in known.iter() {
        for (at, _) in text.match_indices(k.as_str()) {
            if stands_alone(bytes, at, at + k.len()) {
                mask_chars(&mut out, text, at, at + k.len());
            }
        }
    }
    // Whole UTF-8 characters were replaced by ASCII `*`, so the text is still UTF-8.
    String::from_utf8(out).expect("masking keeps UTF-8")
}

/// Whether `text[from..to]` is not part of a longer word: a remembered `RUNNER_TOKEN` (a
/// placeholder some config.toml files hold) must not mask the env var `GITLAB_RUNNER_TOKEN`.
fn stands_alone(bytes: &[u8], from: usize, to: usize) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (from == 0 || !word(bytes[from - 1])) && bytes.get(to).is_none_or(|&b| !word(b))
}

/// Replaces each character of `text[from..to]` with as many `*` as it has bytes.
fn mask_chars(out: &mut [u8], text: &str, from: usize, to: usize) {
    debug_assert!(text.is_char_boundary(from) && text.is_char_boundary(to));
    for b in &mut out[from..to] {
        *b = b'*';
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_kind_and_keeps_length() {
        let text = "token = \"glrt-t1_AbCdEf123456\"\npat glpat-xyz.ABC reg GR1348941abcDEF";
        let m = mask(text);
        assert_eq!(m.len(), text.len());
        assert!(!m.contains("AbCdEf"));
        assert!(!m.contains("xyz"));
        assert!(!m.contains("abcDEF"));
        assert!(m.contains("glrt-****"));
    }

    #[test]
    fn leaves_ordinary_words_alone() {
        let text = "aglrt-not-a-token and glrt alone";
        assert_eq!(mask(text), text);
    }

    #[test]
    fn remembered_values_are_masked_in_every_spelling() {
        let legacy = "legacyRunnerTok3n+/é\"x";
        remember(legacy);
        let url: String = form_urlencoded::byte_serialize(legacy.as_bytes()).collect();
        let json = serde_json::to_string(legacy).unwrap();
        let text = format!("raw {legacy} url {url} json {json} pct {}", percent_encode_all(legacy));
        let m = mask(&text);
        assert_eq!(m.len(), text.len());
        assert!(!m.contains("legacyRunner"), "{m}");
        assert!(m.starts_with("raw ***"));
        assert!(is_remembered(&format!("({legacy})")));
        assert!(!is_remembered(&format!("x{legacy}x")), "part of a longer word");
    }

    #[test]
    fn short_values_are_not_remembered() {
        remember("abc1234");
        assert_eq!(mask("abc1234 stays"), "abc1234 stays");
    }
}
