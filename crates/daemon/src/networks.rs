//! The network backend of the API: `berth-network` (and, for connect and disconnect,
//! `berth-containers`) behind `berth_api::NetworkBackend`, and the one place where
//! network errors become HTTP statuses.

use std::collections::BTreeMap;

use berth_api::{ApiError, NetworkBackend};
use berth_containers::ContainerService;
use berth_network::{CreateRequest, Error, NetworkService};
use serde_json::{Value, json};

/// Maps network errors to Docker's statuses.
pub fn api_error(e: Error) -> ApiError {
    match e {
        Error::NotFound(_) => ApiError::not_found(e.to_string()),
        Error::InvalidInput(m) => ApiError::bad_request(m),
        Error::Conflict(m) => ApiError::conflict(m),
        Error::Forbidden(m) => ApiError::forbidden(m),
        Error::Internal(m) => ApiError::internal(m),
    }
}

/// Networks as the API sees them.
pub struct Networks {
    net: NetworkService,
    containers: ContainerService,
}

impl Networks {
    /// Both services the endpoints need.
    pub fn new(net: NetworkService, containers: ContainerService) -> Self {
        Networks { net, containers }
    }

    fn name_of(&self, id: &str) -> String {
        self.containers.get(id).map(|r| r.name).unwrap_or_default()
    }

    fn parse_filters(filters: &str) -> Result<Value, ApiError> {
        if filters.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_str(filters)
            .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))
    }
}

/// A JSON object's string values (labels, options).
pub(crate) fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect()
}

fn container_of(body: &Value) -> Result<String, ApiError> {
    body["Container"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(String::from)
        .ok_or_else(|| ApiError::bad_request("Container is required"))
}

impl NetworkBackend for Networks {
    fn list(&self, filters: &str) -> Result<Value, ApiError> {
        let f = Self::parse_filters(filters)?;
        let mut out = Vec::new();
        for n in self.net.list().map_err(api_error)? {
            if !berth_network::matches_filters(&n, &f).map_err(ApiError::bad_request)? {
                continue;
            }
            out.push(berth_network::inspect_json(&n, &[], &|_| String::new()));
        }
        Ok(Value::Array(out))
    }

    fn inspect(&self, id: &str) -> Result<Value, ApiError> {
        let n = self.net.get(id).map_err(api_error)?;
        let eps = self.net.endpoints_in(&n.id).map_err(api_error)?;
        Ok(berth_network::inspect_json(&n, &eps, &|c| self.name_of(c)))
    }

    fn create(&self, body: &Value) -> Result<Value, ApiError> {
        let name = body["Name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::bad_request("Name is required"))?;
        // One IPv4 and one IPv6 configuration at most; which is which by the subnet.
        let configs: Vec<Value> = body["IPAM"]["Config"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let is_v6 = |c: &Value| c["Subnet"].as_str().is_some_and(|s| s.contains(':'));
        let ipam = configs
            .iter()
            .find(|c| !is_v6(c))
            .cloned()
            .unwrap_or(Value::Null);
        let ipam6 = configs
            .iter()
            .find(|c| is_v6(c))
            .cloned()
            .unwrap_or(Value::Null);
        let text = |v: &Value| v.as_str().map(String::from);
        let req = CreateRequest {
            name: name.to_string(),
            driver: body["Driver"].as_str().unwrap_or("").to_string(),
            subnet: text(&ipam["Subnet"]),
            gateway: text(&ipam["Gateway"]),
            ip_range: text(&ipam["IPRange"]),
            internal: body["Internal"].as_bool().unwrap_or(false),
            labels: string_map(&body["Labels"]),
            options: string_map(&body["Options"]),
            aux_addresses: string_map(&ipam["AuxiliaryAddresses"]),
            ipam_options: string_map(&body["IPAM"]["Options"]),
            enable_ipv6: body["EnableIPv6"].as_bool().unwrap_or(false),
            subnet6: text(&ipam6["Subnet"]),
            gateway6: text(&ipam6["Gateway"]),
        };
        let n = self.net.create(req).map_err(api_error)?;
        Ok(json!({"Id": n.id, "Warning": ""}))
    }

    fn remove(&self, id: &str) -> Result<(), ApiError> {
        self.net.remove(id).map_err(api_error)
    }

    fn prune(&self, filters: &str) -> Result<Value, ApiError> {
        let f = Self::parse_filters(filters)?;
        let until = f["until"]
            .as_object()
            .and_then(|m| m.keys().next().cloned())
            .or_else(|| f["until"].get(0).and_then(|v| v.as_str()).map(String::from));
        let now = berth_types::time::unix_seconds(std::time::SystemTime::now()) as f64;
        let cutoff = match until {
            Some(u) => Some(
                berth_types::time::parse_point_in_time(&u, now)
                    .ok_or_else(|| ApiError::bad_request(format!("invalid until filter: {u}")))?,
            ),
            None => None,
        };
        let keep = |n: &berth_network::NetworkRecord| {
            let old_enough = cutoff.is_none_or(|c| {
                berth_types::time::parse_rfc3339_seconds(&n.created).is_some_and(|t| (t as f64) < c)
            });
            old_enough && berth_network::matches_filters(n, &f).unwrap_or(false)
        };
        let gone = self.net.prune(&keep).map_err(api_error)?;
        Ok(json!({"NetworksDeleted": gone}))
    }

    fn connect(&self, id: &str, body: &Value) -> Result<(), ApiError> {
        let container = container_of(body)?;
        let endpoint = body["EndpointConfig"].clone();
        let endpoint = if endpoint.is_null() {
            json!({})
        } else {
            endpoint
        };
        self.containers
            .connect(&container, id, &endpoint)
            .map_err(crate::containers::api_error)
    }

    fn disconnect(&self, id: &str, body: &Value) -> Result<(), ApiError> {
        let container = container_of(body)?;
        self.containers
            .disconnect(&container, id)
            .map_err(crate::containers::api_error)
    }
}
