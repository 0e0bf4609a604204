//! `filters` query parameters: `{"key": ["v1", "v2"]}` (or the legacy
//! `{"key": {"v1": true}}`), as docker sends them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};

/// Parsed filters.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    map: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses the JSON of a `filters` parameter; empty means no filter. Keys outside
    /// `allowed` are refused with Docker's message.
    pub fn parse(json: &str, allowed: &[&str]) -> Result<Self> {
        if json.trim().is_empty() {
            return Ok(Filters::default());
        }
        let v: Value = serde_json::from_str(json)
            .map_err(|e| Error::InvalidInput(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| Error::InvalidInput("invalid filter: not an object".into()))?;
        let mut map = BTreeMap::new();
        for (k, vals) in obj {
            if !allowed.contains(&k.as_str()) {
                return Err(Error::InvalidInput(format!("invalid filter '{k}'")));
            }
            let list: Vec<String> = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                Value::String(s) => vec![s.clone()],
                _ => return Err(Error::InvalidInput(format!("invalid filter '{k}'"))),
            };
            map.insert(k.clone(), list);
        }
        Ok(Filters { map })
    }

    /// The one value of a filter that takes a single value.
    pub fn single(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Whether an image with these familiar tags and labels passes the dangling,
    /// reference and label filters.
    pub fn matches_image(&self, tags: &[String], labels: &Value) -> bool {
        if let Some(d) = self.single("dangling") {
            let want_dangling = d == "true" || d == "1";
            if want_dangling != tags.is_empty() {
                return false;
            }
        }
        if let Some(patterns) = self.map.get("reference")
            && !patterns
                .iter()
                .any(|p| tags.iter().any(|t| reference_matches(p, t)))
        {
            return false;
        }
        self.matches_labels(labels)
    }

    /// Every value given for `key` (empty when the filter is absent).
    pub fn values(&self, key: &str) -> &[String] {
        self.map.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether `label` (`key` or `key=value`) filters all hold and no `label!` matches.
    pub fn matches_labels(&self, labels: &Value) -> bool {
        let has = |w: &str| match w.split_once('=') {
            Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
            None => labels.get(w).is_some(),
        };
        self.values("label").iter().all(|w| has(w)) && !self.values("label!").iter().any(|w| has(w))
    }
}

/// docker matches `reference` against the familiar name with and without the tag.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let repo = tag.rsplit_once(':').map_or(tag, |(r, _)| r);
    glob(pattern, tag) || glob(pattern, repo)
}

/// path.Match-style glob: `*` and `?` do not cross `/`.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && go(p, &t[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_forms_and_match() {
        let f = Filters::parse(r#"{"dangling":["true"]}"#, &["dangling"]).unwrap();
        assert!(f.matches_image(&[], &json!(null)));
        assert!(!f.matches_image(&["a:latest".into()], &json!(null)));
        let f = Filters::parse(r#"{"reference":{"busy*":true}}"#, &["reference"]).unwrap();
        assert!(f.matches_image(&["busybox:latest".into()], &json!(null)));
        assert!(!f.matches_image(&["alpine:3".into()], &json!(null)));
        let f = Filters::parse(r#"{"label":["a=b","c"]}"#, &["label"]).unwrap();
        assert!(f.matches_image(&[], &json!({"a": "b", "c": "x"})));
        assert!(!f.matches_image(&[], &json!({"a": "b"})));
        assert!(
            Filters::parse(r#"{"nope":["x"]}"#, &["label"])
                .unwrap_err()
                .to_string()
                .contains("invalid filter 'nope'")
        );
    }

    #[test]
    fn globs() {
        assert!(glob("busybox", "busybox"));
        assert!(glob("busy*", "busybox"));
        assert!(glob("*:1.*", "alpine:1.2"));
        assert!(!glob("*", "team/app"));
        assert!(glob("*/*", "team/app"));
    }
}
