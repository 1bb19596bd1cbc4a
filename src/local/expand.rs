//! gitlab-runner expands `$VAR` and `${VAR}` in config.toml values (the URL and the token)
//! when it loads the file. runnerform compares what gitlab-runner will see, so it expands them
//! the same way, from an environment it is handed: planning itself reads no process state.

use std::collections::BTreeMap;

/// The environment variables `$VAR` references are expanded from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// This process's environment (variables that are not UTF-8 are left out).
    pub fn from_process() -> Self {
        Environment {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment with exactly these variables.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// `s` with `$VAR` and `${VAR}` replaced as gitlab-runner does (unset: empty).
    pub fn expand(&self, s: &str) -> String {
        if !s.contains('$') {
            return s.to_string();
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            let (name, after) = if let Some(r) = rest.strip_prefix('{') {
                match r.find('}') {
                    Some(j) => (&r[..j], &r[j + 1..]),
                    None => (r, ""),
                }
            } else {
                let j = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..j], &rest[j..])
            };
            out.push_str(self.get(name).unwrap_or_default());
            rest = after;
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_both_forms_as_gitlab_runner_does() {
        let env = Environment::from_pairs([("HOST", "gitlab.test")]);
        assert_eq!(env.expand("https://$HOST/"), "https://gitlab.test/");
        assert_eq!(env.expand("https://${HOST}"), "https://gitlab.test");
        assert_eq!(env.expand("https://$MISSING/x"), "https:///x");
        assert_eq!(env.expand("plain"), "plain");
    }
}
