//! Published ports: Docker's `PortBindings` / `PublishAllPorts` turned into host ports,
//! checked against each other and against what the host already listens on.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One published port as it is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// The port inside the container.
    pub container_port: u16,
    /// The host address it is published on; empty for all (`0.0.0.0`).
    pub host_ip: String,
    /// The host port.
    pub host_port: u16,
}

impl PortMapping {
    /// `80/tcp`, the key Docker uses.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }

    fn shown_ip(&self) -> &str {
        if self.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &self.host_ip
        }
    }

    fn clashes_with(&self, proto: &str, host_ip: &str, port: u16) -> bool {
        self.proto == proto
            && self.host_port == port
            && (self.host_ip.is_empty() || host_ip.is_empty() || self.host_ip == host_ip)
    }
}

/// What a container asks for, before host ports are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    proto: String,
    container_port: u16,
    host_ip: String,
    /// Inclusive host port range; `None` for any ephemeral port.
    host_ports: Option<(u16, u16)>,
}

/// Parses `80/tcp` (the protocol defaults to tcp).
pub fn parse_key(key: &str) -> Result<(u16, String), String> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid containerPort: {port}"))?;
    Ok((port, proto))
}

fn parse_host_ports(s: &str) -> Result<Option<(u16, u16)>, String> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let bad = || format!("invalid hostPort: {s}");
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if lo == 0 || hi < lo {
        return Err(bad());
    }
    Ok(Some((lo, hi)))
}

/// The ports a container's configuration publishes: each `PortBindings` entry, plus
/// every `ExposedPorts` entry without one when `PublishAllPorts` is set. Validates all.
pub fn requests(
    port_bindings: &Value,
    publish_all: bool,
    exposed: &Value,
) -> Result<Vec<PortRequest>, String> {
    let mut out = Vec::new();
    let bindings = port_bindings.as_object();
    for (key, list) in bindings.into_iter().flatten() {
        let (container_port, proto) = parse_key(key)?;
        let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
        for b in list {
            let host_ip = b["HostIp"].as_str().unwrap_or("").to_string();
            match host_ip.parse::<IpAddr>() {
                _ if host_ip.is_empty() => {}
                Ok(IpAddr::V4(_)) => {}
                Ok(IpAddr::V6(_)) => {
                    return Err(format!(
                        "publishing on IPv6 address {host_ip} is not supported yet: give an IPv4 address or none"
                    ));
                }
                Err(_) => return Err(format!("invalid IP address: {host_ip}")),
            }
            out.push(PortRequest {
                proto: proto.clone(),
                container_port,
                host_ip: if host_ip == "0.0.0.0" {
                    String::new()
                } else {
                    host_ip
                },
                host_ports: parse_host_ports(b["HostPort"].as_str().unwrap_or(""))?,
            });
        }
    }
    if publish_all {
        for key in exposed.as_object().into_iter().flatten().map(|(k, _)| k) {
            let (container_port, proto) = parse_key(key)?;
            let bound = out
                .iter()
                .any(|r| r.container_port == container_port && r.proto == proto);
            if !bound {
                out.push(PortRequest {
                    proto,
                    container_port,
                    host_ip: String::new(),
                    host_ports: None,
                });
            }
        }
    }
    Ok(out)
}

/// The host's ephemeral port range, where Docker takes ports for `-P` and `-p 80`.
fn ephemeral_range() -> (u16, u16) {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = text.split_whitespace().filter_map(|s| s.parse().ok());
    match (it.next(), it.next()) {
        (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
        _ => (32768, 60999),
    }
}

/// Whether nothing on the host holds the port (a listening server would never see the
/// packets Berth redirects, so it is refused up front, as docker-proxy's bind would).
fn host_can_bind(proto: &str, host_ip: &str, port: u16) -> bool {
    let ip: IpAddr = host_ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, port);
    match proto {
        "tcp" => TcpListener::bind(addr).is_ok(),
        "udp" => UdpSocket::bind(addr).is_ok(),
        _ => true,
    }
}

/// Chooses host ports for `reqs`, clear of `taken` (ports other containers hold) and of
/// the host's own listeners. Fails with Docker's message on the first port that cannot
/// be had.
pub fn assign(reqs: &[PortRequest], taken: &[PortMapping]) -> Result<Vec<PortMapping>, String> {
    let mut held: Vec<PortMapping> = taken.to_vec();
    let mut out = Vec::new();
    for r in reqs {
        let free = |port: u16, held: &[PortMapping]| {
            !held
                .iter()
                .any(|m| m.clashes_with(&r.proto, &r.host_ip, port))
                && host_can_bind(&r.proto, &r.host_ip, port)
        };
        let port = match r.host_ports {
            Some((lo, hi)) => {
                let found = (lo..=hi).find(|p| free(*p, &held));
                found.ok_or_else(|| {
                    let ip = if r.host_ip.is_empty() {
                        "0.0.0.0"
                    } else {
                        &r.host_ip
                    };
                    let ports = if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    };
                    format!("Bind for {ip}:{ports} failed: port is already allocated")
                })?
            }
            None => {
                let (lo, hi) = ephemeral_range();
                (lo..=hi)
                    .find(|p| free(*p, &held))
                    .ok_or("no free host port in the ephemeral range")?
            }
        };
        let m = PortMapping {
            proto: r.proto.clone(),
            container_port: r.container_port,
            host_ip: r.host_ip.clone(),
            host_port: port,
        };
        held.push(m.clone());
        out.push(m);
    }
    Ok(out)
}

/// `.NetworkSettings.Ports` as Docker shows it: every exposed or published port, with
/// its host bindings (or null when only exposed).
pub fn settings_json(exposed: &Value, mappings: &[PortMapping]) -> Value {
    let mut ports = serde_json::Map::new();
    for key in exposed.as_object().into_iter().flatten().map(|(k, _)| k) {
        if let Ok((port, proto)) = parse_key(key) {
            ports.insert(format!("{port}/{proto}"), Value::Null);
        }
    }
    for m in mappings {
        let entry = ports.entry(m.key()).or_insert(Value::Null);
        if !entry.is_array() {
            *entry = Value::Array(Vec::new());
        }
        if let Value::Array(list) = entry {
            list.push(
                serde_json::json!({"HostIp": m.shown_ip(), "HostPort": m.host_port.to_string()}),
            );
        }
    }
    Value::Object(ports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_and_publish_all_become_requests() {
        let reqs = requests(
            &json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
            true,
            &json!({"80/tcp": {}, "443/tcp": {}}),
        )
        .unwrap();
        assert_eq!(reqs.len(), 3);
        assert!(
            reqs.iter()
                .any(|r| r.container_port == 443 && r.host_ports.is_none())
        );
        assert!(
            reqs.iter()
                .any(|r| r.proto == "udp" && r.host_ip == "127.0.0.1")
        );
    }

    #[test]
    fn bad_ports_are_refused() {
        let none = json!({});
        assert!(requests(&json!({"x/tcp": []}), false, &none).is_err());
        assert!(requests(&json!({"80/xyz": []}), false, &none).is_err());
        assert!(requests(&json!({"80/tcp": [{"HostPort": "99999"}]}), false, &none).is_err());
        assert!(
            requests(
                &json!({"80/tcp": [{"HostIp": "nope", "HostPort": "1"}]}),
                false,
                &none
            )
            .is_err()
        );
        let v6 = requests(
            &json!({"80/tcp": [{"HostIp": "::1", "HostPort": "1"}]}),
            false,
            &none,
        );
        assert!(v6.unwrap_err().contains("IPv6"));
    }

    #[test]
    fn a_taken_port_is_refused_and_ranges_skip_it() {
        let taken = [PortMapping {
            proto: "tcp".into(),
            container_port: 80,
            host_ip: String::new(),
            host_port: 41234,
        }];
        let one = requests(
            &json!({"80/tcp": [{"HostPort": "41234"}]}),
            false,
            &json!({}),
        )
        .unwrap();
        let err = assign(&one, &taken).unwrap_err();
        assert_eq!(
            err,
            "Bind for 0.0.0.0:41234 failed: port is already allocated"
        );
        let udp = requests(
            &json!({"80/udp": [{"HostPort": "41234"}]}),
            false,
            &json!({}),
        )
        .unwrap();
        assert_eq!(assign(&udp, &taken).unwrap()[0].host_port, 41234);
        let range = requests(
            &json!({"80/tcp": [{"HostPort": "41234-41236"}]}),
            false,
            &json!({}),
        )
        .unwrap();
        assert_eq!(assign(&range, &taken).unwrap()[0].host_port, 41235);
    }

    #[test]
    fn a_port_the_host_listens_on_is_refused() {
        let l = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let req = requests(
            &json!({"80/tcp": [{"HostPort": port.to_string()}]}),
            false,
            &json!({}),
        )
        .unwrap();
        assert!(assign(&req, &[]).is_err());
    }

    #[test]
    fn settings_show_exposed_and_published() {
        let m = PortMapping {
            proto: "tcp".into(),
            container_port: 80,
            host_ip: String::new(),
            host_port: 8080,
        };
        let s = settings_json(&json!({"80/tcp": {}, "443/tcp": {}}), &[m]);
        assert_eq!(
            s,
            json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": null})
        );
    }
}
