//! The GitLab REST API v4 endpoints the simulator serves, one module per family:
//! [`user_runners`] (`POST /user/runners`), [`runner_token`] (what a runner host calls with its
//! own token), [`runners`] (user-token endpoints under `/runners`), [`namespaces`] (projects
//! and groups), [`meta`] (version, current user, token self-information).

pub mod meta;
pub mod namespaces;
pub mod runner_token;
pub mod runners;
pub mod user_runners;

use std::collections::BTreeMap;

use axum::http::HeaderMap;

use super::clock;
use super::error::{ApiError, ApiResult};
use super::params::{Check, Params};
use super::state::{HostInfo, State, TAG_LIST_MAX};

/// A path `:id` that must be an integer (`requires :id, type: Integer`).
pub fn int_id(raw: &str, name: &str) -> ApiResult<u64> {
    raw.trim()
        .parse()
        .map_err(|_| ApiError::param(format!("{name} is invalid")))
}

/// `destroy_conditionally!`: a client may send `If-Unmodified-Since` to avoid deleting
/// something that changed since it looked.
pub fn check_unmodified_since(headers: &HeaderMap, updated_at: i64) -> ApiResult<()> {
    let since = headers
        .get("if-unmodified-since")
        .and_then(|v| v.to_str().ok())
        .and_then(clock::parse_http_date);
    match since {
        // HTTP dates have whole seconds; compare at that precision.
        Some(t) if updated_at / 1000 > t / 1000 => Err(ApiError::precondition_failed()),
        _ => Ok(()),
    }
}

/// What a runner host says about itself (`system_id`, `info{...}`), plus its address.
pub fn host_info(p: &Params, ip: Option<String>) -> HostInfo {
    let info = match p.get("info") {
        Some(serde_json::Value::Object(o)) => Params { map: o.clone() },
        _ => Params::default(),
    };
    HostInfo {
        system_id: p.str("system_id").filter(|s| !s.is_empty()),
        name: info.str("name"),
        version: info.str("version"),
        revision: info.str("revision"),
        platform: info.str("platform"),
        architecture: info.str("architecture"),
        executor: info.str("executor"),
        ip_address: ip,
    }
}

/// Runner attributes a create, register or update may set.
#[derive(Debug, Default, Clone)]
pub struct RunnerFields {
    pub description: Option<String>,
    pub maintenance_note: Option<String>,
    pub paused: Option<bool>,
    pub locked: Option<bool>,
    pub run_untagged: Option<bool>,
    pub tag_list: Option<Vec<String>>,
    pub access_level: Option<String>,
    pub maximum_timeout: Option<i64>,
}

impl RunnerFields {
    /// Reads the fields with Grape's coercions. `active` is the deprecated inverse of
    /// `paused` and may not come with it.
    pub fn read(c: &mut Check, p: &Params) -> Self {
        let active = c.bool("active");
        let paused = c.bool("paused");
        c.mutually_exclusive(&["active", "paused"]);
        RunnerFields {
            description: c.string("description"),
            maintenance_note: c.string("maintenance_note"),
            paused: paused.or(active.map(|a| !a)),
            locked: c.bool("locked"),
            run_untagged: c.bool("run_untagged"),
            tag_list: if p.has("tag_list") {
                c.tags("tag_list")
            } else {
                None
            },
            access_level: c.one_of("access_level", &super::state::AccessLevel::ALL),
            maximum_timeout: c.int("maximum_timeout"),
        }
    }
}

/// Model validation errors keyed by attribute, in the order `Ci::Runner` declares them.
pub type ModelErrors = BTreeMap<String, Vec<String>>;

pub fn validate_runner(
    run_untagged: bool,
    tags: &[String],
    tags_changed: bool,
    description: Option<&str>,
    maximum_timeout: Option<i64>,
    maintenance_note: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    if !run_untagged && tags.is_empty() {
        errors.push((
            "tags_list",
            "can not be empty when runner is not allowed to pick untagged jobs".to_string(),
        ));
    }
    if tags_changed && tags.len() > TAG_LIST_MAX {
        errors.push((
            "tags_list",
            format!("Too many tags specified. Please limit the number of tags to {TAG_LIST_MAX}"),
        ));
    }
    if description.is_some_and(|d| d.chars().count() > 1024) {
        errors.push((
            "description",
            "is too long (maximum is 1024 characters)".to_string(),
        ));
    }
    if maximum_timeout.is_some_and(|t| t < 600) {
        errors.push((
            "maximum_timeout",
            "needs to be at least 10 minutes".to_string(),
        ));
    }
    if maintenance_note.is_some_and(|n| n.chars().count() > 1024) {
        errors.push((
            "maintenance_note",
            "is too long (maximum is 1024 characters)".to_string(),
        ));
    }
    errors
}

/// `render_validation_error!`: `{"message": {"attr": ["msg", ...]}}`.
pub fn validation_error(errors: &[(&'static str, String)]) -> ApiError {
    let mut map = ModelErrors::new();
    for (k, m) in errors {
        map.entry(k.to_string()).or_default().push(m.clone());
    }
    ApiError::validation(&map)
}

/// `errors.to_sentence` of full messages, as `POST /user/runners` reports validation.
pub fn sentence(errors: &[(&'static str, String)]) -> String {
    let full: Vec<String> = errors
        .iter()
        .map(|(attr, msg)| {
            let human = attr.replace('_', " ");
            let mut c = human.chars();
            let cap = c
                .next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default();
            format!("{cap} {msg}")
        })
        .collect();
    match full.len() {
        0 => String::new(),
        1 => full[0].clone(),
        2 => format!("{} and {}", full[0], full[1]),
        n => format!("{}, and {}", full[..n - 1].join(", "), full[n - 1]),
    }
}

/// The root group of a group, whose "allow runner registration token" setting governs its
/// whole hierarchy.
pub fn root_group(st: &State, group: u64) -> u64 {
    st.group_and_ancestors(group)
        .last()
        .copied()
        .unwrap_or(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_join_like_rails() {
        let one = [("tags_list", "x".to_string())];
        assert_eq!(sentence(&one), "Tags list x");
        let three = [
            ("a", "1".to_string()),
            ("b", "2".to_string()),
            ("maximum_timeout", "3".to_string()),
        ];
        assert_eq!(sentence(&three), "A 1, B 2, and Maximum timeout 3");
    }
}
