//! Names for what an imported file refers to: env vars for secrets, runner names for
//! entries that have none.

use std::collections::HashMap;

/// `build-1.x` → `BUILD_1_X`: the shape of an environment variable name.
pub fn env_part(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    match out.chars().next() {
        None => "X".to_string(),
        Some(c) if c.is_ascii_digit() => format!("_{out}"),
        Some(_) => out,
    }
}

/// Env var names handed out so far, each with the secret it stands for, so that one name never
/// stands for two different values (`a-b` and `a_b` both want `A_B`) and one value that
/// several places share keeps one name. The values stay in memory; only names are written.
#[derive(Default)]
pub struct EnvNames {
    taken: HashMap<String, String>,
    /// Names in the order they were handed out, with what each holds.
    pub listed: Vec<(String, String)>,
}

impl EnvNames {
    /// The name for `value`, `wanted` unless that already stands for another value.
    pub fn name(&mut self, wanted: &str, value: &str, what: impl Into<String>) -> String {
        let mut candidate = wanted.to_string();
        let mut n = 2;
        loop {
            match self.taken.get(&candidate) {
                Some(v) if v == value => return candidate,
                Some(_) => {
                    candidate = format!("{wanted}_{n}");
                    n += 1;
                }
                None => break,
            }
        }
        self.taken.insert(candidate.clone(), value.to_string());
        self.listed.push((candidate.clone(), what.into()));
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_valid_and_never_shared_by_two_values() {
        assert_eq!(env_part("ruby-3.1-docker"), "RUBY_3_1_DOCKER");
        assert_eq!(
            env_part("docker autoscaler example"),
            "DOCKER_AUTOSCALER_EXAMPLE"
        );
        assert_eq!(env_part("1st"), "_1ST");
        assert_eq!(env_part("---"), "X");
        let mut n = EnvNames::default();
        assert_eq!(n.name("A_B", "one", "x"), "A_B");
        assert_eq!(n.name("A_B", "two", "y"), "A_B_2");
        assert_eq!(n.name("A_B", "one", "z"), "A_B");
        assert_eq!(n.listed.len(), 2);
    }
}
