//! The last steps before exec that reduce what the container process may do: user and
//! groups, capability sets, resource limits, no_new_privs.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capability, LinuxCapabilities, PosixRlimit, PosixRlimitType, Process};

use crate::error::{Error, IoContext, Result};
use crate::sys;

/// Converts an OCI capability to the `caps` crate's type (both spell it CAP_*).
fn to_cap(c: &Capability) -> Option<Cap> {
    let name = serde_json::to_value(c).ok()?;
    Cap::from_str(name.as_str()?).ok()
}

fn cap_set(set: Option<&std::collections::HashSet<Capability>>) -> CapsHashSet {
    // Capabilities this kernel does not know are skipped, as runc does.
    let supported = caps::runtime::thread_all_supported();
    set.map(|s| {
        s.iter()
            .filter_map(to_cap)
            .filter(|c| supported.contains(c))
            .collect()
    })
    .unwrap_or_default()
}

/// The five sets resolved to kernel-supported capabilities.
#[derive(Debug, Default, Clone)]
pub struct CapSets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl CapSets {
    /// Resolves the config's sets; a missing `capabilities` object means no capabilities.
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Self {
        let Some(c) = c else {
            return CapSets::default();
        };
        CapSets {
            bounding: cap_set(c.bounding().as_ref()),
            effective: cap_set(c.effective().as_ref()),
            permitted: cap_set(c.permitted().as_ref()),
            inheritable: cap_set(c.inheritable().as_ref()),
            ambient: cap_set(c.ambient().as_ref()),
        }
    }

    /// Fails, naming the capability, when the config asks for one the runtime itself does
    /// not hold (e.g. CAP_SYS_RESOURCE in a restricted sandbox): capset would refuse it
    /// half-way through setup otherwise. Not for user-namespaced containers, whose
    /// capabilities live in their own namespace.
    pub fn check_grantable(&self) -> Result<()> {
        let own = caps::read(None, CapSet::Permitted).unwrap_or_default();
        let sets = [
            ("permitted", &self.permitted),
            ("effective", &self.effective),
            ("inheritable", &self.inheritable),
            ("ambient", &self.ambient),
        ];
        for (name, set) in sets {
            let mut missing: Vec<String> = set.difference(&own).map(|c| c.to_string()).collect();
            missing.sort();
            if let Some(first) = missing.first() {
                return Err(Error::InvalidConfig(format!(
                    "process.capabilities.{name}: {first} cannot be granted: berth-runtime does not hold it itself"
                )));
            }
        }
        Ok(())
    }

    /// Drops every capability outside the bounding set. Needs CAP_SETPCAP, so it runs
    /// before the user switch.
    pub fn drop_bounding(&self) -> Result<()> {
        for cap in caps::runtime::thread_all_supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| Error::Init(format!("drop {cap} from the bounding set: {e}")))?;
            }
        }
        Ok(())
    }

    /// Sets effective, permitted, inheritable and ambient sets, after the user switch.
    pub fn apply(&self) -> Result<()> {
        let set = |which: CapSet, value: &CapsHashSet, name: &str| {
            caps::set(None, which, value)
                .map_err(|e| Error::Init(format!("set {name} capabilities: {e}")))
        };
        // effective ⊆ permitted must hold after every step: narrow effective first.
        let current_permitted = caps::read(None, CapSet::Permitted).unwrap_or_default();
        let first_effective: CapsHashSet = self
            .effective
            .intersection(&current_permitted)
            .copied()
            .collect();
        set(CapSet::Effective, &first_effective, "effective")?;
        set(CapSet::Permitted, &self.permitted, "permitted")?;
        set(CapSet::Effective, &self.effective, "effective")?;
        set(CapSet::Inheritable, &self.inheritable, "inheritable")?;
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| Error::Init(format!("clear ambient capabilities: {e}")))?;
        for cap in &self.ambient {
            caps::raise(None, CapSet::Ambient, *cap)
                .map_err(|e| Error::Init(format!("raise ambient capability {cap}: {e}")))?;
        }
        Ok(())
    }
}

/// Switches to the process's uid, gid and supplementary groups, keeping capabilities
/// across the switch so that [`CapSets::apply`] can set them afterwards.
pub fn switch_user(process: &Process) -> Result<()> {
    let user = process.user();
    let mut groups: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
    let mut seen = HashSet::new();
    groups.retain(|g| seen.insert(*g));
    sys::prctl(libc::PR_SET_KEEPCAPS, 1).ctx(|| "keep capabilities across setuid".into())?;
    // setgroups is denied in a user namespace whose setgroups file says "deny"; only fail
    // when groups were actually asked for.
    if let Err(e) = sys::setgroups(&groups)
        && (!groups.is_empty() || e.raw_os_error() != Some(libc::EPERM))
    {
        return Err(Error::io("process.user.additionalGids: setgroups", e));
    }
    sys::setresgid(user.gid()).ctx(|| format!("process.user.gid: setgid {}", user.gid()))?;
    sys::setresuid(user.uid()).ctx(|| format!("process.user.uid: setuid {}", user.uid()))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0).ctx(|| "reset keep-capabilities".into())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

/// Applies `process.rlimits`.
pub fn set_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        sys::setrlimit(rlimit_resource(l.typ()), l.soft(), l.hard()).ctx(|| {
            format!(
                "process.rlimits {}: soft {} hard {}",
                l.typ(),
                l.soft(),
                l.hard()
            )
        })?;
    }
    Ok(())
}

/// Applies `linux.personality`.
pub fn set_personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<()> {
    let persona = match p.domain() {
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    sys::personality(persona).ctx(|| format!("linux.personality {}", p.domain()))
}

/// Forbids gaining privileges through exec (setuid binaries, file capabilities).
pub fn set_no_new_privs() -> Result<()> {
    sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).ctx(|| "process.noNewPrivileges".into())
}

/// Keeps other processes of the same user (the container's) from reading this process's
/// memory or /proc/PID/exe while it still runs the runtime's code.
pub fn set_not_dumpable() -> Result<()> {
    sys::prctl(libc::PR_SET_DUMPABLE, 0).ctx(|| "mark the runtime process non-dumpable".into())
}
