//! `docker ps --filter`: which containers a list shows.

use berth_images::Filters;

use crate::{ContainerRecord, Error, Result};

/// Filter keys `GET /containers/json` accepts.
pub const LIST_KEYS: &[&str] = &[
    "id", "name", "label", "label!", "status", "exited", "ancestor", "before", "since", "health",
    "volume", "network", "publish", "expose", "is-task",
];

/// Docker's container states, the values `status` accepts.
const STATES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Filters with the references they name resolved.
pub struct ListFilter {
    filters: Filters,
    /// `before`: only containers created earlier than this one.
    before: Option<String>,
    /// `since`: only containers created later than this one.
    since: Option<String>,
    /// `ancestor`: image ids the container's image must be one of.
    ancestors: Vec<String>,
    names: Vec<regex::Regex>,
}

impl ListFilter {
    /// Parses and resolves; `lookup` finds a container's creation time by name or id,
    /// `image_id` an image's id by reference.
    pub fn new(
        json: &str,
        lookup: &dyn Fn(&str) -> Result<String>,
        image_id: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let filters = Filters::parse(json, LIST_KEYS)?;
        for s in filters.values("status") {
            if !STATES.contains(&s.as_str()) {
                return Err(Error::InvalidInput(format!("invalid filter 'status={s}'")));
            }
        }
        for e in filters.values("exited") {
            if e.parse::<i32>().is_err() {
                return Err(Error::InvalidInput(format!("invalid filter 'exited={e}'")));
            }
        }
        let names = filters
            .values("name")
            .iter()
            .map(|n| {
                regex::Regex::new(n)
                    .map_err(|e| Error::InvalidInput(format!("invalid filter 'name={n}': {e}")))
            })
            .collect::<Result<_>>()?;
        let before = filters.single("before").map(lookup).transpose()?;
        let since = filters.single("since").map(lookup).transpose()?;
        let ancestors = filters
            .values("ancestor")
            .iter()
            .map(|a| image_id(a).unwrap_or_else(|| a.clone()))
            .collect();
        Ok(ListFilter {
            filters,
            before,
            since,
            ancestors,
            names,
        })
    }

    /// A status filter widens a plain `ps` to stopped containers, as in dockerd.
    pub fn implies_all(&self) -> bool {
        !self.filters.values("status").is_empty()
    }

    /// Whether the container passes every filter.
    pub fn matches(&self, rec: &ContainerRecord) -> bool {
        let f = &self.filters;
        let any_or_none = |key: &str, ok: &dyn Fn(&str) -> bool| {
            let v = f.values(key);
            v.is_empty() || v.iter().any(|x| ok(x))
        };
        let name = format!("/{}", rec.name);
        any_or_none("id", &|p| rec.id.starts_with(p))
            && (self.names.is_empty() || self.names.iter().any(|r| r.is_match(&name)))
            && any_or_none("status", &|s| s == rec.state.status)
            && any_or_none("exited", &|e| {
                rec.state.status == "exited" && e.parse() == Ok(rec.state.exit_code)
            })
            && any_or_none("health", &|h| h == "none")
            && f.matches_labels(&rec.config["Labels"])
            && (self.ancestors.is_empty()
                || self
                    .ancestors
                    .iter()
                    .any(|a| *a == rec.image_id || *a == rec.image))
            && self.before.as_ref().is_none_or(|t| rec.created < *t)
            && self.since.as_ref().is_none_or(|t| rec.created > *t)
            && f.values("volume").is_empty()
            && f.values("network").is_empty()
            && f.values("publish").is_empty()
            && f.values("expose").is_empty()
    }
}
