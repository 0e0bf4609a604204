//! Image references as docker parses them: `busybox`, `busybox:1.36`,
//! `localhost:5000/team/app:v1`, `name@sha256:...`, normalized to
//! `docker.io/library/busybox:latest` for storage and shown in familiar form.

use crate::error::{Error, Result};

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (and port), `docker.io` when none is given.
    pub domain: String,
    /// Repository path, `library/` prefixed for official Docker Hub images.
    pub path: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest, if given.
    pub digest: Option<String>,
}

const DEFAULT_DOMAIN: &str = "docker.io";

fn valid_component(c: &str) -> bool {
    // lower-case alphanumerics separated by one '.', one or two '_', or any number of '-'.
    !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl Reference {
    /// Parses a reference; the error says what is wrong, as docker's does.
    pub fn parse(s: &str) -> Result<Self> {
        let invalid =
            |why: &str| Error::InvalidReference(format!("invalid reference format: {why}: {s:?}"));
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(invalid("bad tag"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if name.bytes().any(|b| b.is_ascii_uppercase()) && domain == DEFAULT_DOMAIN {
            return Err(invalid("repository name must be lowercase"));
        }
        if !path.split('/').all(valid_component) {
            return Err(invalid("bad repository name"));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// With `latest` as the tag when neither tag nor digest was given.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// `domain/path` without tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The full normalized form, the key images are stored under.
    pub fn normalized(&self) -> String {
        let mut s = self.repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The short form docker prints: `busybox:latest`, `localhost:5000/app:v1`.
    pub fn familiar(&self) -> String {
        familiar(&self.normalized())
    }
}

/// The familiar form of a normalized reference string.
pub fn familiar(normalized: &str) -> String {
    let s = normalized.strip_prefix("docker.io/").unwrap_or(normalized);
    if normalized.starts_with("docker.io/") {
        s.strip_prefix("library/").unwrap_or(s).to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().with_default_tag().normalized()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("team/app"), "docker.io/team/app:latest");
        assert_eq!(norm("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(
            norm("registry.example.com/a/b/c"),
            "registry.example.com/a/b/c:latest"
        );
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("localhost:5000/app:v1"), "localhost:5000/app:v1");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "Busybox", "bad name", "a:", "a:-x", "-a", "a//b"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
