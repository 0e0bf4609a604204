//! IPv4 and IPv6 subnets and address allocation.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet such as `172.17.0.0/16` (stored normalised: host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Subnet {
    /// First address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Subnet {
    fn mask(self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `ip` is inside.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two share any address.
    pub fn overlaps(self, other: Subnet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// Whether `inner` lies wholly inside.
    pub fn covers(self, inner: Subnet) -> bool {
        self.prefix <= inner.prefix && self.contains(inner.addr)
    }

    /// The `n`th address (0 = the subnet's own address).
    pub fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).wrapping_add(n))
    }

    /// The number of addresses.
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The broadcast address.
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
}

impl FromStr for Subnet {
    type Err = String;
    /// Parses `a.b.c.d/n`; host bits are cleared (`172.17.0.1/16` is `172.17.0.0/16`,
    /// the way `--bip` gives the gateway and the subnet at once).
    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let sub = Subnet { addr: ip, prefix };
        Ok(Subnet {
            addr: Ipv4Addr::from(u32::from(ip) & sub.mask()),
            prefix,
        })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// An IPv6 subnet such as `2001:db8:1::/64` (stored normalised: host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Subnet6 {
    /// First address.
    pub addr: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix: u8,
}

impl Subnet6 {
    fn mask(self) -> u128 {
        u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `ip` is inside.
    pub fn contains(self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.addr)
    }

    /// Whether the two share any address.
    pub fn overlaps(self, other: Subnet6) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The `n`th address (0 = the subnet's own address).
    pub fn nth(self, n: u128) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr).wrapping_add(n))
    }

    /// A unique local /64 (`fdXX:XXXX:XXXX:XXXX::/64`) from `seed` (a network id), for
    /// `--ipv6` without a subnet.
    pub fn unique_local(seed: &str) -> Subnet6 {
        // fd, then 14 hex digits of the seed: the 64-bit prefix.
        let mut prefix: u128 = 0xfd;
        for b in seed.bytes().chain(std::iter::repeat(b'0')).take(14) {
            prefix = (prefix << 4) | u128::from((b as char).to_digit(16).unwrap_or(0));
        }
        Subnet6 {
            addr: Ipv6Addr::from(prefix << 64),
            prefix: 64,
        }
    }
}

impl FromStr for Subnet6 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 128).ok_or_else(bad)?;
        let sub = Subnet6 { addr: ip, prefix };
        Ok(Subnet6 {
            addr: Ipv6Addr::from(u128::from(ip) & sub.mask()),
            prefix,
        })
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl From<Subnet6> for String {
    fn from(s: Subnet6) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Subnet6 {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// The lowest IPv6 address of `subnet` after its own that is not the gateway nor in
/// `used` (only the first 2^16 are tried: a network has fewer members).
pub fn allocate6(subnet: Subnet6, gateway: Ipv6Addr, used: &[Ipv6Addr]) -> Option<Ipv6Addr> {
    let size = 1u128
        .checked_shl(128 - u32::from(subnet.prefix))
        .unwrap_or(u128::MAX);
    (1..size.min(1 << 16))
        .map(|n| subnet.nth(n))
        .find(|ip| *ip != gateway && !used.contains(ip))
}

/// Docker's default address pools, in the order it picks from them: 172.17–31.0.0/16,
/// then 192.168.0–240.0/20.
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    let big = (17..=31u8).map(|b| Subnet {
        addr: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let small = (0..16u8).map(|i| Subnet {
        addr: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    big.chain(small)
}

/// The first pool that overlaps none of `taken`.
pub fn pick_free(taken: &[Subnet]) -> Option<Subnet> {
    default_pools().find(|p| !taken.iter().any(|t| t.overlaps(*p)))
}

/// The lowest address of `range` (inside `subnet`) that is neither the subnet's own
/// address, its broadcast, the gateway nor in `used`.
pub fn allocate(
    subnet: Subnet,
    range: Option<Subnet>,
    gateway: Ipv4Addr,
    used: &[Ipv4Addr],
) -> Option<Ipv4Addr> {
    let range = range.unwrap_or(subnet);
    (0..range.size().min(u64::from(u32::MAX)) as u32)
        .map(|n| range.nth(n))
        .find(|ip| {
            *ip != subnet.addr && *ip != subnet.broadcast() && *ip != gateway && !used.contains(ip)
        })
}

/// IPv4 subnets routed on this host (from `/proc/net/route`), so new networks avoid them.
pub fn host_routes() -> Vec<Subnet> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The kernel prints the address bytes as one native-endian word; the
            // default route (mask 0) clashes with nothing.
            (mask != 0).then(|| Subnet {
                addr: Ipv4Addr::from(dest.to_le_bytes()),
                prefix: mask.count_ones() as u8,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let s: Subnet = "172.18.0.1/16".parse().unwrap();
        assert_eq!(s.to_string(), "172.18.0.0/16");
        assert!("172.18.0.0".parse::<Subnet>().is_err());
        assert!("172.18.0.0/33".parse::<Subnet>().is_err());
        assert_eq!(s.broadcast(), Ipv4Addr::new(172, 18, 255, 255));
    }

    #[test]
    fn ipv6_subnets() {
        let s: Subnet6 = "2001:db8:1::1/64".parse().unwrap();
        assert_eq!(s.to_string(), "2001:db8:1::/64");
        assert!(s.contains("2001:db8:1::ffff".parse().unwrap()));
        assert!(!s.contains("2001:db8:2::1".parse().unwrap()));
        let gw: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        assert_eq!(
            allocate6(s, gw, &[]),
            Some("2001:db8:1::2".parse().unwrap())
        );
        assert!("fe80::/129".parse::<Subnet6>().is_err());
        let ula = Subnet6::unique_local("0123456789abcdef");
        assert_eq!(ula.prefix, 64);
        assert_eq!(ula.addr.segments()[0] >> 8, 0xfd, "{ula}");
        assert_ne!(ula, Subnet6::unique_local("fedcba9876543210"));
    }

    #[test]
    fn picks_a_pool_clear_of_taken_ones() {
        let taken = [
            "172.17.0.0/16".parse().unwrap(),
            "172.18.5.0/24".parse().unwrap(),
        ];
        assert_eq!(pick_free(&taken).unwrap().to_string(), "172.19.0.0/16");
    }

    #[test]
    fn allocates_lowest_free_address_skipping_gateway() {
        let s: Subnet = "10.1.0.0/24".parse().unwrap();
        let gw = Ipv4Addr::new(10, 1, 0, 1);
        assert_eq!(allocate(s, None, gw, &[]), Some(Ipv4Addr::new(10, 1, 0, 2)));
        let used = [Ipv4Addr::new(10, 1, 0, 2)];
        assert_eq!(
            allocate(s, None, gw, &used),
            Some(Ipv4Addr::new(10, 1, 0, 3))
        );
        let range = "10.1.0.128/25".parse().ok();
        assert_eq!(
            allocate(s, range, gw, &[]),
            Some(Ipv4Addr::new(10, 1, 0, 128))
        );
        let tiny: Subnet = "10.2.0.0/30".parse().unwrap();
        let gw = Ipv4Addr::new(10, 2, 0, 1);
        assert_eq!(
            allocate(tiny, None, gw, &[Ipv4Addr::new(10, 2, 0, 2)]),
            None
        );
    }
}
