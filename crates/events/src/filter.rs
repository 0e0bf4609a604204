//! Docker's event filters, matched as dockerd's `daemon/events/filter.go` does: every
//! given key must hold; `container`, `network`, `volume` and `daemon` match the actor's
//! id or name by prefix, `image` matches exactly with or without the tag, `event`
//! matches the action (by prefix for `health_status`, `exec_create`, `exec_start`).

use berth_types::filters::FilterMap;

use crate::{Event, kind};

const KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Parsed `filters` of `GET /events`.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    map: FilterMap,
}

impl EventFilter {
    /// Parses the JSON of the `filters` parameter; unknown keys are refused as dockerd
    /// does.
    pub fn parse(json: &str) -> Result<Self, String> {
        let map = FilterMap::parse(json, KEYS)?;
        for t in map.values("type") {
            if ![
                kind::CONTAINER,
                kind::IMAGE,
                kind::NETWORK,
                kind::VOLUME,
                kind::DAEMON,
                kind::BUILDER,
                "plugin",
                "service",
                "node",
                "secret",
                "config",
            ]
            .contains(&t.as_str())
            {
                return Err(format!("invalid filter 'type={t}'"));
            }
        }
        Ok(EventFilter { map })
    }

    /// Whether `e` passes every filter.
    pub fn matches(&self, e: &Event) -> bool {
        self.matches_action(&e.action)
            && self.map.exact("type", &e.kind)
            && self.map.exact("scope", &e.scope)
            && self.matches_name(e, "container")
            && self.matches_name(e, "network")
            && self.matches_name(e, "volume")
            && self.matches_name(e, "daemon")
            && self.matches_name(e, "plugin")
            && self.matches_image(e)
            && ["node", "service", "secret", "config"]
                .iter()
                .all(|k| !self.map.has(k))
            && self.matches_labels(e)
    }

    fn matches_action(&self, action: &str) -> bool {
        let fuzzy = ["health_status", "exec_create", "exec_start"];
        if self
            .map
            .values("event")
            .iter()
            .any(|v| fuzzy.contains(&v.as_str()))
        {
            self.map.fuzzy("event", action)
        } else {
            self.map.exact("event", action)
        }
    }

    /// dockerd's `fuzzyMatchName`: the actor's id or its `name` attribute, for events of
    /// every type (so a `container` filter drops network events, as with dockerd).
    fn matches_name(&self, e: &Event, key: &str) -> bool {
        if !self.map.has(key) {
            return true;
        }
        let name = e.actor.attributes.get("name").map_or("", String::as_str);
        self.map.fuzzy(key, &e.actor.id) || (!name.is_empty() && self.map.fuzzy(key, name))
    }

    fn matches_image(&self, e: &Event) -> bool {
        if !self.map.has("image") {
            return true;
        }
        let attr = if e.kind == kind::IMAGE {
            "name"
        } else {
            "image"
        };
        let name = e.actor.attributes.get(attr).map_or("", String::as_str);
        [e.actor.id.as_str(), name]
            .iter()
            .filter(|s| !s.is_empty())
            .any(|s| self.map.exact("image", s) || self.map.exact("image", strip_tag(s)))
    }

    fn matches_labels(&self, e: &Event) -> bool {
        let labels: serde_json::Map<String, serde_json::Value> = e
            .actor
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        self.map.matches_labels(&serde_json::Value::Object(labels))
    }
}

/// `busybox:latest` → `busybox`; digests and registry ports are left alone.
fn strip_tag(image: &str) -> &str {
    if image.contains('@') {
        return image;
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        let mut e = Event::new(kind, action, id);
        for (k, v) in attrs {
            e = e.attr(*k, *v);
        }
        e
    }

    #[test]
    fn filters_match_like_dockerd() {
        let start = ev(
            kind::CONTAINER,
            "start",
            "0123abcd",
            &[
                ("name", "web"),
                ("image", "busybox:latest"),
                ("tier", "front"),
            ],
        );
        let health = ev(kind::CONTAINER, "health_status: healthy", "0123abcd", &[]);
        let f = |j: &str| EventFilter::parse(j).unwrap();
        assert!(f("").matches(&start));
        assert!(f(r#"{"container":["web"]}"#).matches(&start));
        assert!(f(r#"{"container":["0123"]}"#).matches(&start));
        assert!(!f(r#"{"container":["db"]}"#).matches(&start));
        assert!(f(r#"{"image":["busybox"]}"#).matches(&start));
        assert!(f(r#"{"image":["busybox:latest"]}"#).matches(&start));
        assert!(!f(r#"{"image":["busy"]}"#).matches(&start));
        assert!(f(r#"{"event":["start","die"]}"#).matches(&start));
        assert!(!f(r#"{"event":["die"]}"#).matches(&start));
        assert!(f(r#"{"event":["health_status"]}"#).matches(&health));
        assert!(!f(r#"{"event":["health"]}"#).matches(&health));
        assert!(f(r#"{"type":["container"],"label":["tier=front"]}"#).matches(&start));
        assert!(!f(r#"{"type":["image"]}"#).matches(&start));
        assert!(!f(r#"{"label":["tier=back"]}"#).matches(&start));
        let tag = ev(kind::IMAGE, "tag", "sha256:aa", &[("name", "app:1")]);
        assert!(f(r#"{"image":["app"]}"#).matches(&tag));
        assert!(f(r#"{"image":["sha256:aa"]}"#).matches(&tag));
        assert!(EventFilter::parse(r#"{"colour":["red"]}"#).is_err());
        assert!(EventFilter::parse(r#"{"type":["boat"]}"#).is_err());
    }

    #[test]
    fn tags_are_stripped_but_not_ports() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(strip_tag("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(strip_tag("localhost:5000/app:v1"), "localhost:5000/app");
        assert_eq!(strip_tag("app@sha256:aa"), "app@sha256:aa");
    }
}
