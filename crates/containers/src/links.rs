//! Docker's legacy links on the default bridge (`--link name[:alias]`): the linked
//! container's address in `/etc/hosts` under the alias and its name, and the
//! `ALIAS_PORT_...`, `ALIAS_NAME`, `ALIAS_ENV_...` variables, computed at start.

use std::net::Ipv4Addr;

use serde_json::Value;

use crate::{ContainerRecord, Error, Result};

/// One link as asked: the target's name or id, and the alias it is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkSpec {
    pub target: String,
    pub alias: String,
}

/// `HostConfig.Links`: `name:alias`, `name`, or the `/name:/own/alias` form dockerd
/// stores.
pub(crate) fn parse(host: &Value) -> Result<Vec<LinkSpec>> {
    let mut out = Vec::new();
    for v in host["Links"].as_array().into_iter().flatten() {
        let s = v.as_str().unwrap_or("");
        let (target, alias) = s.split_once(':').unwrap_or((s, s));
        let target = target.trim_start_matches('/');
        let alias = alias.rsplit('/').next().unwrap_or(alias);
        if target.is_empty() || alias.is_empty() {
            return Err(Error::InvalidInput(format!(
                "invalid link: {s:?}: want name:alias"
            )));
        }
        out.push(LinkSpec {
            target: target.to_string(),
            alias: alias.to_string(),
        });
    }
    Ok(out)
}

/// A link resolved at start.
pub(crate) struct Linked<'a> {
    pub spec: &'a LinkSpec,
    pub target: ContainerRecord,
    pub ip: Ipv4Addr,
}

/// The exposed ports of a container, sorted by number then protocol.
fn exposed_ports(rec: &ContainerRecord) -> Vec<(u16, String)> {
    let mut ports: Vec<(u16, String)> = rec.config["ExposedPorts"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| berth_network::ports::parse_key(k).ok())
        .collect();
    ports.sort();
    ports
}

/// The variables a link adds to the linking container's environment.
pub(crate) fn env(own_name: &str, l: &Linked<'_>) -> Vec<String> {
    let alias = l.spec.alias.to_ascii_uppercase().replace('-', "_");
    let ip = l.ip;
    let mut env = Vec::new();
    let ports = exposed_ports(&l.target);
    if let Some((port, proto)) = ports.first() {
        env.push(format!("{alias}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in &ports {
        let p = proto.to_ascii_uppercase();
        env.push(format!("{alias}_PORT_{port}_{p}={proto}://{ip}:{port}"));
        env.push(format!("{alias}_PORT_{port}_{p}_ADDR={ip}"));
        env.push(format!("{alias}_PORT_{port}_{p}_PORT={port}"));
        env.push(format!("{alias}_PORT_{port}_{p}_PROTO={proto}"));
    }
    env.push(format!("{alias}_NAME=/{own_name}/{}", l.spec.alias));
    for v in l.target.config["Env"].as_array().into_iter().flatten() {
        let Some((k, val)) = v.as_str().and_then(|s| s.split_once('=')) else {
            continue;
        };
        // Docker leaves out what every image sets.
        if k != "HOME" && k != "PATH" {
            env.push(format!("{alias}_ENV_{k}={val}"));
        }
    }
    env
}

/// `/etc/hosts` lines: the address under the alias and the container's name.
pub(crate) fn hosts_lines(links: &[Linked<'_>]) -> String {
    links
        .iter()
        .map(|l| {
            if l.spec.alias == l.target.name {
                format!("{}\t{}\n", l.ip, l.spec.alias)
            } else {
                format!("{}\t{} {}\n", l.ip, l.spec.alias, l.target.name)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_parse_in_every_form() {
        let h = json!({"Links": ["db:database", "cache", "/q:/web/queue"]});
        let l = parse(&h).unwrap();
        assert_eq!(
            l[0],
            LinkSpec {
                target: "db".into(),
                alias: "database".into()
            }
        );
        assert_eq!(
            l[1],
            LinkSpec {
                target: "cache".into(),
                alias: "cache".into()
            }
        );
        assert_eq!(
            l[2],
            LinkSpec {
                target: "q".into(),
                alias: "queue".into()
            }
        );
        assert!(parse(&json!({"Links": [":x"]})).is_err());
    }
}
