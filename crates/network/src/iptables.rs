//! The fallback for hosts without `nft`: the same rules as [`crate::nft`], as chains of
//! Berth's own in iptables' `nat` and `filter` tables, loaded with one
//! `iptables-restore --noflush` (one transaction per table) and reached by one jump from
//! each built-in chain.
//!
//! How it meets the host's firewall: Berth's filter chain only drops (isolation between
//! networks, `--internal`) and otherwise returns to FORWARD, so the host's own FORWARD
//! rules and policy still decide about published and outbound traffic, as with nftables.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::nft::{BridgeRules, Forward};

/// Berth's chain names for a table name (`berth` → `BERTH-PUB`...), within iptables'
/// 28-character limit.
struct Chains {
    pre: String,
    out: String,
    publ: String,
    post: String,
    fwd: String,
}

fn chains(table: &str) -> Chains {
    let base = table.to_uppercase();
    Chains {
        pre: format!("{base}-PRE"),
        out: format!("{base}-OUT"),
        publ: format!("{base}-PUB"),
        post: format!("{base}-POST"),
        fwd: format!("{base}-FWD"),
    }
}

/// The jumps from the built-in chains: (table, built-in chain, Berth's chain).
fn jumps(c: &Chains) -> [(&'static str, &'static str, &str); 4] {
    [
        ("nat", "PREROUTING", &c.pre),
        ("nat", "OUTPUT", &c.out),
        ("nat", "POSTROUTING", &c.post),
        ("filter", "FORWARD", &c.fwd),
    ]
}

/// `iptables-restore` input defining (and so flushing) Berth's chains.
pub fn render(table: &str, bridges: &[BridgeRules], forwards: &[Forward]) -> String {
    let c = chains(table);
    let mut s = String::from("*nat\n");
    for chain in [&c.pre, &c.out, &c.publ, &c.post] {
        let _ = writeln!(s, ":{chain} - [0:0]");
    }
    let _ = writeln!(s, "-A {} -m addrtype --dst-type LOCAL -j {}", c.pre, c.publ);
    let _ = writeln!(s, "-A {} -m addrtype --dst-type LOCAL -j {}", c.out, c.publ);
    // Ports published on one address first, as the nftables map is consulted first.
    let mut ordered: Vec<&Forward> = forwards
        .iter()
        .filter(|f| !f.mapping.host_ip.is_empty())
        .collect();
    ordered.extend(forwards.iter().filter(|f| f.mapping.host_ip.is_empty()));
    for f in ordered {
        let m = &f.mapping;
        let dest = if m.host_ip.is_empty() {
            String::new()
        } else {
            format!("-d {}/32 ", m.host_ip)
        };
        let _ = writeln!(
            s,
            "-A {} {dest}-p {proto} -m {proto} --dport {} -j DNAT --to-destination {}:{}",
            c.publ,
            m.host_port,
            f.container_ip,
            m.container_port,
            proto = m.proto
        );
    }
    for b in bridges {
        let (br, net) = (&b.bridge, b.subnet);
        if !b.internal {
            let _ = writeln!(s, "-A {} -s {net} ! -o {br} -j MASQUERADE", c.post);
        }
        let _ = writeln!(s, "-A {} -s 127.0.0.0/8 -o {br} -j MASQUERADE", c.post);
        let _ = writeln!(
            s,
            "-A {} -s {net} -o {br} -m conntrack --ctstate DNAT -j MASQUERADE",
            c.post
        );
    }
    s.push_str("COMMIT\n*filter\n");
    let _ = writeln!(s, ":{} - [0:0]", c.fwd);
    for b in bridges {
        let br = &b.bridge;
        if b.internal {
            let _ = writeln!(s, "-A {} -i {br} ! -o {br} -j DROP", c.fwd);
            let _ = writeln!(s, "-A {} -o {br} ! -i {br} -j DROP", c.fwd);
        }
        for other in bridges.iter().filter(|o| o.bridge != *br) {
            let _ = writeln!(s, "-A {} -i {br} -o {} -j DROP", c.fwd, other.bridge);
        }
    }
    s.push_str("COMMIT\n");
    s
}

fn iptables(args: &[&str]) -> std::io::Result<bool> {
    Ok(Command::new("iptables")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success())
}

/// Loads the chains, then makes sure each built-in chain jumps to Berth's once.
pub fn apply(table: &str, ruleset: &str) -> std::io::Result<()> {
    let mut child = Command::new("iptables-restore")
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("run iptables-restore: {e} (install nftables or iptables)"),
            )
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(ruleset.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(std::io::Error::other(format!(
            "iptables-restore refused Berth's rules: {}",
            err.lines().next().unwrap_or("").trim()
        )));
    }
    let c = chains(table);
    for (t, builtin, ours) in jumps(&c) {
        if !iptables(&["-t", t, "-C", builtin, "-j", ours])? {
            // First in the chain, as Docker's jumps are: Berth's chain only drops or
            // translates and returns, so what follows in the host's chain still applies.
            if !iptables(&["-t", t, "-I", builtin, "-j", ours])? {
                return Err(std::io::Error::other(format!(
                    "iptables: could not add the jump from {t} {builtin} to {ours}"
                )));
            }
        }
    }
    Ok(())
}

/// Removes the jumps and Berth's chains.
pub fn remove(table: &str) -> std::io::Result<()> {
    let c = chains(table);
    for (t, builtin, ours) in jumps(&c) {
        while iptables(&["-t", t, "-D", builtin, "-j", ours])? {}
    }
    for (t, chain) in [
        ("nat", &c.pre),
        ("nat", &c.out),
        ("nat", &c.publ),
        ("nat", &c.post),
        ("filter", &c.fwd),
    ] {
        let _ = iptables(&["-t", t, "-F", chain])?;
        let _ = iptables(&["-t", t, "-X", chain])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortMapping;
    use std::net::Ipv4Addr;

    #[test]
    fn renders_the_same_rules_as_chains() {
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
        let port = |host_ip: &str| Forward {
            mapping: PortMapping {
                proto: "tcp".into(),
                container_port: 80,
                host_ip: host_ip.into(),
                host_port: 8080,
            },
            container_ip: Ipv4Addr::new(172, 20, 0, 2),
        };
        let r = render("berth_x", &bridges, &[port(""), port("127.0.0.1")]);
        let any =
            "-A BERTH_X-PUB -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.20.0.2:80";
        let one = "-A BERTH_X-PUB -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.20.0.2:80";
        assert!(r.find(one).unwrap() < r.find(any).unwrap(), "{r}");
        assert!(r.contains("-A BERTH_X-POST -s 172.20.0.0/16 ! -o b0 -j MASQUERADE"));
        assert!(!r.contains("-s 172.21.0.0/16 ! -o b1"));
        assert!(r.contains("-A BERTH_X-FWD -i b1 ! -o b1 -j DROP"));
        assert!(r.contains("-A BERTH_X-FWD -i b0 -o b1 -j DROP"));
        assert!(
            !r.contains("ACCEPT"),
            "the host's FORWARD rules decide what is accepted"
        );
    }
}
