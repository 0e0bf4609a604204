//! Query strings as docker sends them: ordered pairs (repeated keys such as `changes`
//! kept), booleans as `1`/`true`.

/// The query as ordered pairs (repeated keys such as `changes` kept).
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub fn flag(pairs: &[(String, String)], key: &str) -> bool {
    matches!(param(pairs, key), Some("1" | "true" | "True"))
}
