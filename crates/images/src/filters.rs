//! `filters` query parameters: `{"key": ["v1", "v2"]}` (or the legacy
//! `{"key": {"v1": true}}`), as docker sends them.

use berth_types::filters::FilterMap;
use serde_json::Value;

use crate::error::{Error, Result};

/// Parsed filters.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    map: FilterMap,
}

impl Filters {
    /// Parses the JSON of a `filters` parameter; empty means no filter. Keys outside
    /// `allowed` are refused with Docker's message.
    pub fn parse(json: &str, allowed: &[&str]) -> Result<Self> {
        let map = FilterMap::parse(json, allowed).map_err(Error::InvalidInput)?;
        Ok(Filters { map })
    }

    /// The one value of a filter that takes a single value.
    pub fn single(&self, key: &str) -> Option<&str> {
        self.map.single(key)
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
        let patterns = self.values("reference");
        if !patterns.is_empty()
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
        self.map.values(key)
    }

    /// Whether `label` (`key` or `key=value`) filters all hold and no `label!` matches.
    pub fn matches_labels(&self, labels: &Value) -> bool {
        self.map.matches_labels(labels)
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
