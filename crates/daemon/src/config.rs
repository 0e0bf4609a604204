//! The daemon's settings: command-line flags over the JSON config file (daemon.json keys
//! where Docker has them) over defaults.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// berthd's flags (the fixed contract of DESIGN.md).
#[derive(clap::Parser, Debug, Default)]
#[command(name = "berthd", version, about = "The Berth container engine daemon")]
pub struct Flags {
    /// Socket to listen on, unix:///path (repeatable)
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Root of persistent state
    #[arg(long = "data-root")]
    pub data_root: Option<PathBuf>,
    /// Root of runtime state (sockets, shims)
    #[arg(long = "exec-root")]
    pub exec_root: Option<PathBuf>,
    /// File to write the daemon's pid to
    #[arg(long)]
    pub pidfile: Option<PathBuf>,
    /// JSON config file (daemon.json keys)
    #[arg(long = "config-file")]
    pub config_file: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
    /// The default bridge device (made if missing)
    #[arg(short = 'b', long = "bridge")]
    pub bridge: Option<String>,
    /// The default bridge's address and prefix, e.g. 172.17.0.1/16
    #[arg(long = "bip")]
    pub bip: Option<String>,
    /// Give containers on the default bridge IPv6 addresses too
    #[arg(long = "ipv6")]
    pub ipv6: bool,
    /// The default bridge's IPv6 subnet (with --ipv6; default: a unique local /64)
    #[arg(long = "fixed-cidr-v6")]
    pub fixed_cidr_v6: Option<String>,
    /// A registry (host:port or CIDR) to reach without TLS checks (repeatable)
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Layers downloaded at once per pull (default 3)
    #[arg(long = "max-concurrent-downloads")]
    pub max_concurrent_downloads: Option<usize>,
    /// Layers uploaded at once per push (default 5)
    #[arg(long = "max-concurrent-uploads")]
    pub max_concurrent_uploads: Option<usize>,
    /// Per-registry CAs and client certificates, <dir>/<host:port>/ (default /etc/berth/certs.d)
    #[arg(long = "certs-dir")]
    pub certs_dir: Option<PathBuf>,
    /// Where Berth's packet filter rules go: nftables, iptables, or auto (nftables when
    /// `nft` is installed)
    #[arg(long = "firewall-backend")]
    pub firewall_backend: Option<String>,
}

/// The config file's keys, named as in Docker's daemon.json.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    hosts: Option<Vec<String>>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    log_level: Option<String>,
    log_driver: Option<String>,
    log_opts: Option<std::collections::BTreeMap<String, String>>,
    init_path: Option<PathBuf>,
    bridge: Option<String>,
    bip: Option<String>,
    ipv6: Option<bool>,
    fixed_cidr_v6: Option<String>,
    insecure_registries: Option<Vec<String>>,
    max_concurrent_downloads: Option<usize>,
    max_concurrent_uploads: Option<usize>,
    certs_dir: Option<PathBuf>,
    firewall_backend: Option<String>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sockets to serve, as unix socket paths.
    pub hosts: Vec<PathBuf>,
    /// Persistent state.
    pub data_root: PathBuf,
    /// Runtime state.
    pub exec_root: PathBuf,
    /// Pid file.
    pub pidfile: PathBuf,
    /// tracing filter.
    pub log_level: String,
    /// Containers' default logging: driver (`json-file` or `none`) and options
    /// (`max-size`, `max-file`); rotation at 10 MiB × 3 files unless set.
    pub container_logs: berth_containers::LogConfig,
    /// The static init binary for `--init`: daemon.json `init-path`, else the first of
    /// Debian's tini-static and docker-init that exists.
    pub init_path: Option<PathBuf>,
    /// Networking: the default bridge, its address, and the nftables table Berth owns.
    pub network: berth_network::Config,
    /// How registries are reached: insecure ones, certs.d, download and upload
    /// concurrency.
    pub registry: berth_distribution::Options,
}

const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

impl Config {
    /// Flags win over the file, the file over defaults. A missing default config file is
    /// fine; a missing file named with --config-file is not.
    pub fn load(flags: Flags) -> Result<Self> {
        let file = match &flags.config_file {
            Some(p) => read_file(p)?,
            None if std::path::Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(std::path::Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        let exec_root = flags
            .exec_root
            .or(file.exec_root)
            .unwrap_or_else(|| "/run/berth".into());
        let hosts = if !flags.hosts.is_empty() {
            flags.hosts
        } else {
            file.hosts.unwrap_or_default()
        };
        let hosts = if hosts.is_empty() {
            vec![exec_root.join("berth.sock")]
        } else {
            hosts.iter().map(|h| parse_host(h)).collect::<Result<_>>()?
        };
        let bridge = flags
            .bridge
            .or(file.bridge)
            .unwrap_or_else(|| "berth0".into());
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ']) {
            bail!("invalid bridge name {bridge:?}: at most 15 characters, no '/' or spaces");
        }
        let bip = flags.bip.or(file.bip);
        if let Some(b) = &bip {
            b.parse::<berth_network::Subnet>()
                .map_err(|e| anyhow::anyhow!("--bip: {e}"))?;
        }
        let ipv6 = flags.ipv6 || file.ipv6 == Some(true);
        let fixed_cidr_v6 = flags.fixed_cidr_v6.or(file.fixed_cidr_v6);
        if let Some(c) = &fixed_cidr_v6 {
            c.parse::<berth_network::Subnet6>()
                .map_err(|e| anyhow::anyhow!("--fixed-cidr-v6: {e}"))?;
            if !ipv6 {
                bail!("--fixed-cidr-v6 needs --ipv6 (or \"ipv6\": true in daemon.json)");
            }
        }
        // One table per default bridge, so that daemons side by side (tests) keep apart.
        let table = if bridge == "berth0" {
            "berth".to_string()
        } else {
            format!("berth_{}", bridge.replace(['-', '.'], "_"))
        };
        let firewall = match flags
            .firewall_backend
            .or(file.firewall_backend)
            .as_deref()
            .unwrap_or("auto")
        {
            "auto" | "" => berth_network::Firewall::Auto,
            "nftables" => berth_network::Firewall::Nftables,
            "iptables" => berth_network::Firewall::Iptables,
            other => bail!("invalid --firewall-backend {other:?}: use nftables, iptables or auto"),
        };
        let defaults = berth_distribution::Options::default();
        let mut insecure = file.insecure_registries.unwrap_or_default();
        insecure.extend(flags.insecure_registries);
        let registry = berth_distribution::Options {
            certs_dir: flags
                .certs_dir
                .or(file.certs_dir)
                .unwrap_or(defaults.certs_dir),
            insecure_registries: insecure,
            max_concurrent_downloads: flags
                .max_concurrent_downloads
                .or(file.max_concurrent_downloads)
                .unwrap_or(defaults.max_concurrent_downloads),
            max_concurrent_uploads: flags
                .max_concurrent_uploads
                .or(file.max_concurrent_uploads)
                .unwrap_or(defaults.max_concurrent_uploads),
        };
        if registry.max_concurrent_downloads == 0 || registry.max_concurrent_uploads == 0 {
            bail!("max-concurrent-downloads and max-concurrent-uploads must be at least 1");
        }
        Ok(Config {
            registry,
            network: berth_network::Config {
                bridge,
                bip,
                ipv6,
                fixed_cidr_v6,
                table,
                firewall,
            },
            hosts,
            data_root: flags
                .data_root
                .or(file.data_root)
                .unwrap_or_else(|| "/var/lib/berth".into()),
            pidfile: flags
                .pidfile
                .or(file.pidfile)
                .unwrap_or_else(|| exec_root.join("berthd.pid")),
            exec_root,
            log_level: flags
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            container_logs: berth_containers::LogConfig::from_driver(
                file.log_driver.as_deref().unwrap_or("json-file"),
                &file.log_opts.unwrap_or_default(),
                &berth_containers::LogConfig::default(),
            )
            .map_err(|e| anyhow::anyhow!("config file: {e}"))?,
            init_path: match file.init_path {
                Some(p) if p.is_file() => Some(p),
                Some(p) => bail!("config file: init-path {}: no such file", p.display()),
                None => ["/usr/bin/tini-static", "/usr/bin/docker-init"]
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file()),
            },
        })
    }
}

fn read_file(path: &std::path::Path) -> Result<FileConfig> {
    let text =
        std::fs::read(path).with_context(|| format!("read config file {}", path.display()))?;
    let de = &mut serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        anyhow::anyhow!("config file {}: {key}: {}", path.display(), e.into_inner())
    })
}

/// Accepts `unix:///path` (and a bare absolute path); TCP needs TLS, which is not there yet.
fn parse_host(h: &str) -> Result<PathBuf> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.starts_with('/') {
            return Ok(PathBuf::from(p));
        }
        bail!("-H {h}: a unix socket needs an absolute path, e.g. unix:///run/berth/berth.sock");
    }
    if h.starts_with('/') {
        return Ok(PathBuf::from(h));
    }
    if h.starts_with("tcp://") {
        bail!("-H {h}: tcp:// listeners need TLS, which berthd does not support yet; use unix://");
    }
    bail!("-H {h}: use unix:///path/to/socket")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("unix:///run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert!(parse_host("unix://rel.sock").is_err());
        assert!(
            parse_host("tcp://0.0.0.0:2375")
                .unwrap_err()
                .to_string()
                .contains("TLS")
        );
    }

    #[test]
    fn file_keys_and_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(
            &f,
            r#"{"data-root": "/d", "log-level": "debug", "hosts": ["unix:///s.sock"]}"#,
        )
        .unwrap();
        let flags = Flags {
            data_root: Some("/flag".into()),
            config_file: Some(f.clone()),
            ..Default::default()
        };
        let c = Config::load(flags).unwrap();
        assert_eq!(c.data_root, PathBuf::from("/flag"));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.hosts, vec![PathBuf::from("/s.sock")]);
        std::fs::write(&f, r#"{"no-such-key": 1}"#).unwrap();
        let flags = Flags {
            config_file: Some(f.clone()),
            ..Default::default()
        };
        assert!(format!("{:#}", Config::load(flags).unwrap_err()).contains("no-such-key"));
        std::fs::write(&f, r#"{"bridge": "br-x", "bip": "10.99.0.1/24"}"#).unwrap();
        let flags = Flags {
            config_file: Some(f.clone()),
            ..Default::default()
        };
        let c = Config::load(flags).unwrap();
        assert_eq!(c.network.bridge, "br-x");
        assert_eq!(c.network.table, "berth_br_x");
        assert_eq!(c.network.bip.as_deref(), Some("10.99.0.1/24"));
        std::fs::write(&f, r#"{"bip": "10.99.0.1"}"#).unwrap();
        let flags = Flags {
            config_file: Some(f),
            ..Default::default()
        };
        assert!(format!("{:#}", Config::load(flags).unwrap_err()).contains("--bip"));
    }

    #[test]
    fn ipv6_on_the_default_bridge() {
        let flags = Flags {
            ipv6: true,
            fixed_cidr_v6: Some("2001:db8:1::/64".into()),
            ..Default::default()
        };
        let c = Config::load(flags).unwrap();
        assert!(c.network.ipv6);
        assert_eq!(c.network.fixed_cidr_v6.as_deref(), Some("2001:db8:1::/64"));
        for (ipv6, cidr, says) in [
            (false, "2001:db8:1::/64", "needs --ipv6"),
            (true, "2001:db8:1::", "--fixed-cidr-v6"),
        ] {
            let flags = Flags {
                ipv6,
                fixed_cidr_v6: Some(cidr.into()),
                ..Default::default()
            };
            let e = format!("{:#}", Config::load(flags).unwrap_err());
            assert!(e.contains(says), "{e}");
        }
    }
}
