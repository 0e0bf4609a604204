//! Docker's `filters` query parameter: `{"key": ["v1", "v2"]}` (or the legacy
//! `{"key": {"v1": true}}`), parsed once for every list and event endpoint.

use std::collections::BTreeMap;

use serde_json::Value;

/// Parsed filters: each key with the values given for it.
#[derive(Debug, Default, Clone)]
pub struct FilterMap {
    map: BTreeMap<String, Vec<String>>,
}

impl FilterMap {
    /// Parses the JSON of a `filters` parameter; empty means no filter. Keys outside
    /// `allowed` are refused with Docker's message ("invalid filter 'k'").
    pub fn parse(json: &str, allowed: &[&str]) -> Result<Self, String> {
        if json.trim().is_empty() {
            return Ok(FilterMap::default());
        }
        let v: Value = serde_json::from_str(json).map_err(|e| format!("invalid filter: {e}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| "invalid filter: not an object".to_string())?;
        let mut map = BTreeMap::new();
        for (k, vals) in obj {
            if !allowed.contains(&k.as_str()) {
                return Err(format!("invalid filter '{k}'"));
            }
            let list: Vec<String> = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                Value::String(s) => vec![s.clone()],
                _ => return Err(format!("invalid filter '{k}'")),
            };
            map.insert(k.clone(), list);
        }
        Ok(FilterMap { map })
    }

    /// The one value of a filter that takes a single value.
    pub fn single(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value given for `key` (empty when the filter is absent).
    pub fn values(&self, key: &str) -> &[String] {
        self.map.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether `key` was given at all.
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Go's `ExactMatch`: true when `key` is absent or one of its values equals `source`.
    pub fn exact(&self, key: &str, source: &str) -> bool {
        !self.has(key) || self.values(key).iter().any(|v| v == source)
    }

    /// Go's `FuzzyMatch`: true when `key` is absent or `source` equals or starts with one
    /// of its values.
    pub fn fuzzy(&self, key: &str, source: &str) -> bool {
        !self.has(key)
            || self
                .values(key)
                .iter()
                .any(|v| source.starts_with(v.as_str()))
    }

    /// Whether `label` (`key` or `key=value`) filters all hold for `labels` (a JSON
    /// object of strings) and no `label!` matches.
    pub fn matches_labels(&self, labels: &Value) -> bool {
        let has = |w: &str| match w.split_once('=') {
            Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
            None => labels.get(w).is_some(),
        };
        self.values("label").iter().all(|w| has(w)) && !self.values("label!").iter().any(|w| has(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_json_forms_parse_and_unknown_keys_are_refused() {
        let f = FilterMap::parse(r#"{"a":["x","y"],"b":{"z":true}}"#, &["a", "b"]).unwrap();
        assert_eq!(f.values("a"), ["x", "y"]);
        assert_eq!(f.single("b"), Some("z"));
        assert_eq!(
            FilterMap::parse(r#"{"nope":["x"]}"#, &["a"]).unwrap_err(),
            "invalid filter 'nope'"
        );
    }

    #[test]
    fn exact_fuzzy_and_labels_follow_go() {
        let f = FilterMap::parse(
            r#"{"container":["ab"],"label":["k=v"]}"#,
            &["container", "label"],
        )
        .unwrap();
        assert!(f.fuzzy("container", "abcdef"));
        assert!(!f.exact("container", "abcdef"));
        assert!(f.exact("type", "anything"));
        assert!(f.matches_labels(&json!({"k": "v"})));
        assert!(!f.matches_labels(&json!({"k": "w"})));
    }
}
