//! Which kernel namespace a sysctl belongs to, as runc and dockerd decide it: only those
//! may be set for a container, since the others would change the host.

/// The namespace that scopes a sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// System V IPC and POSIX message queues.
    Ipc,
    /// `net.*`.
    Network,
    /// Host and domain name.
    Uts,
}

const IPC: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace of sysctl `name`; `None` for host-wide knobs.
pub fn namespace_of(name: &str) -> Option<Namespace> {
    if IPC.contains(&name) || name.starts_with("fs.mqueue.") {
        Some(Namespace::Ipc)
    } else if name.starts_with("net.") {
        Some(Namespace::Network)
    } else if name == "kernel.hostname" || name == "kernel.domainname" {
        Some(Namespace::Uts)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert_eq!(namespace_of("kernel.shmmax"), Some(Namespace::Ipc));
        assert_eq!(namespace_of("fs.mqueue.msg_max"), Some(Namespace::Ipc));
        assert_eq!(
            namespace_of("net.ipv4.ip_forward"),
            Some(Namespace::Network)
        );
        assert_eq!(namespace_of("kernel.hostname"), Some(Namespace::Uts));
        assert_eq!(namespace_of("vm.swappiness"), None);
    }
}
