//! A container's networking as Docker configures it: the mode from `HostConfig.
//! NetworkMode`, the networks it joins and the ports it publishes, the `/etc/hosts` and
//! `/etc/resolv.conf` it sees, and Docker's `NetworkSettings` views.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use berth_network::{Attachment, Endpoint, NetworkRecord, NetworkService, PortRequest};
use serde_json::{Value, json};

use crate::{ContainerRecord, Error, Result};

/// How a container is networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The host's own stack (`--network host`).
    Host,
    /// Only a loopback (`--network none`).
    Loopback,
    /// Another container's namespace (`--network container:<name|id>`).
    Container(String),
    /// Its own namespace on a network (the default bridge unless named).
    Network(String),
}

pub(crate) fn mode(host: &Value) -> Mode {
    match host["NetworkMode"].as_str().unwrap_or("") {
        "host" => Mode::Host,
        "none" => Mode::Loopback,
        "" | "default" | "bridge" => Mode::Network("bridge".into()),
        other => match other.strip_prefix("container:") {
            Some(c) => Mode::Container(c.into()),
            None => Mode::Network(other.into()),
        },
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// The ports a container asks to publish (none outside its own network namespace).
pub(crate) fn port_requests(config: &Value, host: &Value) -> Result<Vec<PortRequest>> {
    if !matches!(mode(host), Mode::Network(_)) {
        return Ok(Vec::new());
    }
    berth_network::ports::requests(
        &host["PortBindings"],
        host["PublishAllPorts"].as_bool().unwrap_or(false),
        &config["ExposedPorts"],
    )
    .map_err(Error::InvalidInput)
}

/// Checks a create request's networking before anything is stored.
pub(crate) fn validate(net: &NetworkService, config: &Value, host: &Value) -> Result<()> {
    if let Mode::Network(name) = mode(host) {
        // A network that does not exist yet is no error until start, as in dockerd:
        // compose creates a project's containers and networks in either order.
        match net.get(&name) {
            Ok(_) | Err(berth_network::Error::NotFound(_)) => {}
            Err(other) => return Err(net_error(other)),
        }
    }
    let publishes = host["PortBindings"]
        .as_object()
        .is_some_and(|m| !m.is_empty());
    if matches!(mode(host), Mode::Container(_)) && publishes {
        return Err(Error::InvalidInput(
            "conflicting options: port publishing and the container type network mode".into(),
        ));
    }
    port_requests(config, host)?;
    for h in strings(&host["ExtraHosts"]) {
        parse_extra_host(&h, None)?;
    }
    Ok(())
}

/// The endpoint settings of a create: a fixed address only on user-defined networks,
/// as dockerd says.
pub(crate) fn validate_endpoints(host: &Value, endpoints: &Value) -> Result<()> {
    for (name, cfg) in endpoints.as_object().into_iter().flatten() {
        let on_default = matches!(name.as_str(), "bridge" | "default")
            && mode(host) == Mode::Network("bridge".into());
        let fixed = cfg["IPAMConfig"]["IPv4Address"]
            .as_str()
            .is_some_and(|a| !a.is_empty());
        if on_default && fixed {
            return Err(Error::InvalidInput(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn net_error(e: berth_network::Error) -> Error {
    match e {
        berth_network::Error::NotFound(_) => Error::Missing(e.to_string()),
        berth_network::Error::InvalidInput(m) => Error::InvalidInput(m),
        berth_network::Error::Conflict(m) | berth_network::Error::Forbidden(m) => {
            Error::Conflict(m)
        }
        berth_network::Error::Internal(m) => Error::Internal(m),
    }
}

/// The networks a container joins at start, its mode's first, then those added by
/// `network connect`.
pub(crate) fn networks_to_join(rec: &ContainerRecord) -> Vec<String> {
    let Mode::Network(first) = mode(&rec.host_config) else {
        return Vec::new();
    };
    // A null entry is a network the container was disconnected from.
    let left = |name: &str| rec.networking.get(name).is_some_and(Value::is_null);
    let mut out = Vec::new();
    if !left(&first) {
        out.push(first.clone());
    }
    for (key, cfg) in rec.networking.as_object().into_iter().flatten() {
        let same = key == &first || (first == "bridge" && key == "default");
        if !same && !cfg.is_null() && !out.contains(key) {
            out.push(key.clone());
        }
    }
    out
}

/// Legacy links given for a network (`name:alias`), which on a user network are DNS
/// aliases that only the linking container sees.
fn endpoint_links(cfg: &Value) -> Vec<(String, String)> {
    strings(&cfg["Links"])
        .iter()
        .map(|l| {
            let (t, a) = l.split_once(':').unwrap_or((l, l));
            let alias = a.rsplit('/').next().unwrap_or(a);
            (t.trim_start_matches('/').to_string(), alias.to_string())
        })
        .collect()
}

/// What joining `network` asks for, from `NetworkingConfig.EndpointsConfig`.
pub(crate) fn attachment(rec: &ContainerRecord, network: &str) -> Result<Attachment> {
    let endpoints = &rec.networking;
    let cfg = endpoints
        .get(network)
        .or_else(|| {
            (network == "bridge")
                .then(|| endpoints.get("default"))
                .flatten()
        })
        .cloned()
        .unwrap_or(Value::Null);
    let ip = match cfg["IPAMConfig"]["IPv4Address"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        Some(s) => Some(
            s.parse::<Ipv4Addr>()
                .map_err(|_| Error::InvalidInput(format!("invalid IPv4 address: {s}")))?,
        ),
        None => None,
    };
    let ip6 = match cfg["IPAMConfig"]["IPv6Address"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        Some(s) => Some(
            s.parse::<std::net::Ipv6Addr>()
                .map_err(|_| Error::InvalidInput(format!("invalid IPv6 address: {s}")))?,
        ),
        None => None,
    };
    let mac = cfg["MacAddress"]
        .as_str()
        .or(rec.config["MacAddress"].as_str())
        .filter(|s| !s.is_empty())
        .map(String::from);
    Ok(Attachment {
        network: network.into(),
        ip,
        ip6,
        mac,
        aliases: strings(&cfg["Aliases"]),
        names: vec![rec.name.clone(), rec.id[..12.min(rec.id.len())].to_string()],
        links: endpoint_links(&cfg)
            .into_iter()
            .chain(
                crate::links::parse(&rec.host_config)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| (l.target, l.alias)),
            )
            .collect(),
    })
}

/// `--add-host name:ip` (also `name=ip`); `host-gateway` is the default bridge's gateway.
fn parse_extra_host(s: &str, gateway: Option<Ipv4Addr>) -> Result<(String, String)> {
    let (name, ip) = s
        .split_once(':')
        .or_else(|| s.split_once('='))
        .ok_or_else(|| Error::InvalidInput(format!("invalid add-host: {s}: want name:ip")))?;
    let ip = if ip == "host-gateway" {
        gateway
            .map(|g| g.to_string())
            .unwrap_or_else(|| ip.to_string())
    } else {
        ip.parse::<std::net::IpAddr>()
            .map_err(|_| Error::InvalidInput(format!("invalid IP address in add-host: {ip}")))?
            .to_string()
    };
    Ok((name.to_string(), ip))
}

/// The container's `/etc/hosts`: Docker's standard lines, its own address and name, then
/// `--add-host` entries.
pub(crate) fn hosts_file(
    rec: &ContainerRecord,
    own_ip: Option<Ipv4Addr>,
    host_gateway: Option<Ipv4Addr>,
) -> Result<String> {
    let hostname = rec.config["Hostname"].as_str().unwrap_or("");
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in strings(&rec.host_config["ExtraHosts"]) {
        let (name, ip) = parse_extra_host(&h, host_gateway)?;
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = own_ip {
        let domain = rec.config["Domainname"].as_str().unwrap_or("");
        let names = if domain.is_empty() {
            hostname.to_string()
        } else {
            format!("{hostname}.{domain} {hostname}")
        };
        s.push_str(&format!("{ip}\t{names}\n"));
    }
    Ok(s)
}

/// The container's `/etc/resolv.conf`: the host's, minus loopback name servers (they
/// would be the container's own loopback), with `--dns`, `--dns-search` and
/// `--dns-option` replacing what they name; Google's servers when nothing is left, as
/// Docker does.
pub(crate) fn resolv_conf(host_resolv: &str, host: &Value) -> String {
    let dns = strings(&host["Dns"]);
    let search = strings(&host["DnsSearch"]);
    let options = strings(&host["DnsOptions"]);
    let mut servers = Vec::new();
    let mut searches = Vec::new();
    let mut opts = Vec::new();
    for line in host_resolv.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next() {
                    let loopback = ip
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_loopback());
                    if !loopback {
                        servers.push(ip.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => searches = words.map(String::from).collect(),
            Some("options") => opts.extend(words.map(String::from)),
            _ => {}
        }
    }
    if !dns.is_empty() {
        servers = dns;
    }
    if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    if !search.is_empty() {
        searches = search.into_iter().filter(|s| s != ".").collect();
    }
    if !options.is_empty() {
        opts = options;
    }
    let mut s = String::new();
    if !searches.is_empty() {
        s.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for ns in servers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !opts.is_empty() {
        s.push_str(&format!("options {}\n", opts.join(" ")));
    }
    s
}

/// Where a container's DNS queries go when its resolv.conf names the embedded server:
/// `--dns` servers, else the host's (loopback ones too: the relay runs on the host).
pub(crate) fn dns_upstream(host_resolv: &str, host: &Value) -> Vec<std::net::SocketAddr> {
    let dns = strings(&host["Dns"]);
    if dns.is_empty() {
        return berth_network::dns::servers_of(host_resolv);
    }
    dns.iter()
        .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

/// The resolv.conf of a container on a user-defined network: the embedded server only,
/// with the search list and options it would have had, and `ndots:0` as Docker writes.
pub(crate) fn embedded_resolv_conf(host_resolv: &str, host: &Value) -> String {
    let plain = resolv_conf(host_resolv, host);
    let mut s = format!("nameserver {}\n", berth_network::dns::ADDRESS);
    let mut options = vec!["ndots:0".to_string()];
    for line in plain.lines() {
        if line.starts_with("search ") {
            s.push_str(line);
            s.push('\n');
        } else if let Some(opts) = line.strip_prefix("options ") {
            options.extend(
                opts.split_whitespace()
                    .filter(|o| !o.starts_with("ndots:"))
                    .map(String::from),
            );
        }
    }
    s.push_str(&format!("options {}\n", options.join(" ")));
    s
}

/// A running container's network as the views need it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Live {
    pub sandbox: Option<PathBuf>,
    pub endpoints: Vec<(NetworkRecord, Endpoint)>,
}

fn endpoint_json(rec: &ContainerRecord, n: &NetworkRecord, e: Option<&Endpoint>) -> Value {
    let cfg = rec.networking.get(&n.name).cloned().unwrap_or(Value::Null);
    let ip = e.map(|e| e.ip.to_string()).unwrap_or_default();
    json!({
        "IPAMConfig": cfg.get("IPAMConfig").cloned().unwrap_or(Value::Null),
        "Links": cfg.get("Links").cloned().unwrap_or(Value::Null),
        "Aliases": e.map(|e| json!(e.aliases)).or_else(|| cfg.get("Aliases").cloned()).filter(|a| a.as_array().is_some_and(|a| !a.is_empty())).unwrap_or(Value::Null),
        "MacAddress": e.map(|e| e.mac.clone()).or_else(|| cfg["MacAddress"].as_str().map(String::from)).unwrap_or_default(),
        "DriverOpts": cfg.get("DriverOpts").cloned().unwrap_or(Value::Null),
        "NetworkID": n.id,
        "EndpointID": e.map(|e| e.id.clone()).unwrap_or_default(),
        "Gateway": e.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "IPAddress": ip,
        "IPPrefixLen": e.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": e.and_then(|e| e.gateway6).map(|g| g.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": e.and_then(|e| e.ip6).map(|ip| ip.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": e.filter(|e| e.ip6.is_some()).map_or(0, |e| e.prefix6),
        "DNSNames": e.map(|e| json!(e.dns_names)).filter(|_| !n.is_default_bridge()).unwrap_or(Value::Null)
    })
}

/// `.NetworkSettings` of `inspect`.
pub(crate) fn settings(rec: &ContainerRecord, live: &Live, networks: &[NetworkRecord]) -> Value {
    let mut nets = serde_json::Map::new();
    let joined: Vec<String> = match mode(&rec.host_config) {
        Mode::Host => vec!["host".into()],
        Mode::Loopback => vec!["none".into()],
        Mode::Container(_) => Vec::new(),
        Mode::Network(_) => networks_to_join(rec),
    };
    for name in joined {
        let Some(n) = networks.iter().find(|n| n.name == name || n.id == name) else {
            continue;
        };
        let e = live
            .endpoints
            .iter()
            .find(|(ln, _)| ln.id == n.id)
            .map(|(_, e)| e);
        nets.insert(n.name.clone(), endpoint_json(rec, n, e));
    }
    let mappings: Vec<berth_network::PortMapping> = live
        .endpoints
        .iter()
        .flat_map(|(_, e)| e.ports.clone())
        .collect();
    let running = live.sandbox.is_some() || !live.endpoints.is_empty();
    let ports = if running {
        berth_network::ports::settings_json(&rec.config["ExposedPorts"], &mappings)
    } else {
        json!({})
    };
    let default = live
        .endpoints
        .iter()
        .find(|(n, _)| n.is_default_bridge())
        .map(|(_, e)| e);
    json!({
        "Bridge": "",
        "SandboxID": live.sandbox.as_ref().map(|_| rec.id.clone()).unwrap_or_default(),
        "SandboxKey": live.sandbox.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": default.map(|e| e.id.clone()).unwrap_or_default(),
        "Gateway": default.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": default.and_then(|e| e.ip6).map(|ip| ip.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": default.filter(|e| e.ip6.is_some()).map_or(0, |e| e.prefix6),
        "IPAddress": default.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": default.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": default.and_then(|e| e.gateway6).map(|g| g.to_string()).unwrap_or_default(),
        "MacAddress": default.map(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": nets
    })
}

/// `Ports` of a `ps` item: published ports, then exposed ones that are not.
pub(crate) fn summary_ports(rec: &ContainerRecord, live: &Live) -> Value {
    let mut out = Vec::new();
    let mappings: Vec<&berth_network::PortMapping> = live
        .endpoints
        .iter()
        .flat_map(|(_, e)| e.ports.iter())
        .collect();
    for m in &mappings {
        let ip = if m.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &m.host_ip
        };
        out.push(json!({"IP": ip, "PrivatePort": m.container_port, "PublicPort": m.host_port, "Type": m.proto}));
    }
    for key in rec.config["ExposedPorts"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if let Ok((port, proto)) = berth_network::ports::parse_key(key)
            && !mappings
                .iter()
                .any(|m| m.container_port == port && m.proto == proto)
        {
            out.push(json!({"PrivatePort": port, "Type": proto}));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_drops_loopback_servers_and_takes_overrides() {
        let host =
            "search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &json!({})),
            "search example.org\nnameserver 10.0.0.2\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", &json!({})),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let h = json!({"Dns": ["1.1.1.1"], "DnsSearch": ["a.b"], "DnsOptions": ["ndots:2"]});
        assert_eq!(
            resolv_conf(host, &h),
            "search a.b\nnameserver 1.1.1.1\noptions ndots:2\n"
        );
    }

    #[test]
    fn modes_follow_docker_names() {
        assert_eq!(
            mode(&json!({"NetworkMode": "default"})),
            Mode::Network("bridge".into())
        );
        assert_eq!(mode(&json!({"NetworkMode": "host"})), Mode::Host);
        assert_eq!(mode(&json!({"NetworkMode": "none"})), Mode::Loopback);
        assert_eq!(
            mode(&json!({"NetworkMode": "container:abc"})),
            Mode::Container("abc".into())
        );
        assert_eq!(
            mode(&json!({"NetworkMode": "mynet"})),
            Mode::Network("mynet".into())
        );
    }

    #[test]
    fn extra_hosts_parse_and_refuse_garbage() {
        let gw = Some(Ipv4Addr::new(172, 17, 0, 1));
        assert_eq!(
            parse_extra_host("db:10.0.0.5", gw).unwrap(),
            ("db".into(), "10.0.0.5".into())
        );
        assert_eq!(
            parse_extra_host("h:host-gateway", gw).unwrap().1,
            "172.17.0.1"
        );
        assert!(parse_extra_host("nohost", gw).is_err());
        assert!(parse_extra_host("x:notanip", gw).is_err());
    }
}
