//! Networking on the command line: the `run`/`create` network flags (`--network`, `-p`,
//! `-P`, `--expose`, `--ip`, `--network-alias`, `--link`, `--dns*`, `--add-host`,
//! `--mac-address`), `port`, the `PORTS` column of `ps`, and `network ls|create|inspect|
//! rm|prune|connect|disconnect`.

use std::io::Write;

use serde_json::{Value, json};

use crate::client::{Client, enc_path};
use crate::{CliError, CmdResult, format};

/// The network flags of `run` and `create`.
#[derive(clap::Args, Default)]
pub struct NetArgs {
    /// Connect a container to a network
    #[arg(long = "network", visible_alias = "net")]
    network: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long = "expose")]
    expose: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip")]
    ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long = "ip6")]
    ip6: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    aliases: Vec<String>,
    /// Add link to another container
    #[arg(long = "link")]
    links: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", visible_alias = "dns-opt")]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    mac_address: Option<String>,
}

/// A flag error of `run`/`create`, worded and ended as the docker CLI does.
fn bad(message: String) -> CliError {
    CliError {
        message: format!("{message}\n\nRun 'berth run --help' for more information"),
        code: 125,
    }
}

/// `a` or `a-b` as an inclusive range; `what` names the field in the error.
fn port_range(s: &str, what: &str) -> Result<(u16, u16), CliError> {
    let parse = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| bad(format!("berth: invalid {what}: {s}")))
    };
    match s.split_once('-') {
        Some((a, b)) => Ok((parse(a)?, parse(b)?)),
        None => parse(s).map(|p| (p, p)),
    }
}

/// One `-p` value as (container port key, host ip, host port) entries:
/// `[ip:][hostPort:]containerPort[/proto]`, with ranges on either side.
pub fn parse_publish(spec: &str) -> Result<Vec<(String, String, String)>, CliError> {
    let (rest, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let (ip, rest) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (ip, after) = v6
                .split_once("]:")
                .ok_or_else(|| bad(format!("berth: invalid publish spec: {spec}")))?;
            (ip.to_string(), after)
        }
        None => match rest.matches(':').count() {
            2 => {
                let (ip, after) = rest.split_once(':').unwrap_or(("", rest));
                (ip.to_string(), after)
            }
            _ => (String::new(), rest),
        },
    };
    let (host, container) = rest.rsplit_once(':').unwrap_or(("", rest));
    let (c_lo, c_hi) = port_range(container, "containerPort")?;
    let count = usize::from(c_hi.saturating_sub(c_lo)) + 1;
    let hosts: Vec<String> = if host.is_empty() {
        vec![String::new(); count]
    } else {
        let (h_lo, h_hi) = port_range(host, "hostPort")?;
        if count == 1 {
            vec![if h_lo == h_hi {
                h_lo.to_string()
            } else {
                format!("{h_lo}-{h_hi}")
            }]
        } else if usize::from(h_hi - h_lo) + 1 == count {
            (h_lo..=h_hi).map(|p| p.to_string()).collect()
        } else {
            return Err(bad(format!(
                "berth: invalid ranges specified for container and host Ports: {container} and {host}"
            )));
        }
    };
    Ok((c_lo..=c_hi)
        .zip(hosts)
        .map(|(p, h)| (format!("{p}/{proto}"), ip.clone(), h))
        .collect())
}

/// The user-defined network `run` names, if any: the engine accepts a container on a
/// network that does not exist yet (compose makes them in either order) and fails its
/// start, so `run` looks first and leaves nothing behind.
pub fn named_user_network(a: &NetArgs) -> Option<&str> {
    a.network
        .as_deref()
        .filter(|n| !matches!(*n, "" | "default" | "bridge" | "host" | "none"))
        .filter(|n| !n.starts_with("container:"))
}

/// Writes the network flags into a create request body.
pub fn apply(a: &NetArgs, body: &mut Value) -> Result<(), CliError> {
    let host = &mut body["HostConfig"];
    let mut bindings = serde_json::Map::new();
    let mut exposed = serde_json::Map::new();
    for p in &a.publish {
        for (key, ip, port) in parse_publish(p)? {
            exposed.insert(key.clone(), json!({}));
            let list = bindings.entry(key).or_insert_with(|| json!([]));
            if let Value::Array(l) = list {
                l.push(json!({"HostIp": ip, "HostPort": port}));
            }
        }
    }
    for e in &a.expose {
        let (range, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let (lo, hi) = port_range(range, "range format for --expose")?;
        for p in lo..=hi {
            exposed.insert(format!("{p}/{proto}"), json!({}));
        }
    }
    host["PortBindings"] = Value::Object(bindings);
    host["PublishAllPorts"] = json!(a.publish_all);
    host["Links"] = json!(a.links);
    host["Dns"] = json!(a.dns);
    host["DnsSearch"] = json!(a.dns_search);
    host["DnsOptions"] = json!(a.dns_option);
    host["ExtraHosts"] = json!(a.add_host);
    let mode = a.network.clone().unwrap_or_else(|| "default".into());
    host["NetworkMode"] = json!(mode);
    if !exposed.is_empty() {
        body["ExposedPorts"] = Value::Object(exposed);
    }
    if let Some(m) = &a.mac_address {
        body["MacAddress"] = json!(m);
    }
    if a.ip.is_some() || a.ip6.is_some() || !a.aliases.is_empty() || a.mac_address.is_some() {
        let mut ep = json!({"Aliases": a.aliases});
        ep["IPAMConfig"] = ipam_config(a.ip.as_deref(), a.ip6.as_deref());
        if let Some(m) = &a.mac_address {
            ep["MacAddress"] = json!(m);
        }
        body["NetworkingConfig"] = json!({"EndpointsConfig": {mode: ep}});
    }
    Ok(())
}

/// The `PORTS` column of `ps`, grouped and ordered as Docker's `DisplayablePorts`.
pub fn ports_column(ports: &Value) -> String {
    let mut list: Vec<(u16, String, u16, String)> = ports
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["PrivatePort"].as_u64().unwrap_or(0) as u16,
                p["IP"].as_str().unwrap_or("").to_string(),
                p["PublicPort"].as_u64().unwrap_or(0) as u16,
                p["Type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    list.sort();
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for (private, ip, public, kind) in list {
        let key = if ip.is_empty() {
            kind.clone()
        } else if public != private {
            mappings.push(format!(
                "{}->{private}/{kind}",
                join_host_port(&ip, &public.to_string())
            ));
            continue;
        } else {
            format!("{ip}/{kind}")
        };
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some(g) if g.2 + 1 == private => g.2 = private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                *g = (key, private, private);
            }
            None => groups.push((key, private, private)),
        }
    }
    for (key, first, last) in &groups {
        result.push(form_group(key, *first, *last));
    }
    result.extend(mappings);
    result.join(", ")
}

fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let (ip, kind) = key.rsplit_once('/').map_or(("", key), |(i, k)| (i, k));
    let range = if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    };
    if ip.is_empty() {
        format!("{range}/{kind}")
    } else {
        format!("{}->{range}/{kind}", join_host_port(ip, &range))
    }
}

/// `port` flags.
#[derive(clap::Args)]
pub struct PortArgs {
    /// The container
    container: String,
    /// PRIVATE_PORT[/PROTO]
    port: Option<String>,
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`.
pub fn port(c: &Client, a: PortArgs) -> CmdResult {
    let v = c.get(&format!("/containers/{}/json", enc_path(&a.container)))?;
    let ports = v["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut lines = Vec::new();
    let wanted = a.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        let (n, proto) = k.split_once('/').unwrap_or((k, ""));
        (n.parse::<u32>().unwrap_or(0), proto.to_string())
    });
    for key in keys {
        if wanted.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        for b in ports[key].as_array().into_iter().flatten() {
            let addr = join_host_port(
                b["HostIp"].as_str().unwrap_or(""),
                b["HostPort"].as_str().unwrap_or(""),
            );
            lines.push(if wanted.is_some() {
                addr
            } else {
                format!("{key} -> {addr}")
            });
        }
    }
    if lines.is_empty()
        && let Some(asked) = &a.port
    {
        return Err(CliError::new(format!(
            "Error: No public port '{asked}' published for {}",
            a.container
        )));
    }
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

/// `network` subcommands.
#[derive(clap::Subcommand)]
pub enum NetworkCommand {
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Create a network
    Create(CreateArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

/// `network ls` flags.
#[derive(clap::Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long = "format")]
    format: Option<String>,
}

/// `network create` flags.
#[derive(clap::Args)]
pub struct CreateArgs {
    /// Driver to manage the network
    #[arg(short = 'd', long = "driver", default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format (an IPv4 one and, with --ipv6, an IPv6 one)
    #[arg(long = "subnet")]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway")]
    gateway: Vec<String>,
    /// Enable or disable IPv6 networking
    #[arg(long = "ipv6")]
    ipv6: bool,
    /// Allocate container IPs from a sub-range
    #[arg(long = "ip-range")]
    ip_range: Option<String>,
    /// Auxiliary IPv4 addresses used by Network driver (name=ip)
    #[arg(long = "aux-address")]
    aux_address: Vec<String>,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt")]
    ipam_opt: Vec<String>,
    /// Restrict external access to the network
    #[arg(long = "internal")]
    internal: bool,
    /// Enable manual container attachment (accepted; every network is)
    #[arg(long = "attachable")]
    attachable: bool,
    /// Set metadata on a network
    #[arg(long = "label")]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// The network's name
    name: String,
}

/// `network inspect` flags.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long = "format")]
    format: Option<String>,
    /// Networks
    #[arg(required = true)]
    names: Vec<String>,
}

/// `network rm` flags.
#[derive(clap::Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Networks
    #[arg(required = true)]
    names: Vec<String>,
}

/// `network prune` flags.
#[derive(clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `network connect` flags.
#[derive(clap::Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias")]
    alias: Vec<String>,
    /// IPv4 address
    #[arg(long = "ip")]
    ip: Option<String>,
    /// IPv6 address
    #[arg(long = "ip6")]
    ip6: Option<String>,
    /// Add link to another container (accepted, as on user networks it adds nothing)
    #[arg(long = "link")]
    link: Vec<String>,
    /// The network
    network: String,
    /// The container
    container: String,
}

/// `network disconnect` flags.
#[derive(clap::Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// The network
    network: String,
    /// The container
    container: String,
}

/// An endpoint's `IPAMConfig` for `--ip`/`--ip6` (null when neither is given).
fn ipam_config(ip: Option<&str>, ip6: Option<&str>) -> Value {
    if ip.is_none() && ip6.is_none() {
        return Value::Null;
    }
    let mut c = json!({});
    if let Some(ip) = ip {
        c["IPv4Address"] = json!(ip);
    }
    if let Some(ip) = ip6 {
        c["IPv6Address"] = json!(ip);
    }
    c
}

/// Runs a `network` subcommand.
pub fn dispatch(c: &Client, cmd: NetworkCommand) -> CmdResult {
    match cmd {
        NetworkCommand::Ls(a) => ls(c, a),
        NetworkCommand::Create(a) => create(c, a),
        NetworkCommand::Inspect(a) => inspect(c, a),
        NetworkCommand::Rm(a) => rm(c, a),
        NetworkCommand::Prune(a) => prune(c, a),
        NetworkCommand::Connect(a) => {
            let mut ep = json!({"Aliases": a.alias, "Links": a.link});
            ep["IPAMConfig"] = ipam_config(a.ip.as_deref(), a.ip6.as_deref());
            let body = json!({"Container": a.container, "EndpointConfig": ep});
            c.post(
                &format!("/networks/{}/connect", enc_path(&a.network)),
                Some(&body),
            )?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            let body = json!({"Container": a.container, "Force": a.force});
            c.post(
                &format!("/networks/{}/disconnect", enc_path(&a.network)),
                Some(&body),
            )?;
            Ok(0)
        }
    }
}

fn ls(c: &Client, a: LsArgs) -> CmdResult {
    let path = crate::images::with_filters("/networks", &a.filter)?;
    let mut list = c.get(&path)?.as_array().cloned().unwrap_or_default();
    list.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let rows: Vec<Value> = list
        .iter()
        .map(|n| {
            let id = n["Id"].as_str().unwrap_or("");
            json!({
                "ID": if a.no_trunc { id.to_string() } else { id.chars().take(12).collect() },
                "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
                "Labels": format::labels_text(&n["Labels"]), "CreatedAt": n["Created"],
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let headers = json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"});
    let mut out = std::io::stdout().lock();
    format::print_list(
        &mut out,
        a.format.as_deref(),
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        &headers,
        &rows,
    )
    .map_err(CliError::new)?;
    let _ = out.flush();
    Ok(0)
}

fn key_values(list: &[String], what: &str) -> Result<serde_json::Map<String, Value>, CliError> {
    let mut m = serde_json::Map::new();
    for item in list {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        if k.is_empty() {
            return Err(bad(format!("berth: invalid {what}: {item}")));
        }
        m.insert(k.to_string(), json!(v));
    }
    Ok(m)
}

fn create(c: &Client, a: CreateArgs) -> CmdResult {
    let _ = a.attachable;
    // One configuration per address family; gateways and the IPv4-only settings go
    // with the subnet of their family.
    let v6 = |s: &str| s.contains(':');
    let mut config = Vec::new();
    for family6 in [false, true] {
        let mut ipam = json!({});
        if let Some(s) = a.subnet.iter().find(|s| v6(s) == family6) {
            ipam["Subnet"] = json!(s);
        }
        if let Some(g) = a.gateway.iter().find(|g| v6(g) == family6) {
            ipam["Gateway"] = json!(g);
        }
        if !family6 {
            if let Some(r) = &a.ip_range {
                ipam["IPRange"] = json!(r);
            }
            if !a.aux_address.is_empty() {
                ipam["AuxiliaryAddresses"] =
                    Value::Object(key_values(&a.aux_address, "aux-address")?);
            }
        }
        if ipam.as_object().is_some_and(|m| !m.is_empty()) {
            config.push(ipam);
        }
    }
    let body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "Internal": a.internal,
        "EnableIPv6": a.ipv6,
        "IPAM": {"Driver": "default", "Config": config, "Options": key_values(&a.ipam_opt, "ipam-opt")?},
        "Labels": key_values(&a.label, "label")?,
        "Options": key_values(&a.opt, "option")?,
    });
    let v = c.post("/networks/create", Some(&body))?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

fn inspect(c: &Client, a: InspectArgs) -> CmdResult {
    let mut found = Vec::new();
    let mut code = 0;
    for name in &a.names {
        match c.get(&format!("/networks/{}", enc_path(name))) {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    crate::print_inspected(&found, a.format.as_deref())?;
    Ok(code)
}

fn rm(c: &Client, a: RmArgs) -> CmdResult {
    let mut code = 0;
    for name in &a.names {
        match c.json("DELETE", &format!("/networks/{}", enc_path(name)), None) {
            Ok(_) => println!("{name}"),
            Err(e) if a.force && e.to_string().contains("not found") => {}
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    if code != 0 {
        // What the docker CLI adds after a failed removal.
        eprintln!("exit status {code}");
    }
    Ok(code)
}

fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    if !a.force
        && !crate::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let path = crate::images::with_filters("/networks/prune", &a.filter)?;
    let v = c.post(&path, None)?;
    crate::images::print_pruned(&v, "NetworksDeleted", "Networks", false);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs_parse_like_docker() {
        let p = |s| parse_publish(s).unwrap();
        assert_eq!(p("80"), [("80/tcp".into(), String::new(), String::new())]);
        assert_eq!(
            p("8080:80/udp"),
            [("80/udp".into(), String::new(), "8080".into())]
        );
        assert_eq!(
            p("127.0.0.1::80"),
            [("80/tcp".into(), "127.0.0.1".into(), String::new())]
        );
        assert_eq!(
            p("127.0.0.1:8080:80"),
            [("80/tcp".into(), "127.0.0.1".into(), "8080".into())]
        );
        assert_eq!(
            p("[::1]:8080:80"),
            [("80/tcp".into(), "::1".into(), "8080".into())]
        );
        assert_eq!(
            p("8000-8001:80-81"),
            [
                ("80/tcp".into(), String::new(), "8000".into()),
                ("81/tcp".into(), String::new(), "8001".into())
            ]
        );
        assert_eq!(
            p("8000-8010:80"),
            [("80/tcp".into(), String::new(), "8000-8010".into())]
        );
        assert!(parse_publish("8000-8002:80-81").is_err());
        assert!(parse_publish("x:80").is_err());
    }

    #[test]
    fn ports_column_groups_like_docker() {
        let ports = json!([
            {"PrivatePort": 443, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"PrivatePort": 7000, "Type": "tcp"}, {"PrivatePort": 7001, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 9000, "PublicPort": 9000, "Type": "udp"}
        ]);
        assert_eq!(
            ports_column(&ports),
            "443/tcp, 7000-7001/tcp, 0.0.0.0:9000->9000/udp, 0.0.0.0:8080->80/tcp"
        );
    }
}
