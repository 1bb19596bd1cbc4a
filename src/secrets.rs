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

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

/// Token prefixes that GitLab issues: runner authentication tokens (`glrt-`, `glrtr-`),
/// personal/project/group access tokens (`glpat-`), legacy registration tokens (`GR1348941`),
/// CI job and deploy tokens.
pub const TOKEN_PREFIXES: &[&str] = &["glrt-", "glrtr-", "glpat-", "GR1348941", "glcbt-", "gldt-"];

/// Values shorter than this are not remembered: masking every `12345` or `secret` in the
/// output would eat ordinary words and numbers, and a credential that short is no secret.
pub const MIN_REMEMBERED_LEN: usize = 8;

/// Every spelling of every remembered value, by its first [`MIN_REMEMBERED_LEN`] bytes, so
/// that masking is one pass over the text however many values are remembered (a config.toml
/// with 40,000 runners remembers 40,000 tokens).
static REMEMBERED: RwLock<Option<Known>> = RwLock::new(None);

#[derive(Default)]
struct Known {
    spellings: HashSet<Vec<u8>>,
    /// The lengths of the spellings that start with these bytes, longest first.
    lengths: HashMap<[u8; MIN_REMEMBERED_LEN], Vec<usize>>,
}

/// Records `value` as a secret: from now on [`mask`] hides it, and its URL-encoded and
/// JSON-escaped spellings, wherever they appear. Short values are ignored.
pub fn remember(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_REMEMBERED_LEN {
        return;
    }
    // Masking by prefix already hides such a token, in every spelling (it has no character
    // that encoding changes), and keeps its prefix visible: a reader sees what kind it was.
    if looks_like_token(value) && value.bytes().all(is_token_char) {
        return;
    }
    let mut spellings = vec![value.to_string()];
    spellings.push(form_urlencoded::byte_serialize(value.as_bytes()).collect());
    spellings.push(percent_encode_all(value));
    if let Ok(json) = serde_json::to_string(value) {
        spellings.push(json[1..json.len() - 1].to_string());
    }
    let mut known = REMEMBERED.write().unwrap_or_else(|e| e.into_inner());
    let known = known.get_or_insert_with(Known::default);
    for s in spellings {
        let Some(key) = key_of(s.as_bytes()) else {
            continue;
        };
        let len = s.len();
        if known.spellings.insert(s.into_bytes()) {
            let lengths = known.lengths.entry(key).or_default();
            if !lengths.contains(&len) {
                lengths.push(len);
                // Longest first: a value that contains another is masked whole.
                lengths.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
    }
}

fn key_of(bytes: &[u8]) -> Option<[u8; MIN_REMEMBERED_LEN]> {
    bytes.get(..MIN_REMEMBERED_LEN)?.try_into().ok()
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
    let mut found = false;
    each_remembered(s.as_bytes(), |_, _| found = true);
    found
}

/// Calls `f(start, end)` for each remembered spelling that stands alone in `bytes`.
fn each_remembered(bytes: &[u8], mut f: impl FnMut(usize, usize)) {
    let known = REMEMBERED.read().unwrap_or_else(|e| e.into_inner());
    let Some(known) = known.as_ref().filter(|k| !k.spellings.is_empty()) else {
        return;
    };
    let mut i = 0;
    while i + MIN_REMEMBERED_LEN <= bytes.len() {
        let starts_word = i == 0 || !is_word(bytes[i - 1]);
        let hit = starts_word
            .then(|| key_of(&bytes[i..]).and_then(|k| known.lengths.get(&k)))
            .flatten()
            .and_then(|lengths| {
                lengths.iter().copied().find(|&len| {
                    bytes
                        .get(i..i + len)
                        .is_some_and(|w| known.spellings.contains(w))
                        && bytes.get(i + len).is_none_or(|&b| !is_word(b))
                })
            });
        match hit {
            Some(len) => {
                f(i, i + len);
                i += len;
            }
            None => i += 1,
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
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
    // A remembered spelling is masked only where it is not part of a longer word: a
    // remembered `RUNNER_TOKEN` (a placeholder some config.toml files hold) must not mask the
    // env var name `GITLAB_RUNNER_TOKEN`.
    each_remembered(bytes, |from, to| mask_chars(&mut out, text, from, to));
    // Whole UTF-8 characters were replaced by ASCII `*`, so the text is still UTF-8.
    String::from_utf8(out).expect("masking keeps UTF-8")
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
        let text = format!(
            "raw {legacy} url {url} json {json} pct {}",
            percent_encode_all(legacy)
        );
        let m = mask(&text);
        assert_eq!(m.len(), text.len());
        assert!(!m.contains("legacyRunner"), "{m}");
        assert!(m.starts_with("raw ***"));
        assert!(is_remembered(&format!("({legacy})")));
        assert!(
            !is_remembered(&format!("x{legacy}x")),
            "part of a longer word"
        );
    }

    #[test]
    fn short_values_are_not_remembered() {
        remember("abc1234");
        assert_eq!(mask("abc1234 stays"), "abc1234 stays");
    }
}
