//! # berth-network
//!
//! Container networking with real kernel parts: Linux bridges, a veth per container and
//! network, a network namespace made before its container and joined by the runtime by
//! path, IPv4 address management whose allocations live in the metadata store, and NAT
//! and published ports in Berth's own nftables table.
//!
//! **Owns:** the `networks` and `endpoints` tables, the bridges of its networks, the
//! host ends of container veths, `exec-root/netns/`, and its nftables table.
//! **Does not:** know containers beyond their ids, or touch any other firewall table.
//!
//! Crash safety: everything in the kernel is derived from the store. [`NetworkService::
//! reconcile`] at berthd's start releases what no running container holds and renders the
//! nftables table again, so no stale address, veth, namespace or rule survives a crash.

pub mod dns;
pub mod ipam;
mod iptables;
mod netlink;
mod netns;
pub mod nft;
pub mod ports;
mod view;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_metadata::{Db, Table};
use serde::{Deserialize, Serialize};

pub use ipam::{Subnet, Subnet6};
use netlink::Netlink;
pub use ports::{PortMapping, PortRequest};
pub use view::{inspect_json, matches_filters};

/// Errors, in the shape the API maps to status codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404.
    #[error("network {0} not found")]
    NotFound(String),
    /// 400.
    #[error("{0}")]
    InvalidInput(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 403: predefined networks, networks in use.
    #[error("{0}")]
    Forbidden(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

impl From<berth_metadata::Error> for Error {
    fn from(e: berth_metadata::Error) -> Self {
        Error::Internal(e.to_string())
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

fn internal(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Internal(format!("{what}: {e}"))
}

/// A network as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    /// Unique name (`bridge`, `host` and `none` are predefined).
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// RFC 3339.
    pub created: String,
    /// The bridge device (bridge driver only).
    pub bridge: String,
    /// IPv4 subnet (bridge driver only).
    pub subnet: Option<Subnet>,
    /// The bridge's own address, the containers' default route.
    pub gateway: Option<Ipv4Addr>,
    /// Where container addresses come from, inside the subnet.
    pub ip_range: Option<Subnet>,
    /// No way in or out, only between members.
    pub internal: bool,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options as given.
    pub options: BTreeMap<String, String>,
    /// IPAM auxiliary addresses: reserved, never given to a container.
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// `IPAM.Options` as given (shown by inspect; the default IPAM driver takes none).
    #[serde(default)]
    pub ipam_options: BTreeMap<String, String>,
    /// The IPv6 subnet (`--ipv6`), when the network has one.
    #[serde(default)]
    pub subnet6: Option<Subnet6>,
    /// The bridge's IPv6 address, the containers' IPv6 default route.
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
}

impl NetworkRecord {
    /// The network the daemon made, where containers go by default.
    pub fn is_default_bridge(&self) -> bool {
        self.name == "bridge"
    }

    fn rules(&self) -> Option<nft::BridgeRules> {
        Some(nft::BridgeRules {
            bridge: self.bridge.clone(),
            subnet: self.subnet?,
            internal: self.internal,
        })
    }
}

/// A container's place in one network, while it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// 64 hex digits.
    pub id: String,
    /// The container.
    pub container_id: String,
    /// The network.
    pub network_id: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The default route.
    pub gateway: Ipv4Addr,
    /// The container side's MAC address.
    pub mac: String,
    /// Names it answers to in this network besides its own.
    pub aliases: Vec<String>,
    /// The host end of the veth.
    pub veth: String,
    /// Ports published through this endpoint.
    pub ports: Vec<PortMapping>,
    /// The container's IPv6 address, on networks that have IPv6.
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    /// The IPv6 subnet's prefix length.
    #[serde(default)]
    pub prefix6: u8,
    /// The IPv6 default route.
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    /// Names the embedded DNS answers with this address (user-defined networks).
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Where the container's other DNS queries go (`ip:port`).
    #[serde(default)]
    pub dns_upstream: Vec<String>,
    /// Links as (target name, alias), resolved when asked (the target may come later).
    #[serde(default)]
    pub dns_links: Vec<(String, String)>,
}

/// How a container wants to join one network.
#[derive(Debug, Clone, Default)]
pub struct Attachment {
    /// The network's name or id.
    pub network: String,
    /// A fixed address (`--ip`), else the next free one.
    pub ip: Option<Ipv4Addr>,
    /// A fixed IPv6 address (`--ip6`), else the next free one (IPv6 networks only).
    pub ip6: Option<Ipv6Addr>,
    /// A fixed MAC address (`--mac-address`), else one derived from the address.
    pub mac: Option<String>,
    /// Extra names (`--network-alias`).
    pub aliases: Vec<String>,
    /// The container's own names in DNS: its name and short id.
    pub names: Vec<String>,
    /// Legacy links as (target name, alias): DNS aliases only this container sees.
    pub links: Vec<(String, String)>,
}

/// A container's prepared network namespace and its endpoints.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The pinned namespace, for the runtime to join.
    pub netns: PathBuf,
    /// Its endpoints with their networks.
    pub endpoints: Vec<(NetworkRecord, Endpoint)>,
}

/// `POST /networks/create` in Berth's terms.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Unique name.
    pub name: String,
    /// Only `bridge` (the default) is offered.
    pub driver: String,
    /// `--subnet`, else a free pool.
    pub subnet: Option<String>,
    /// `--gateway`, else the subnet's first address.
    pub gateway: Option<String>,
    /// `--ip-range`.
    pub ip_range: Option<String>,
    /// `--internal`.
    pub internal: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `-o`: `com.docker.network.bridge.name` names the bridge device.
    pub options: BTreeMap<String, String>,
    /// `--aux-address name=ip`: addresses kept out of allocation.
    pub aux_addresses: BTreeMap<String, String>,
    /// `--ipam-opt`: kept and shown.
    pub ipam_options: BTreeMap<String, String>,
    /// `--ipv6`: containers get an IPv6 address too.
    pub enable_ipv6: bool,
    /// The IPv6 subnet (default: a unique local /64).
    pub subnet6: Option<String>,
    /// The IPv6 gateway (default: the subnet's first address).
    pub gateway6: Option<String>,
}

/// Names Docker reserves for its predefined networks.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// dockerd takes any network name that is not empty and has no control characters or
/// slashes (`test 01` is fine).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_control() || c == '/')
}

/// A network's IPv6 subnet: the one given, or with IPv6 asked for and none given, a
/// unique local /64 derived from the network's id.
fn ipv6_subnet(given: Option<Subnet6>, enabled: bool, id: &str) -> Option<Subnet6> {
    match (given, enabled) {
        (Some(s), _) => Some(s),
        (None, true) => Some(Subnet6::unique_local(id)),
        (None, false) => None,
    }
}

/// Daemon-level settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The default bridge device (`berth0`).
    pub bridge: String,
    /// `--bip`: the default bridge's address and prefix, e.g. `172.17.0.1/16`.
    pub bip: Option<String>,
    /// `--ipv6`: the default bridge gives containers IPv6 addresses too.
    pub ipv6: bool,
    /// `--fixed-cidr-v6`: the default bridge's IPv6 subnet (a unique local /64 when
    /// `ipv6` is on without one).
    pub fixed_cidr_v6: Option<String>,
    /// The nftables table Berth owns (`ip berth`); with iptables, its chains' prefix.
    pub table: String,
    /// Which packet filter takes the rules.
    pub firewall: Firewall,
}

/// Where Berth's packet filter rules go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Firewall {
    /// nftables when `nft` is installed, else iptables.
    #[default]
    Auto,
    /// Berth's own nftables table.
    Nftables,
    /// Berth's own chains in iptables' `nat` and `filter` tables.
    Iptables,
}

impl Firewall {
    /// `Auto` decided for this host.
    fn resolve(self) -> Firewall {
        if self != Firewall::Auto {
            return self;
        }
        let nft = std::process::Command::new("nft")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if nft {
            Firewall::Nftables
        } else {
            Firewall::Iptables
        }
    }
}

/// How endpoints are added to a namespace.
struct Joining<'a> {
    /// Published on the first network joined.
    ports: &'a [PortRequest],
    /// The first interface is `eth<first_index>`.
    first_index: usize,
    /// Stored with the endpoints, for the DNS relay after a restart.
    dns_upstream: &'a [String],
}

const NETWORKS: Table<NetworkRecord> = Table::new("networks");
const ENDPOINTS: Table<Endpoint> = Table::new("endpoints");

/// The network service.
#[derive(Clone)]
pub struct NetworkService {
    db: Arc<Db>,
    netns_dir: PathBuf,
    config: Config,
    /// Serialises changes to endpoints and the rules rendered from them.
    lock: Arc<Mutex<()>>,
    /// The embedded DNS server of user-defined networks.
    dns: Arc<dns::Resolver>,
    events: berth_events::Events,
}

fn endpoint_key(container_id: &str, network_id: &str) -> String {
    format!("{container_id}/{network_id}")
}

fn random_hex(bytes: usize) -> Result<String> {
    berth_types::id::random_hex(bytes).map_err(internal("random id"))
}

/// Docker's MAC address for a container address: 02:42 then the four address bytes.
fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || Error::InvalidInput(format!("invalid MAC address: {s}"));
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).map_err(|_| bad()))
        .collect::<Result<_>>()?;
    parts.try_into().map_err(|_| bad())
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(internal(path))
}

impl NetworkService {
    /// Opens the service: the predefined networks exist and their bridges are up
    /// afterwards, and IP forwarding is on.
    pub fn open(
        db: Arc<Db>,
        exec_root: &Path,
        config: Config,
        events: berth_events::Events,
    ) -> Result<Self> {
        let netns_dir = exec_root.join("netns");
        std::fs::create_dir_all(&netns_dir).map_err(internal("create netns directory"))?;
        let names_db = db.clone();
        let dns = dns::Resolver::start(Box::new(move |container: &str, name: &str| {
            dns_lookup(&names_db, container, name)
        }))
        .map_err(internal("start the DNS server"))?;
        let mut config = config;
        config.firewall = config.firewall.resolve();
        let svc = NetworkService {
            db,
            netns_dir,
            config,
            lock: Arc::default(),
            dns,
            events,
        };
        let _guard = subnet_lock();
        svc.ensure_predefined()?;
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        let bridge = svc.config.bridge.clone();
        std::thread::spawn(move || warn_if_forwarding_dropped(&bridge));
        let mut nl = Netlink::open().map_err(internal("netlink"))?;
        for n in svc.list()? {
            if n.driver == "bridge" {
                svc.ensure_bridge(&mut nl, &n)?;
            }
        }
        Ok(svc)
    }

    /// Makes `bridge`, `host` and `none` if missing; the default bridge takes `--bip` or
    /// the first of Docker's pools that clashes with no route and no other network.
    fn ensure_predefined(&self) -> Result<()> {
        let bip = match &self.config.bip {
            Some(b) => {
                let subnet: Subnet = b.parse().map_err(Error::InvalidInput)?;
                let gw: Ipv4Addr = b
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .parse()
                    .unwrap_or(subnet.nth(1));
                let gw = if gw == subnet.addr { subnet.nth(1) } else { gw };
                Some((subnet, gw))
            }
            None => None,
        };
        let fixed6: Option<Subnet6> = match &self.config.fixed_cidr_v6 {
            Some(s) if self.config.ipv6 => Some(s.parse().map_err(Error::InvalidInput)?),
            _ => None,
        };
        let existing = self.list()?;
        let bridge_rec = existing.iter().find(|n| n.name == "bridge");
        let keep = bridge_rec.filter(|n| {
            let v6_as_asked = match (self.config.ipv6, fixed6) {
                (false, _) => n.subnet6.is_none(),
                (true, None) => n.subnet6.is_some(),
                (true, Some(s)) => n.subnet6 == Some(s),
            };
            n.bridge == self.config.bridge
                && bip.is_none_or(|(s, g)| n.subnet == Some(s) && n.gateway == Some(g))
                && v6_as_asked
        });
        if keep.is_none() {
            let (subnet, gateway) = match bip {
                Some(b) => b,
                None => {
                    let mut taken = ipam::host_routes();
                    taken.extend(
                        existing
                            .iter()
                            .filter(|n| n.name != "bridge")
                            .filter_map(|n| n.subnet),
                    );
                    let s = ipam::pick_free(&taken).ok_or_else(|| {
                        Error::Internal(
                            "no free address pool for the default bridge; set --bip".into(),
                        )
                    })?;
                    (s, s.nth(1))
                }
            };
            let id = bridge_rec
                .map(|n| n.id.clone())
                .map_or_else(|| random_hex(32), Ok)?;
            let subnet6 = ipv6_subnet(fixed6, self.config.ipv6, &id);
            let mut options = BTreeMap::new();
            options.insert(
                "com.docker.network.bridge.name".into(),
                self.config.bridge.clone(),
            );
            options.insert(
                "com.docker.network.bridge.default_bridge".into(),
                "true".into(),
            );
            self.put_network(NetworkRecord {
                id,
                name: "bridge".into(),
                driver: "bridge".into(),
                created: berth_types::time::now_rfc3339(),
                bridge: self.config.bridge.clone(),
                subnet: Some(subnet),
                gateway: Some(gateway),
                ip_range: None,
                internal: false,
                labels: BTreeMap::new(),
                options,
                aux_addresses: BTreeMap::new(),
                ipam_options: BTreeMap::new(),
                subnet6,
                gateway6: subnet6.map(|s| s.nth(1)),
            })?;
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !existing.iter().any(|n| n.name == name) {
                self.put_network(NetworkRecord {
                    id: random_hex(32)?,
                    name: name.into(),
                    driver: driver.into(),
                    created: berth_types::time::now_rfc3339(),
                    bridge: String::new(),
                    subnet: None,
                    gateway: None,
                    ip_range: None,
                    internal: false,
                    labels: BTreeMap::new(),
                    options: BTreeMap::new(),
                    aux_addresses: BTreeMap::new(),
                    ipam_options: BTreeMap::new(),
                    subnet6: None,
                    gateway6: None,
                })?;
            }
        }
        Ok(())
    }

    fn put_network(&self, rec: NetworkRecord) -> Result<()> {
        self.db
            .write(|tx| tx.put(&NETWORKS, &rec.id.clone(), &rec))?;
        Ok(())
    }

    /// Creates the bridge device if missing, with the gateway address, up, and letting the
    /// host's 127.0.0.1 reach published ports.
    fn ensure_bridge(&self, nl: &mut Netlink, n: &NetworkRecord) -> Result<()> {
        let (Some(subnet), Some(gw)) = (n.subnet, n.gateway) else {
            return Ok(());
        };
        let index = match nl
            .link_index(&n.bridge)
            .map_err(internal("look up bridge"))?
        {
            Some(i) => i,
            None => {
                nl.add_bridge(&n.bridge)
                    .map_err(internal(&format!("create bridge {}", n.bridge)))?;
                nl.link_index(&n.bridge)
                    .map_err(internal("look up bridge"))?
                    .ok_or_else(|| Error::Internal(format!("bridge {} vanished", n.bridge)))?
            }
        };
        nl.add_address(index, gw, subnet.prefix)
            .map_err(internal(&format!("address bridge {}", n.bridge)))?;
        if let (Some(s6), Some(gw6)) = (n.subnet6, n.gateway6) {
            write_sysctl(
                &format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", n.bridge),
                "0",
            )?;
            nl.add_address6(index, gw6, s6.prefix)
                .map_err(internal(&format!("IPv6 address of bridge {}", n.bridge)))?;
        }
        nl.set_up(index, None)
            .map_err(internal("bring bridge up"))?;
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge),
            "1",
        )
    }

    /// Every network.
    pub fn list(&self) -> Result<Vec<NetworkRecord>> {
        let mut all: Vec<NetworkRecord> = self
            .db
            .read(|tx| tx.list(&NETWORKS))?
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        all.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(all)
    }

    /// A network by full name, full id or unique id prefix (Docker's order).
    pub fn get(&self, name_or_id: &str) -> Result<NetworkRecord> {
        let all = self.list()?;
        if let Some(n) = all
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
        {
            return Ok(n.clone());
        }
        let by_prefix: Vec<&NetworkRecord> = all
            .iter()
            .filter(|n| n.id.starts_with(name_or_id))
            .collect();
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NotFound(name_or_id.into())),
            _ => Err(Error::InvalidInput(format!(
                "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
                by_prefix.len()
            ))),
        }
    }

    /// The endpoints of a container, with their networks.
    pub fn endpoints_of(&self, container_id: &str) -> Result<Vec<(NetworkRecord, Endpoint)>> {
        let networks = self.list()?;
        let eps = self.db.read(|tx| tx.list(&ENDPOINTS))?;
        Ok(eps
            .into_iter()
            .filter(|(_, e)| e.container_id == container_id)
            .filter_map(|(_, e)| {
                let n = networks.iter().find(|n| n.id == e.network_id)?.clone();
                Some((n, e))
            })
            .collect())
    }

    /// Every endpoint of a network.
    pub fn endpoints_in(&self, network_id: &str) -> Result<Vec<Endpoint>> {
        let eps = self.db.read(|tx| tx.list(&ENDPOINTS))?;
        Ok(eps
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| e.network_id == network_id)
            .collect())
    }

    /// Where a container's namespace is pinned while it runs.
    pub fn sandbox_path(&self, container_id: &str) -> PathBuf {
        self.netns_path(container_id)
    }

    /// Where a container's namespace is pinned.
    fn netns_path(&self, container_id: &str) -> PathBuf {
        self.netns_dir.join(container_id)
    }

    /// Makes a container's network namespace and joins it to `attachments` (none: only a
    /// loopback, as `--network none`), publishing `ports` on the first. On failure nothing
    /// of it is left: no namespace, veth, address or rule.
    pub fn prepare(
        &self,
        container_id: &str,
        attachments: &[Attachment],
        ports: &[PortRequest],
        dns_upstream: &[SocketAddr],
    ) -> Result<Sandbox> {
        let networks: Vec<NetworkRecord> = attachments
            .iter()
            .map(|a| self.get(&a.network))
            .collect::<Result<_>>()?;
        // A sandbox left by a run that was cut off is replaced.
        self.release(container_id);
        let path = self.netns_path(container_id);
        let mut inside = netns::create(&path).map_err(internal("create network namespace"))?;
        let upstream: Vec<String> = dns_upstream.iter().map(|a| a.to_string()).collect();
        let how = Joining {
            ports,
            first_index: 0,
            dns_upstream: &upstream,
        };
        let made = self.join_all(container_id, &mut inside, &networks, attachments, &how);
        let made = made.and_then(|eps| {
            if networks.iter().any(|n| !n.is_default_bridge()) {
                self.dns
                    .serve(container_id, &path, dns_upstream.to_vec())
                    .map_err(internal("serve DNS in the container"))?;
            }
            Ok(eps)
        });
        match made {
            Ok(endpoints) => {
                for n in &networks {
                    self.emit("connect", n, Some(container_id));
                }
                Ok(Sandbox {
                    netns: path,
                    endpoints: networks.into_iter().zip(endpoints).collect(),
                })
            }
            Err(e) => {
                self.release(container_id);
                Err(e)
            }
        }
    }

    fn join_all(
        &self,
        container_id: &str,
        inside: &mut Netlink,
        networks: &[NetworkRecord],
        attachments: &[Attachment],
        how: &Joining<'_>,
    ) -> Result<Vec<Endpoint>> {
        let netns = netns::open(&self.netns_path(container_id))
            .map_err(internal("open network namespace"))?;
        let mut host = Netlink::open().map_err(internal("netlink"))?;
        let mut out = Vec::new();
        for (k, (n, a)) in networks.iter().zip(attachments).enumerate() {
            let i = how.first_index + k;
            let publish = if k == 0 { how.ports } else { &[] };
            let ep = self.allocate(container_id, n, a, publish, how.dns_upstream)?;
            let ifname = format!("eth{i}");
            let mac = parse_mac(&ep.mac)?;
            host.add_veth_into(&ep.veth, &ifname, netns.as_fd(), mac)
                .map_err(internal("create veth"))?;
            let bridge = host
                .link_index(&n.bridge)
                .map_err(internal("look up bridge"))?
                .ok_or_else(|| Error::Internal(format!("bridge {} is missing", n.bridge)))?;
            let veth = host
                .link_index(&ep.veth)
                .map_err(internal("look up veth"))?
                .ok_or_else(|| Error::Internal(format!("veth {} vanished", ep.veth)))?;
            host.set_up(veth, Some(bridge))
                .map_err(internal("attach veth"))?;
            host.set_hairpin(veth).map_err(internal("hairpin"))?;
            let peer = inside
                .link_index(&ifname)
                .map_err(internal("look up eth"))?
                .ok_or_else(|| Error::Internal(format!("{ifname} missing in the container")))?;
            inside
                .add_address(peer, ep.ip, ep.prefix)
                .map_err(internal("address container"))?;
            inside
                .set_up(peer, None)
                .map_err(internal("bring eth up"))?;
            if i == 0 && !n.internal {
                inside
                    .add_default_route(ep.gateway)
                    .map_err(internal("default route"))?;
            }
            if let Some(ip6) = ep.ip6 {
                inside
                    .add_address6(peer, ip6, ep.prefix6)
                    .map_err(internal("IPv6 address of the container"))?;
                if let Some(gw6) = ep.gateway6.filter(|_| !n.internal) {
                    // Another IPv6 network may have given the default route already.
                    let _ = inside.add_default_route6(gw6);
                }
            }
            if !ep.ports.is_empty() {
                self.update_ports("add", std::slice::from_ref(&ep))?;
            }
            out.push(ep);
        }
        Ok(out)
    }

    /// Stores an endpoint: the next free address (or the one asked for), host ports clear
    /// of every other endpoint's, all in one transaction.
    fn allocate(
        &self,
        container_id: &str,
        n: &NetworkRecord,
        a: &Attachment,
        ports: &[PortRequest],
        dns_upstream: &[String],
    ) -> Result<Endpoint> {
        let (Some(subnet), Some(gateway)) = (n.subnet, n.gateway) else {
            return Err(Error::InvalidInput(format!(
                "container cannot be connected to network {} (driver {})",
                n.name, n.driver
            )));
        };
        let id = random_hex(32)?;
        let veth = format!("veth{}", &random_hex(4)?[..7]);
        let _guard = self.lock.lock().expect("not poisoned");
        self.db.write(|tx| -> Result<Endpoint> {
            let all: Vec<Endpoint> = tx.list(&ENDPOINTS)?.into_iter().map(|(_, e)| e).collect();
            let used: Vec<Ipv4Addr> = all
                .iter()
                .filter(|e| e.network_id == n.id)
                .map(|e| e.ip)
                .chain(n.aux_addresses.values().copied())
                .collect();
            let ip = match a.ip {
                Some(ip) if !subnet.contains(ip) => {
                    return Err(Error::InvalidInput(format!(
                        "no configured subnet contains IP address {ip}"
                    )));
                }
                Some(ip) if used.contains(&ip) || ip == gateway => {
                    return Err(Error::Conflict(format!("Address already in use: {ip}")));
                }
                Some(ip) => ip,
                None => ipam::allocate(subnet, n.ip_range, gateway, &used).ok_or_else(|| {
                    Error::Conflict(format!("no available IPv4 addresses on network {}", n.name))
                })?,
            };
            let ip6 = match (n.subnet6, n.gateway6) {
                (Some(s6), Some(gw6)) => {
                    let used6: Vec<Ipv6Addr> = all
                        .iter()
                        .filter(|e| e.network_id == n.id)
                        .filter_map(|e| e.ip6)
                        .collect();
                    Some(match a.ip6 {
                        Some(ip) if !s6.contains(ip) => {
                            return Err(Error::InvalidInput(format!(
                                "no configured subnet contains IP address {ip}"
                            )));
                        }
                        Some(ip) if used6.contains(&ip) || ip == gw6 => {
                            return Err(Error::Conflict(format!("Address already in use: {ip}")));
                        }
                        Some(ip) => ip,
                        None => ipam::allocate6(s6, gw6, &used6).ok_or_else(|| {
                            Error::Conflict(format!(
                                "no available IPv6 addresses on network {}",
                                n.name
                            ))
                        })?,
                    })
                }
                _ if a.ip6.is_some() => {
                    return Err(Error::InvalidInput(format!(
                        "network {} has no IPv6 subnet for {}: create it with --ipv6",
                        n.name,
                        a.ip6.expect("checked")
                    )));
                }
                _ => None,
            };
            let taken: Vec<PortMapping> = all.iter().flat_map(|e| e.ports.clone()).collect();
            let mapped = ports::assign(ports, &taken).map_err(|msg| {
                Error::Conflict(format!(
                    "driver failed programming external connectivity on endpoint {}: {msg}",
                    &id[..12]
                ))
            })?;
            let ep = Endpoint {
                id: id.clone(),
                container_id: container_id.into(),
                network_id: n.id.clone(),
                ip,
                prefix: subnet.prefix,
                gateway,
                mac: a.mac.clone().unwrap_or_else(|| mac_for(ip)),
                aliases: a.aliases.clone(),
                veth: veth.clone(),
                ports: mapped,
                dns_names: a.names.iter().chain(&a.aliases).cloned().collect(),
                dns_upstream: dns_upstream.to_vec(),
                dns_links: a.links.clone(),
                ip6,
                prefix6: n.subnet6.map_or(0, |s| s.prefix),
                gateway6: n.gateway6,
            };
            tx.put(&ENDPOINTS, &endpoint_key(container_id, &n.id), &ep)?;
            Ok(ep)
        })
    }

    /// Adds or deletes the published ports of `eps` as map elements; if the table does not
    /// hold what the store says (a change made by hand), it is rendered whole instead.
    fn update_ports(&self, verb: &str, eps: &[Endpoint]) -> Result<()> {
        let forwards: Vec<nft::Forward> = eps
            .iter()
            .flat_map(|e| {
                e.ports.iter().map(|m| nft::Forward {
                    mapping: m.clone(),
                    container_ip: e.ip,
                })
            })
            .collect();
        if self.config.firewall == Firewall::Nftables {
            let updates = nft::port_updates(verb, &self.config.table, &forwards);
            if updates.is_empty() || nft::apply(&updates).is_ok() {
                return Ok(());
            }
        }
        self.apply_rules()
    }

    /// Renders and loads the nftables table from the store.
    fn apply_rules(&self) -> Result<()> {
        let networks = self.list()?;
        let eps = self.db.read(|tx| tx.list(&ENDPOINTS))?;
        let bridges: Vec<nft::BridgeRules> =
            networks.iter().filter_map(NetworkRecord::rules).collect();
        let forwards: Vec<nft::Forward> = eps
            .iter()
            .flat_map(|(_, e)| {
                e.ports.iter().map(|m| nft::Forward {
                    mapping: m.clone(),
                    container_ip: e.ip,
                })
            })
            .collect();
        let table = &self.config.table;
        match self.config.firewall {
            Firewall::Iptables => {
                iptables::apply(table, &iptables::render(table, &bridges, &forwards))
            }
            _ => nft::apply(&nft::render(table, &bridges, &forwards)),
        }
        .map_err(internal("firewall"))
    }

    /// Takes a container off all its networks: veths deleted, addresses and ports freed,
    /// namespace released. Safe to call for a container with no network.
    pub fn release(&self, container_id: &str) {
        self.dns.stop(container_id);
        let eps = self.endpoints_of(container_id).unwrap_or_default();
        // The veths are not deleted here: deleting one waits for an RCU grace period
        // (~20 ms, most of what networking added to `run --rm`). They go with the
        // namespace, which the kernel tears down in the background once its last
        // process and the pin below are gone.
        let had_ports = eps.iter().any(|(_, e)| !e.ports.is_empty());
        {
            let _guard = self.lock.lock().expect("not poisoned");
            let _ = self.db.write(|tx| -> Result<()> {
                for (n, _) in &eps {
                    tx.delete(&ENDPOINTS, &endpoint_key(container_id, &n.id))?;
                }
                Ok(())
            });
        }
        for (n, _) in &eps {
            self.emit("disconnect", n, Some(container_id));
        }
        let ours: Vec<Endpoint> = eps.into_iter().map(|(_, e)| e).collect();
        if had_ports && let Err(e) = self.update_ports("delete", &ours) {
            tracing::warn!(container = container_id, "remove published ports: {e}");
        }
        netns::remove(&self.netns_path(container_id));
    }

    /// After berthd starts: releases what no running container holds (endpoints, pinned
    /// namespaces), then loads the rules afresh.
    pub fn reconcile(&self, is_running: &dyn Fn(&str) -> bool) -> Result<()> {
        let eps = self.db.read(|tx| tx.list(&ENDPOINTS))?;
        for (_, e) in eps {
            if !is_running(&e.container_id) {
                self.release(&e.container_id);
            }
        }
        for entry in std::fs::read_dir(&self.netns_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !is_running(&id) {
                netns::remove(&entry.path());
                continue;
            }
            // A running container on a user network gets its resolver back.
            let eps = self.endpoints_of(&id)?;
            if let Some((_, e)) = eps.iter().find(|(n, _)| !n.is_default_bridge())
                && let Err(err) =
                    self.dns
                        .serve(&id, &entry.path(), parse_upstream(&e.dns_upstream))
            {
                tracing::warn!(container = id, "serve DNS again: {err}");
            }
        }
        self.apply_rules()
    }

    /// Creates a user-defined bridge network: the record first (so a crash leaves one
    /// that the next start completes), then its bridge and rules; a failure removes both.
    pub fn create(&self, req: CreateRequest) -> Result<NetworkRecord> {
        let driver = if req.driver.is_empty() {
            "bridge"
        } else {
            req.driver.as_str()
        };
        if driver != "bridge" {
            return Err(Error::NotFound(format!(
                "plugin \"{driver}\" (only the bridge driver is built in)"
            )));
        }
        if PREDEFINED.contains(&req.name.as_str()) {
            return Err(Error::Forbidden(format!(
                "{} is a pre-defined network and cannot be created",
                req.name
            )));
        }
        if !valid_name(&req.name) {
            return Err(Error::InvalidInput(format!(
                "invalid network name {:?}: it must not be empty or hold '/' or control characters",
                req.name
            )));
        }
        let parse = |s: &Option<String>| -> Result<Option<Subnet>> {
            s.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().map_err(Error::InvalidInput))
                .transpose()
        };
        let subnet = parse(&req.subnet)?;
        let ip_range = parse(&req.ip_range)?;
        let gateway: Option<Ipv4Addr> = match req.gateway.as_deref().filter(|g| !g.is_empty()) {
            Some(g) => Some(
                g.parse()
                    .map_err(|_| Error::InvalidInput(format!("invalid gateway address: {g}")))?,
            ),
            None => None,
        };
        if subnet.is_none() && (gateway.is_some() || ip_range.is_some()) {
            return Err(Error::InvalidInput(
                "a gateway or ip-range needs a subnet: add --subnet".into(),
            ));
        }
        let id = random_hex(32)?;
        let subnet6: Option<Subnet6> = req
            .subnet6
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(Error::InvalidInput))
            .transpose()?;
        let subnet6 = ipv6_subnet(subnet6, req.enable_ipv6, &id);
        let gateway6: Option<Ipv6Addr> =
            match (subnet6, req.gateway6.as_deref().filter(|g| !g.is_empty())) {
                (Some(s), Some(g)) => {
                    let g: Ipv6Addr = g.parse().map_err(|_| {
                        Error::InvalidInput(format!("invalid gateway address: {g}"))
                    })?;
                    if !s.contains(g) {
                        return Err(Error::InvalidInput(format!(
                            "gateway {g} is not in subnet {s}"
                        )));
                    }
                    Some(g)
                }
                (Some(s), None) => Some(s.nth(1)),
                (None, _) => None,
            };
        let bridge = req
            .options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.is_empty() || bridge.len() > 15 {
            return Err(Error::InvalidInput(format!(
                "invalid bridge name {bridge:?}: 1 to 15 characters"
            )));
        }
        let _guard = subnet_lock();
        let existing = self.list()?;
        if existing.iter().any(|n| n.name == req.name) {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        if existing.iter().any(|n| n.bridge == bridge) {
            return Err(Error::Conflict(format!(
                "bridge {bridge} is used by another network"
            )));
        }
        let subnet = match subnet {
            Some(s) => {
                if let Some(other) = existing
                    .iter()
                    .find(|n| n.subnet.is_some_and(|o| o.overlaps(s)))
                {
                    return Err(Error::Forbidden(format!(
                        "Pool overlaps with other one on this address space (network {})",
                        other.name
                    )));
                }
                s
            }
            None => {
                let mut taken = ipam::host_routes();
                taken.extend(existing.iter().filter_map(|n| n.subnet));
                ipam::pick_free(&taken).ok_or_else(|| {
                    Error::Forbidden(
                        "all predefined address pools have been fully subnetted: give --subnet"
                            .into(),
                    )
                })?
            }
        };
        if let Some(s6) = subnet6
            && let Some(other) = existing
                .iter()
                .find(|n| n.subnet6.is_some_and(|o| o.overlaps(s6)))
        {
            return Err(Error::Forbidden(format!(
                "Pool overlaps with other one on this address space (network {})",
                other.name
            )));
        }
        let gateway = gateway.unwrap_or(subnet.nth(1));
        if !subnet.contains(gateway) {
            return Err(Error::InvalidInput(format!(
                "gateway {gateway} is not in subnet {subnet}"
            )));
        }
        let mut aux = BTreeMap::new();
        for (name, ip) in &req.aux_addresses {
            let ip: Ipv4Addr = ip.parse().map_err(|_| {
                Error::InvalidInput(format!("invalid auxiliary address {name}={ip}"))
            })?;
            if !subnet.contains(ip) {
                return Err(Error::InvalidInput(format!(
                    "auxiliary address {name}={ip} is not in subnet {subnet}"
                )));
            }
            aux.insert(name.clone(), ip);
        }
        if let Some(r) = ip_range.filter(|r| !subnet.covers(*r)) {
            return Err(Error::InvalidInput(format!(
                "ip-range {r} is not inside subnet {subnet}"
            )));
        }
        let rec = NetworkRecord {
            id,
            name: req.name,
            driver: "bridge".into(),
            created: berth_types::time::now_rfc3339(),
            bridge,
            subnet: Some(subnet),
            gateway: Some(gateway),
            ip_range,
            internal: req.internal,
            labels: req.labels,
            options: req.options,
            aux_addresses: aux,
            ipam_options: req.ipam_options,
            subnet6,
            gateway6,
        };
        self.put_network(rec.clone())?;
        let made = Netlink::open()
            .map_err(internal("netlink"))
            .and_then(|mut nl| self.ensure_bridge(&mut nl, &rec))
            .and_then(|()| self.apply_rules());
        if let Err(e) = made {
            let _ = self.drop_network(&rec);
            return Err(e);
        }
        self.emit("create", &rec, None);
        Ok(rec)
    }

    /// Deletes the record, the bridge and the network's rules.
    fn drop_network(&self, n: &NetworkRecord) -> Result<()> {
        self.db.write(|tx| tx.delete(&NETWORKS, &n.id))?;
        if let Ok(mut nl) = Netlink::open()
            && let Ok(Some(i)) = nl.link_index(&n.bridge)
        {
            let _ = nl.delete_link(i);
        }
        self.apply_rules()
    }

    /// A network event as dockerd sends it: the network's id, name and driver, and the
    /// container for connect and disconnect.
    fn emit(&self, action: &str, n: &NetworkRecord, container: Option<&str>) {
        let mut e = berth_events::Event::new(berth_events::kind::NETWORK, action, &n.id)
            .attr("name", &n.name)
            .attr("type", &n.driver);
        if let Some(c) = container {
            e = e.attr("container", c);
        }
        self.events.emit(e);
    }

    /// `network rm`: refused for predefined networks and networks with containers on them.
    pub fn remove(&self, name_or_id: &str) -> Result<()> {
        let n = self.get(name_or_id)?;
        if PREDEFINED.contains(&n.name.as_str()) {
            return Err(Error::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if !self.endpoints_in(&n.id)?.is_empty() {
            return Err(Error::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        self.drop_network(&n)?;
        self.emit("destroy", &n, None);
        Ok(())
    }

    /// Removes a running container's endpoint on one network (`network disconnect`).
    pub fn leave(&self, container_id: &str, network_id: &str) -> Result<()> {
        let key = endpoint_key(container_id, network_id);
        let Some(ep) = self.db.read(|tx| tx.get(&ENDPOINTS, &key))? else {
            return Ok(());
        };
        if let Ok(mut nl) = Netlink::open()
            && let Ok(Some(i)) = nl.link_index(&ep.veth)
        {
            let _ = nl.delete_link(i);
        }
        {
            let _guard = self.lock.lock().expect("not poisoned");
            self.db.write(|tx| tx.delete(&ENDPOINTS, &key))?;
        }
        if !ep.ports.is_empty() {
            self.update_ports("delete", std::slice::from_ref(&ep))?;
        }
        if let Ok(n) = self.get(network_id) {
            self.emit("disconnect", &n, Some(container_id));
        }
        let user_nets_left = self
            .endpoints_of(container_id)?
            .iter()
            .any(|(n, _)| !n.is_default_bridge());
        if !user_nets_left {
            self.dns.stop(container_id);
        }
        Ok(())
    }

    /// Adds a running container (whose namespace is pinned) to one more network.
    pub fn join(&self, container_id: &str, attachment: &Attachment) -> Result<Endpoint> {
        let n = self.get(&attachment.network)?;
        let path = self.netns_path(container_id);
        if !path.exists() {
            return Err(Error::Conflict(format!(
                "container {container_id} has no network namespace of its own to connect"
            )));
        }
        if self
            .endpoints_of(container_id)?
            .iter()
            .any(|(o, _)| o.id == n.id)
        {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                &container_id[..12.min(container_id.len())],
                n.name
            )));
        }
        let file = netns::open(&path).map_err(internal("open network namespace"))?;
        let mut inside =
            Netlink::open_in(file.as_fd()).map_err(internal("netlink in container"))?;
        let index = self.next_interface_index(&mut inside)?;
        let existing = self.endpoints_of(container_id)?;
        let upstream = existing
            .first()
            .map(|(_, e)| e.dns_upstream.clone())
            .unwrap_or_else(host_upstream);
        let made = self
            .join_all(
                container_id,
                &mut inside,
                std::slice::from_ref(&n),
                std::slice::from_ref(attachment),
                &Joining {
                    ports: &[],
                    first_index: index,
                    dns_upstream: &upstream,
                },
            )
            .and_then(|eps| {
                if !n.is_default_bridge() && !self.dns.serves(container_id) {
                    self.dns
                        .serve(container_id, &path, parse_upstream(&upstream))
                        .map_err(internal("serve DNS in the container"))?;
                }
                Ok(eps)
            });
        match made {
            Ok(mut eps) => {
                self.emit("connect", &n, Some(container_id));
                Ok(eps.remove(0))
            }
            Err(e) => {
                let _ = self.leave(container_id, &n.id);
                Err(e)
            }
        }
    }

    /// The first `ethN` not yet in the namespace.
    fn next_interface_index(&self, inside: &mut Netlink) -> Result<usize> {
        for i in 0..64 {
            if inside
                .link_index(&format!("eth{i}"))
                .map_err(internal("look up eth"))?
                .is_none()
            {
                return Ok(i);
            }
        }
        Err(Error::Conflict("too many networks on one container".into()))
    }

    /// `network prune`: user networks with nothing on them, matching `keep`.
    pub fn prune(&self, keep: &dyn Fn(&NetworkRecord) -> bool) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for n in self.list()? {
            if PREDEFINED.contains(&n.name.as_str()) || !keep(&n) {
                continue;
            }
            if self.endpoints_in(&n.id)?.is_empty() {
                self.drop_network(&n)?;
                self.emit("destroy", &n, None);
                gone.push(n.name);
            }
        }
        Ok(gone)
    }

    /// Removes the rules table (tests and uninstall; bridges stay, like docker0).
    pub fn remove_rules(&self) -> Result<()> {
        match self.config.firewall {
            Firewall::Iptables => iptables::remove(&self.config.table),
            _ => nft::remove(&self.config.table),
        }
        .map_err(internal("firewall"))
    }
}

/// The embedded DNS's answer: addresses of containers that share a user-defined network
/// with `container` and answer to `name`.
fn dns_lookup(db: &Db, container: &str, name: &str) -> Vec<std::net::IpAddr> {
    let read = db.read(|tx| -> std::result::Result<_, berth_metadata::Error> {
        Ok((tx.list(&ENDPOINTS)?, tx.list(&NETWORKS)?))
    });
    let Ok((eps, nets)) = read else {
        return Vec::new();
    };
    let user_net = |id: &str| {
        nets.iter()
            .any(|(_, n)| n.id == id && !n.is_default_bridge())
    };
    let mine: Vec<&str> = eps
        .iter()
        .filter(|(_, e)| e.container_id == container && user_net(&e.network_id))
        .map(|(_, e)| e.network_id.as_str())
        .collect();
    // A link alias of the asker stands for its target's name.
    let target = eps
        .iter()
        .filter(|(_, e)| e.container_id == container)
        .flat_map(|(_, e)| e.dns_links.iter())
        .find(|(_, alias)| alias.eq_ignore_ascii_case(name))
        .map(|(t, _)| t.as_str())
        .unwrap_or(name);
    eps.iter()
        .filter(|(_, e)| mine.contains(&e.network_id.as_str()))
        .filter(|(_, e)| e.dns_names.iter().any(|n| n.eq_ignore_ascii_case(target)))
        .flat_map(|(_, e)| {
            std::iter::once(std::net::IpAddr::V4(e.ip)).chain(e.ip6.map(std::net::IpAddr::V6))
        })
        .collect()
}

/// The host's name servers, where containers' other queries go by default.
pub fn host_upstream() -> Vec<String> {
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    dns::servers_of(&resolv)
        .iter()
        .map(|a| a.to_string())
        .collect()
}

fn parse_upstream(list: &[String]) -> Vec<SocketAddr> {
    list.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Says so when the host's firewall drops forwarded traffic by default (dockerd sets the
/// iptables FORWARD policy to DROP): Berth never overrides the host's rules, so containers
/// would get no traffic through their bridges until the host allows it.
fn warn_if_forwarding_dropped(bridge: &str) {
    let Ok(out) = std::process::Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .output()
    else {
        return;
    };
    if String::from_utf8_lossy(&out.stdout).contains("-P FORWARD DROP") {
        tracing::warn!(
            "the host's iptables FORWARD policy is DROP (Docker sets it): containers' traffic \
             through Berth's bridges is dropped until the host allows it, e.g. \
             `iptables -I FORWARD -i {bridge} -j ACCEPT; iptables -I FORWARD -o {bridge} -j ACCEPT` \
             (and the same for user networks' br-* bridges)"
        );
    }
}

/// Held while a subnet is chosen and its bridge addressed: daemons on one host (tests
/// run several) must not pick the same free pool at the same time. The lock is on `/run`
/// itself, so no lock file is left behind.
fn subnet_lock() -> Option<std::fs::File> {
    let f = std::fs::File::open("/run").ok()?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).ok()?;
    Some(f)
}
