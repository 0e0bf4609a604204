//! Berth's own nftables table: outbound NAT per bridge, published ports, isolation
//! between networks. The table is a pure function of the store: it is rendered whole and
//! replaced atomically by one `nft -f -` transaction, so a crash can never leave half a
//! rule set and a restart simply renders it again.
//!
//! How it meets the host's firewall: nftables runs every base chain hooked at a point,
//! and a packet dropped by any of them stays dropped. Berth's chains only accept or
//! translate, so a host rule that drops forwarded or incoming traffic (for example an
//! `iptables` FORWARD policy of DROP) also applies to published ports; Berth never
//! inserts rules into tables it does not own.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Subnet;
use crate::ports::PortMapping;

/// One bridge network as the rules see it.
#[derive(Debug, Clone)]
pub struct BridgeRules {
    /// The bridge device.
    pub bridge: String,
    /// Its subnet.
    pub subnet: Subnet,
    /// No traffic in or out of the network, only between its members.
    pub internal: bool,
}

/// One published port of a running container.
#[derive(Debug, Clone)]
pub struct Forward {
    /// What is published.
    pub mapping: PortMapping,
    /// Where it goes.
    pub container_ip: Ipv4Addr,
}

/// The whole table as `nft -f` input: created if missing, deleted and defined again in
/// the same transaction.
pub fn render(table: &str, bridges: &[BridgeRules], forwards: &[Forward]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "table ip {table}\ndelete table ip {table}\ntable ip {table} {{"
    );
    s.push_str(
        "  chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump published\n  }\n",
    );
    s.push_str(
        "  chain output { type nat hook output priority -100; policy accept;\n    fib daddr type local jump published\n  }\n",
    );
    // Published ports are elements of two maps, so a container's ports come and go
    // with element updates (~3 ms) instead of a new table (~15 ms, an RCU grace period).
    let (any, by_ip) = elements(forwards);
    let _ = writeln!(
        s,
        "  map {ANY} {{\n    type inet_proto . inet_service : ipv4_addr . inet_service\n{}  }}",
        element_list(&any)
    );
    let _ = writeln!(
        s,
        "  map {BY_IP} {{\n    type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service\n{}  }}",
        element_list(&by_ip)
    );
    s.push_str("  chain published {\n");
    let _ = writeln!(
        s,
        "    dnat ip to ip daddr . meta l4proto . th dport map @{BY_IP}"
    );
    let _ = writeln!(s, "    dnat ip to meta l4proto . th dport map @{ANY}");
    s.push_str("  }\n");
    s.push_str("  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n");
    for b in bridges {
        let (br, net) = (&b.bridge, b.subnet);
        if !b.internal {
            let _ = writeln!(s, "    ip saddr {net} oifname != \"{br}\" masquerade");
        }
        // The host's own 127.0.0.1 reaching a published port, and a container reaching
        // a published port of its own network through the host's address.
        let _ = writeln!(s, "    ip saddr 127.0.0.0/8 oifname \"{br}\" masquerade");
        let _ = writeln!(
            s,
            "    ct status dnat ip saddr {net} oifname \"{br}\" masquerade"
        );
    }
    s.push_str("  }\n");
    s.push_str("  chain forward { type filter hook forward priority filter; policy accept;\n");
    s.push_str("    ct state established,related accept\n    ct status dnat accept\n");
    let names: Vec<String> = bridges
        .iter()
        .map(|b| format!("\"{}\"", b.bridge))
        .collect();
    for b in bridges {
        let br = &b.bridge;
        if b.internal {
            let _ = writeln!(s, "    iifname \"{br}\" oifname != \"{br}\" drop");
            let _ = writeln!(s, "    oifname \"{br}\" iifname != \"{br}\" drop");
        }
        let others: Vec<&String> = names
            .iter()
            .filter(|n| **n != format!("\"{br}\""))
            .collect();
        if !others.is_empty() {
            let list = others
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(s, "    iifname \"{br}\" oifname {{ {list} }} drop");
        }
    }
    s.push_str("  }\n}\n");
    s
}

/// The map of ports published on every host address.
const ANY: &str = "published_any";
/// The map of ports published on one host address.
const BY_IP: &str = "published_by_ip";

/// Map elements for `forwards`: (on every address, on one address).
fn elements(forwards: &[Forward]) -> (Vec<String>, Vec<String>) {
    let mut any = Vec::new();
    let mut by_ip = Vec::new();
    for f in forwards {
        let m = &f.mapping;
        let value = format!("{} . {}", f.container_ip, m.container_port);
        if m.host_ip.is_empty() {
            any.push(format!("{} . {} : {value}", m.proto, m.host_port));
        } else {
            by_ip.push(format!(
                "{} . {} . {} : {value}",
                m.host_ip, m.proto, m.host_port
            ));
        }
    }
    (any, by_ip)
}

fn element_list(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("    elements = {{ {} }}\n", items.join(", "))
    }
}

/// The commands that add (`add`) or delete (`delete`) one container's published ports,
/// as one transaction.
pub fn port_updates(verb: &str, table: &str, forwards: &[Forward]) -> String {
    let (any, by_ip) = elements(forwards);
    let keys = |items: &[String], with_value: bool| -> Vec<String> {
        items
            .iter()
            .map(|e| {
                if with_value {
                    e.clone()
                } else {
                    e.split(" : ").next().unwrap_or(e).to_string()
                }
            })
            .collect()
    };
    let with_value = verb == "add";
    let mut s = String::new();
    for (map, items) in [
        (ANY, keys(&any, with_value)),
        (BY_IP, keys(&by_ip, with_value)),
    ] {
        if !items.is_empty() {
            let _ = writeln!(
                s,
                "{verb} element ip {table} {map} {{ {} }}",
                items.join(", ")
            );
        }
    }
    s
}

/// Loads `ruleset` with one `nft -f -` (one kernel transaction).
pub fn apply(ruleset: &str) -> std::io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("run nft: {e} (install nftables)")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(ruleset.as_bytes())?;
    let out = child.wait_with_output()?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(std::io::Error::other(format!(
        "nft refused Berth's rules: {}",
        err.lines().next().unwrap_or("").trim()
    )))
}

/// Removes the table (when the last network goes, or in tests).
pub fn remove(table: &str) -> std::io::Result<()> {
    apply(&format!("table ip {table}\ndelete table ip {table}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nat_ports_and_isolation() {
        let bridges = [
            BridgeRules {
                bridge: "b0".into(),
                subnet: "172.20.0.0/16".parse().unwrap(),
                internal: false,
            },
            BridgeRules {
                bridge: "b1".into(),
                subnet: "172.21.0.0/16".parse().unwrap(),
                internal: true,
            },
        ];
        let fwd = [Forward {
            mapping: PortMapping {
                proto: "tcp".into(),
                container_port: 80,
                host_ip: String::new(),
                host_port: 8080,
            },
            container_ip: Ipv4Addr::new(172, 20, 0, 2),
        }];
        let r = render("t", &bridges, &fwd);
        assert!(
            r.contains("elements = { tcp . 8080 : 172.20.0.2 . 80 }"),
            "{r}"
        );
        assert_eq!(
            port_updates("delete", "t", &fwd),
            "delete element ip t published_any { tcp . 8080 }\n"
        );
        assert!(r.contains("ip saddr 172.20.0.0/16 oifname != \"b0\" masquerade"));
        assert!(!r.contains("ip saddr 172.21.0.0/16 oifname != \"b1\" masquerade"));
        assert!(r.contains("iifname \"b1\" oifname != \"b1\" drop"));
        assert!(r.contains("iifname \"b0\" oifname { \"b1\" } drop"));
    }
}
