//! The volume backend of the API: `berth-volumes` behind `berth_api::VolumeBackend`, asking
//! `berth-containers` which containers use a volume; the one place where volume errors
//! become HTTP statuses.

use std::collections::BTreeMap;

use berth_api::{ApiError, VolumeBackend};
use berth_containers::ContainerService;
use berth_volumes::{Error, VolumeRecord, VolumeService};

use crate::networks::string_map;
use serde_json::{Value, json};

/// Maps volume errors to Docker's statuses.
pub fn api_error(e: Error) -> ApiError {
    match e {
        Error::NotFound(_) => ApiError::not_found(e.to_string()),
        Error::InvalidInput(m) => ApiError::bad_request(m),
        Error::Conflict(m) => ApiError::conflict(m),
        Error::Internal(m) => ApiError::internal(m),
    }
}

/// Volumes as the API sees them.
pub struct Volumes {
    svc: VolumeService,
    containers: ContainerService,
}

impl Volumes {
    /// Both services the endpoints need.
    pub fn new(svc: VolumeService, containers: ContainerService) -> Self {
        Volumes { svc, containers }
    }

    fn users(&self, name: &str) -> Result<Vec<String>, ApiError> {
        self.containers
            .volume_users(name)
            .map_err(crate::containers::api_error)
    }
}

/// Docker's filter JSON as key → values.
fn parse_filters(filters: &str) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    if filters.is_empty() {
        return Ok(BTreeMap::new());
    }
    let v: Value = serde_json::from_str(filters)
        .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
    let mut out = BTreeMap::new();
    for (k, vals) in v.as_object().into_iter().flatten() {
        let list = match vals {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

fn label_matches(v: &VolumeRecord, wanted: &[String]) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(w),
    })
}

impl VolumeBackend for Volumes {
    fn create(&self, body: &Value) -> Result<Value, ApiError> {
        let v = self
            .svc
            .create(
                body["Name"].as_str(),
                body["Driver"].as_str().unwrap_or(""),
                string_map(&body["DriverOpts"]),
                string_map(&body["Labels"]),
            )
            .map_err(api_error)?;
        Ok(self.svc.inspect_json(&v))
    }

    fn list(&self, filters: &str) -> Result<Value, ApiError> {
        let f = parse_filters(filters)?;
        for k in f.keys() {
            if !["dangling", "name", "label", "driver"].contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
            }
        }
        let mut out = Vec::new();
        for v in self.svc.list().map_err(api_error)? {
            if let Some(names) = f.get("name")
                && !names.iter().any(|n| v.name.contains(n.as_str()))
            {
                continue;
            }
            if let Some(drivers) = f.get("driver")
                && !drivers.contains(&v.driver)
            {
                continue;
            }
            if let Some(labels) = f.get("label")
                && !label_matches(&v, labels)
            {
                continue;
            }
            if let Some(d) = f.get("dangling") {
                let want = d.iter().any(|x| x == "true" || x == "1");
                if self.users(&v.name)?.is_empty() != want {
                    continue;
                }
            }
            out.push(self.svc.inspect_json(&v));
        }
        Ok(json!({"Volumes": out, "Warnings": []}))
    }

    fn inspect(&self, name: &str) -> Result<Value, ApiError> {
        let v = self.svc.get(name).map_err(api_error)?;
        Ok(self.svc.inspect_json(&v))
    }

    fn remove(&self, name: &str, force: bool) -> Result<(), ApiError> {
        match self.svc.get(name) {
            Err(Error::NotFound(_)) if force => return Ok(()),
            other => other.map_err(api_error)?,
        };
        let users = self.users(name)?;
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.svc.remove(name).map_err(api_error)
    }

    fn prune(&self, filters: &str) -> Result<Value, ApiError> {
        let f = parse_filters(filters)?;
        // Since Docker 23 (API 1.42) prune takes anonymous volumes only, unless all=true.
        let all = f
            .get("all")
            .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for v in self.svc.list().map_err(api_error)? {
            if !all && !v.is_anonymous() {
                continue;
            }
            if let Some(labels) = f.get("label")
                && !label_matches(&v, labels)
            {
                continue;
            }
            if !self.users(&v.name)?.is_empty() {
                continue;
            }
            reclaimed += berth_volumes::dir_size(&self.svc.mountpoint(&v.name));
            self.svc.remove(&v.name).map_err(api_error)?;
            deleted.push(v.name);
        }
        Ok(json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }
}
