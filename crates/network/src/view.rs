//! Docker's JSON view of a network and its list filters.

use serde_json::{Value, json};

use crate::{Endpoint, NetworkRecord};

/// `GET /networks/{id}` (and, with no endpoints, a `GET /networks` item). `names` gives
/// the container name for an endpoint's container id.
pub fn inspect_json(
    n: &NetworkRecord,
    endpoints: &[Endpoint],
    names: &dyn Fn(&str) -> String,
) -> Value {
    let config: Vec<Value> = n
        .subnet
        .map(|s| {
            let mut c = json!({"Subnet": s.to_string()});
            if let Some(g) = n.gateway {
                c["Gateway"] = json!(g.to_string());
            }
            if let Some(r) = n.ip_range {
                c["IPRange"] = json!(r.to_string());
            }
            if !n.aux_addresses.is_empty() {
                c["AuxiliaryAddresses"] = json!(n.aux_addresses);
            }
            vec![c]
        })
        .unwrap_or_default();
    let mut config = config;
    if let Some(s6) = n.subnet6 {
        let mut c = json!({"Subnet": s6.to_string()});
        if let Some(g) = n.gateway6 {
            c["Gateway"] = json!(g.to_string());
        }
        config.push(c);
    }
    let containers: serde_json::Map<String, Value> = endpoints
        .iter()
        .map(|e| {
            (
                e.container_id.clone(),
                json!({
                    "Name": names(&e.container_id),
                    "EndpointID": e.id,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                    "IPv6Address": e.ip6.map(|ip| format!("{ip}/{}", e.prefix6)).unwrap_or_default()
                }),
            )
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": n.subnet6.is_some(),
        "IPAM": {"Driver": "default", "Options": if n.ipam_options.is_empty() { json!(null) } else { json!(n.ipam_options) }, "Config": config},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels
    })
}

/// Docker's `network ls` filters: `name` (substring), `id` (prefix), `driver`, `label`
/// (`key` or `key=value`), `type` (`builtin`/`custom`), `scope` (`local`), `dangling`
/// (handled by the caller, which knows the containers).
pub fn matches_filters(n: &NetworkRecord, filters: &Value) -> Result<bool, String> {
    let Some(map) = filters.as_object() else {
        return Ok(true);
    };
    let builtin = ["bridge", "host", "none"].contains(&n.name.as_str());
    for (key, values) in map {
        let values: Vec<String> = match values {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|v| f(v));
        let ok = match key.as_str() {
            "name" => any(&|v| n.name.contains(v)),
            "id" => any(&|v| n.id.starts_with(v)),
            "driver" => any(&|v| n.driver == v),
            "scope" => any(&|v| v == "local"),
            "type" => any(&|v| (v == "builtin" && builtin) || (v == "custom" && !builtin)),
            "label" => values.iter().all(|v| match v.split_once('=') {
                Some((k, val)) => n.labels.get(k).is_some_and(|x| x == val),
                None => n.labels.contains_key(v.as_str()),
            }),
            "dangling" | "until" => true,
            other => return Err(format!("invalid filter '{other}'")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}
