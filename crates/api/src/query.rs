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
    flag_or(pairs, key, false)
}

/// A boolean parameter as Go's `strconv.ParseBool` reads it (`1 t T TRUE true True`,
/// `0 f F FALSE false False`); `default` when absent or unreadable.
pub fn flag_or(pairs: &[(String, String)], key: &str, default: bool) -> bool {
    match param(pairs, key) {
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => true,
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => false,
        _ => default,
    }
}

/// The `filters` parameter (Docker's filter JSON), empty when absent.
pub fn filters(q: Option<&str>) -> String {
    param(&query_pairs(q), "filters").unwrap_or("").to_string()
}

/// A JSON request body; an empty one is `null`.
pub fn json_body(body: &[u8]) -> Result<serde_json::Value, crate::ApiError> {
    if body.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| crate::ApiError::bad_request(format!("invalid JSON body: {e}")))
}
