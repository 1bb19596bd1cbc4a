//! Masking of GitLab tokens in anything runnerform shows.
//!
//! Masking keeps the byte length of the text, so spans computed on the original text still
//! point at the same places in the masked one (diagnostics render source excerpts).

/// Token prefixes that GitLab issues: runner authentication tokens (`glrt-`, `glrtr-`),
/// personal/project/group access tokens (`glpat-`), legacy registration tokens (`GR1348941`),
/// CI job and deploy tokens.
pub const TOKEN_PREFIXES: &[&str] = &["glrt-", "glrtr-", "glpat-", "GR1348941", "glcbt-", "gldt-"];

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

/// Replaces the secret part of every token in `text` with `*`, keeping prefixes and length.
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
    // Only ASCII bytes were replaced by ASCII, so the text is still UTF-8.
    String::from_utf8(out).expect("masking keeps UTF-8")
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
}
