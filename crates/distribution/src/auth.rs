//! Registry credentials and the challenges registries answer with.
//!
//! Clients send credentials in the `X-Registry-Auth` header (base64url JSON, the docker
//! CLI's `AuthConfig`); registries say how they want them in `WWW-Authenticate`: `Basic`
//! (send them with every request) or `Bearer` (trade them at a token service for a
//! short-lived token per repository scope).

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// What a client gave us to log in with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
pub struct Credentials {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password (or personal access token).
    #[serde(default)]
    pub password: String,
    /// A refresh token a token service gave at login (OAuth2).
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    /// A bearer token to send as is.
    #[serde(default, rename = "registrytoken")]
    pub registry_token: String,
    /// `user:password` in base64, as config.json keeps it.
    #[serde(default)]
    pub auth: String,
    /// The registry these are for.
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
}

impl Credentials {
    /// Decodes an `X-Registry-Auth` header; `None` when empty or carrying nothing.
    pub fn from_header(value: &str) -> Result<Option<Credentials>> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let json = engines
            .iter()
            .find_map(|e| e.decode(value).ok())
            .ok_or_else(|| Error::BadRequest("X-Registry-Auth is not base64".into()))?;
        let mut c: Credentials = serde_json::from_slice(&json)
            .map_err(|e| Error::BadRequest(format!("X-Registry-Auth is not valid JSON: {e}")))?;
        c.fill_from_auth();
        Ok((!c.is_empty()).then_some(c))
    }

    /// Splits the `auth` field into user and password when those are missing.
    pub fn fill_from_auth(&mut self) {
        if !self.username.is_empty() || self.auth.is_empty() {
            return;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(self.auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((u, p)) = decoded.as_deref().and_then(|s| s.split_once(':')) {
            self.username = u.to_string();
            self.password = p.to_string();
        }
    }

    fn is_empty(&self) -> bool {
        self.username.is_empty() && self.identity_token.is_empty() && self.registry_token.is_empty()
    }

    /// The `Authorization: Basic` value.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// How a registry wants to be authenticated, from its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// No authentication asked for.
    None,
    /// User and password with every request.
    Basic,
    /// Tokens from `realm` for `service`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to pass to it.
        service: String,
    },
}

impl Challenge {
    /// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
    pub fn parse(header: &str) -> Challenge {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(rest);
        if scheme.eq_ignore_ascii_case("bearer") {
            Challenge::Bearer {
                realm: params.get("realm").cloned().unwrap_or_default(),
                service: params.get("service").cloned().unwrap_or_default(),
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            Challenge::Basic
        } else {
            Challenge::None
        }
    }
}

/// `key="value", key2=value2` → map (lower-case keys; commas inside quotes kept).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// A token service's answer.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub(crate) fn into_token(self) -> Option<String> {
        [self.token, self.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: "registry.docker.io".into()
            }
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Challenge::Basic
        );
    }

    #[test]
    fn decodes_registry_auth_header() {
        let json = r#"{"username":"u","password":"p:w","serveraddress":"localhost:5000"}"#;
        let h = base64::engine::general_purpose::URL_SAFE.encode(json);
        let c = Credentials::from_header(&h).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:w"));
        assert_eq!(Credentials::from_header("e30=").unwrap(), None);
        let auth = base64::engine::general_purpose::STANDARD.encode("me:secret");
        let h = base64::engine::general_purpose::STANDARD.encode(format!(r#"{{"auth":"{auth}"}}"#));
        let c = Credentials::from_header(&h).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "secret"));
        assert!(Credentials::from_header("%%%").is_err());
    }
}
