//! Request parameters as Grape sees them: the query string merged with a JSON or
//! form-encoded body (the body wins), coerced per endpoint with Grape's error messages.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde_json::{Map, Value, json};

use super::error::ApiError;

#[derive(Debug, Default, Clone)]
pub struct Params {
    pub map: Map<String, Value>,
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let mut map = Map::new();
        if let Some(q) = req.uri().query() {
            merge_form(&mut map, q.as_bytes());
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::param("request body could not be read"))?;
        if !body.iter().all(u8::is_ascii_whitespace) {
            let mime = content_type.split(';').next().unwrap_or("").trim();
            match mime {
                "application/json" | "" => match serde_json::from_slice::<Value>(&body) {
                    Ok(Value::Object(obj)) => map.extend(obj),
                    _ => {
                        return Err(ApiError::param(
                            "message body does not match declared format",
                        ));
                    }
                },
                "application/x-www-form-urlencoded" => merge_form(&mut map, &body),
                other => {
                    return Err(ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        json!({
                            "error": format!("The provided content-type '{other}' is not supported.")
                        }),
                    ));
                }
            }
        }
        Ok(Params { map })
    }
}

/// Rack-style form decoding: `a=1`, `tags[]=x&tags[]=y`, `info[name]=n`.
fn merge_form(map: &mut Map<String, Value>, raw: &[u8]) {
    for (key, value) in form_urlencoded::parse(raw) {
        let value = Value::String(value.into_owned());
        match key.split_once('[') {
            None => {
                map.insert(key.into_owned(), value);
            }
            Some((base, rest)) => {
                let inner = rest.trim_end_matches(']');
                if inner.is_empty() {
                    let slot = map
                        .entry(base.to_string())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(a) = slot {
                        a.push(value);
                    }
                } else {
                    let slot = map
                        .entry(base.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(o) = slot {
                        o.insert(inner.to_string(), value);
                    }
                }
            }
        }
    }
}

impl Params {
    pub fn from_value(v: Value) -> Self {
        match v {
            Value::Object(map) => Params { map },
            _ => Params::default(),
        }
    }

    /// Present and not JSON `null`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A plain string parameter without validation (for lookups such as `token`).
    pub fn str(&self, key: &str) -> Option<String> {
        scalar_string(self.get(key)?)
    }

    pub fn check(&self) -> Check<'_> {
        Check {
            p: self,
            errors: Vec::new(),
        }
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Collects Grape-style validation errors for one request and reports them together.
pub struct Check<'a> {
    p: &'a Params,
    errors: Vec<String>,
}

impl Check<'_> {
    pub fn error(&mut self, message: String) {
        self.errors.push(message);
    }

    fn invalid<T>(&mut self, key: &str) -> Option<T> {
        self.error(format!("{key} is invalid"));
        None
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        let v = self.p.get(key)?;
        match scalar_string(v) {
            Some(s) => Some(s),
            None => self.invalid(key),
        }
    }

    pub fn require_string(&mut self, key: &str) -> Option<String> {
        if !self.p.has(key) {
            self.error(format!("{key} is missing"));
            return None;
        }
        self.string(key)
    }

    /// Grape's Boolean coercion.
    pub fn bool(&mut self, key: &str) -> Option<bool> {
        match self.p.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_i64() == Some(1) => Some(true),
            Value::Number(n) if n.as_i64() == Some(0) => Some(false),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "y" | "on" => Some(true),
                "false" | "f" | "0" | "no" | "n" | "off" => Some(false),
                _ => self.invalid(key),
            },
            _ => self.invalid(key),
        }
    }

    pub fn int(&mut self, key: &str) -> Option<i64> {
        match self.p.get(key)? {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(i),
                None => self.invalid(key),
            },
            Value::String(s) => match s.trim().parse() {
                Ok(i) => Some(i),
                Err(_) => self.invalid(key),
            },
            _ => self.invalid(key),
        }
    }

    pub fn require_int(&mut self, key: &str) -> Option<i64> {
        if !self.p.has(key) {
            self.error(format!("{key} is missing"));
            return None;
        }
        self.int(key)
    }

    /// A string limited to `values` (`values:` in Grape).
    pub fn one_of(&mut self, key: &str, values: &[&str]) -> Option<String> {
        let s = self.string(key)?;
        if values.contains(&s.as_str()) {
            Some(s)
        } else {
            self.error(format!("{key} does not have a valid value"));
            None
        }
    }

    pub fn require_one_of(&mut self, key: &str, values: &[&str]) -> Option<String> {
        if !self.p.has(key) {
            self.error(format!("{key} is missing"));
            return None;
        }
        self.one_of(key, values)
    }

    /// `Array[String]` with GitLab's `CommaSeparatedToArray` coercion: a list, a comma
    /// string, or a list of comma strings. Blank entries and repeats are dropped, as the
    /// tagging model does.
    pub fn tags(&mut self, key: &str) -> Option<Vec<String>> {
        let v = self.p.get(key)?;
        let raw: Vec<String> = match v {
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    match scalar_string(item) {
                        Some(s) => out.push(s),
                        None => return self.invalid(key),
                    }
                }
                out
            }
            other => match scalar_string(other) {
                Some(s) => vec![s],
                None => return self.invalid(key),
            },
        };
        let mut tags: Vec<String> = Vec::new();
        for t in raw.iter().flat_map(|s| s.split(',')) {
            let t = t.trim();
            if !t.is_empty() && !tags.iter().any(|x| x == t) {
                tags.push(t.to_string());
            }
        }
        Some(tags)
    }

    pub fn hash(&mut self, key: &str) -> Option<Map<String, Value>> {
        match self.p.get(key)? {
            Value::Object(o) => Some(o.clone()),
            _ => self.invalid(key),
        }
    }

    pub fn mutually_exclusive(&mut self, keys: &[&str]) {
        if keys.iter().filter(|k| self.p.has(k)).count() > 1 {
            self.error(format!("{} are mutually exclusive", keys.join(", ")));
        }
    }

    pub fn at_least_one_of(&mut self, keys: &[&str]) {
        if !keys.iter().any(|k| self.p.has(k)) {
            self.error(format!(
                "{} are missing, at least one parameter must be provided",
                keys.join(", ")
            ));
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::param(self.errors.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_brackets_build_lists_and_hashes() {
        let mut m = Map::new();
        merge_form(&mut m, b"tag_list[]=a&tag_list[]=b&info[name]=n&token=x");
        assert_eq!(m["tag_list"], json!(["a", "b"]));
        assert_eq!(m["info"], json!({"name": "n"}));
        assert_eq!(m["token"], json!("x"));
    }

    #[test]
    fn coercion_errors_are_grape_shaped() {
        let p = Params::from_value(json!({"paused": "maybe", "tag_list": "a, b,,a", "n": "12"}));
        let mut c = p.check();
        assert_eq!(c.bool("paused"), None);
        assert_eq!(c.tags("tag_list"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(c.int("n"), Some(12));
        assert_eq!(c.require_string("runner_type"), None);
        let err = c.finish().unwrap_err();
        assert_eq!(
            err.body,
            json!({"error": "paused is invalid, runner_type is missing"})
        );
    }
}
