//! The OCI runtime spec of a container, from its Docker Config and HostConfig as docker
//! sends them, on Docker's defaults (capabilities, masked paths, mounts).

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Docker's default capability set.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability this process's bounding set holds (`ALL_CAPS` is in bit order):
/// `--privileged` grants all of them. Inside another container some are missing, and
/// asking for one the engine lacks would fail the start.
fn held_capabilities() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1 << bit) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// Paths the container gets besides its rootfs.
pub struct Paths<'a> {
    /// The mounted rootfs (overlay), where user and group names are looked up.
    pub rootfs: &'a Path,
    /// File bind-mounted as /etc/hostname.
    pub hostname: &'a Path,
    /// File bind-mounted as /etc/hosts.
    pub hosts: &'a Path,
    /// File bind-mounted as /etc/resolv.conf.
    pub resolv: &'a Path,
    /// The network namespace to join; `None` shares the host's.
    pub netns: Option<&'a Path>,
    /// Binds, volumes (resolved to their directories) and tmpfs mounts.
    pub mounts: &'a [crate::mounts::Mount],
    /// The init binary (a static tini) for `--init`, if the daemon has one.
    pub init: Option<&'a Path>,
}

/// Where `--init` puts the init binary in the container, as Docker does.
const INIT_IN_CONTAINER: &str = "/sbin/docker-init";

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The command line: entrypoint followed by cmd.
pub fn argv(config: &Value) -> Result<Vec<String>> {
    let mut args = strings(&config["Entrypoint"]);
    args.extend(strings(&config["Cmd"]));
    if args.is_empty() {
        return Err(Error::InvalidInput("no command specified".into()));
    }
    Ok(args)
}

fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set after --privileged, --cap-add and --cap-drop.
pub fn capabilities(host: &Value) -> Result<Vec<String>> {
    if host["Privileged"].as_bool() == Some(true) {
        return Ok(held_capabilities());
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    for d in strings(&host["CapDrop"]) {
        let d = cap_name(&d);
        if d == "CAP_ALL" {
            caps.clear();
        } else if !ALL_CAPS.contains(&d.as_str()) {
            return Err(Error::InvalidInput(format!(
                "unknown capability to drop: {d:?}"
            )));
        } else {
            caps.retain(|c| *c != d);
        }
    }
    for a in strings(&host["CapAdd"]) {
        let a = cap_name(&a);
        if a == "CAP_ALL" {
            caps = ALL_CAPS.iter().map(|s| s.to_string()).collect();
        } else if !ALL_CAPS.contains(&a.as_str()) {
            return Err(Error::InvalidInput(format!(
                "unknown capability to add: {a:?}"
            )));
        } else if !caps.contains(&a) {
            caps.push(a);
        }
    }
    Ok(caps)
}

/// A group given by number or by name in the rootfs's /etc/group (`--group-add`).
fn group_id(rootfs: &Path, group: &str) -> Result<u32> {
    if let Ok(n) = group.parse() {
        return Ok(n);
    }
    std::fs::read_to_string(rootfs.join("etc/group"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == group)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "Unable to find group {group}: no matching entries in group file"
            ))
        })
}

/// Resolves `user[:group]` (names or numbers) against the rootfs's /etc/passwd and
/// /etc/group; returns (uid, gid, supplementary gids).
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>)> {
    let read = |f: &str| std::fs::read_to_string(rootfs.join(f)).unwrap_or_default();
    let passwd = read("etc/passwd");
    let group = read("etc/group");
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == user || f[2] == user));
    let (uid, mut gid, name) = match (user.parse::<u32>(), &entry) {
        (_, Some(f)) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[0].to_string(),
        ),
        (Ok(n), None) => (n, 0, String::new()),
        (Err(_), None) => {
            return Err(Error::InvalidInput(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )));
        }
    };
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let extra: Vec<u32> = if name.is_empty() {
        Vec::new()
    } else {
        group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .collect()
    };
    Ok((uid, gid, extra))
}

/// The environment: the config's, with PATH, HOSTNAME (and TERM for a terminal) as Docker
/// adds them when missing.
/// The OCI process of an exec: the container's process with the exec's command, and its
/// environment, user, working directory, terminal and privileges where the exec sets them.
pub fn exec_process(container_process: &Value, rootfs: &Path, exec: &Value) -> Result<Value> {
    let args = strings(&exec["Cmd"]);
    if args.is_empty() {
        return Err(Error::InvalidInput("No exec command specified".into()));
    }
    let mut p = container_process.clone();
    p["args"] = json!(args);
    let tty = exec["Tty"].as_bool().unwrap_or(false);
    p["terminal"] = json!(tty);
    let mut env = strings(&p["env"]);
    for e in strings(&exec["Env"]) {
        let key = e.split('=').next().unwrap_or("").to_string();
        env.retain(|x| x.split('=').next() != Some(&key));
        env.push(e);
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p["env"] = json!(env);
    if let Some(user) = exec["User"].as_str().filter(|u| !u.is_empty()) {
        let (uid, gid, groups) = resolve_user(rootfs, user)?;
        p["user"] = json!({"uid": uid, "gid": gid, "additionalGids": groups});
    }
    if let Some(cwd) = exec["WorkingDir"].as_str().filter(|w| !w.is_empty()) {
        if !cwd.starts_with('/') {
            return Err(Error::InvalidInput(format!(
                "the working directory '{cwd}' is invalid, it needs to be an absolute path"
            )));
        }
        p["cwd"] = json!(cwd);
    }
    if exec["Privileged"].as_bool() == Some(true) {
        let all = capabilities(&json!({"Privileged": true}))?;
        p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    }
    if let Some(size) = console_size(&exec["ConsoleSize"]) {
        p["consoleSize"] = size;
    }
    Ok(p)
}

/// Docker's `ConsoleSize` (`[height, width]`, zeros meaning unset) as OCI's consoleSize.
fn console_size(v: &Value) -> Option<Value> {
    let a = v.as_array()?;
    let (h, w) = (a.first()?.as_u64()?, a.get(1)?.as_u64()?);
    (h > 0 && w > 0).then(|| json!({"height": h, "width": w}))
}

fn environment(config: &Value, hostname: &str) -> Vec<String> {
    let mut env = strings(&config["Env"]);
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "PATH") {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    if config["Tty"].as_bool() == Some(true) && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    env
}

/// The complete config.json for the container.
pub fn generate(config: &Value, host: &Value, paths: &Paths<'_>) -> Result<Value> {
    let mut args = argv(config)?;
    let with_init = host["Init"].as_bool() == Some(true);
    if with_init {
        if paths.init.is_none() {
            return Err(Error::InvalidInput(
                "--init needs an init binary: install Debian's tini (tini-static) or set init-path in daemon.json".into(),
            ));
        }
        // tini runs the command as its child, reaps zombies and forwards signals.
        args.splice(0..0, [INIT_IN_CONTAINER.to_string(), "--".to_string()]);
    }
    let hostname = config["Hostname"].as_str().unwrap_or("").to_string();
    let (uid, gid, mut groups) = resolve_user(paths.rootfs, config["User"].as_str().unwrap_or(""))?;
    for g in strings(&host["GroupAdd"]) {
        let gid = group_id(paths.rootfs, &g)?;
        if !groups.contains(&gid) {
            groups.push(gid);
        }
    }
    let caps = capabilities(host)?;
    let privileged = host["Privileged"].as_bool() == Some(true);
    let cwd = config["WorkingDir"]
        .as_str()
        .filter(|w| !w.is_empty())
        .unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(Error::InvalidInput(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let bind = |dest: &str, src: &Path| json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]});
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if let Some(netns) = paths.netns {
        namespaces.push(json!({"type": "network", "path": netns}));
    }
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let (device_nodes, device_rules) = crate::resources::devices(host)?;
    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": config["Tty"].as_bool().unwrap_or(false),
            "user": {"uid": uid, "gid": gid, "additionalGids": groups},
            "args": args,
            "env": environment(config, &hostname),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": crate::resources::no_new_privileges(host),
            "oomScoreAdj": host["OomScoreAdj"].as_i64().unwrap_or(0),
            "rlimits": crate::resources::rlimits(host)?,
            "consoleSize": console_size(&host["ConsoleSize"]).filter(|_| config["Tty"].as_bool() == Some(true))
        },
        "root": {"path": paths.rootfs, "readonly": host["ReadonlyRootfs"].as_bool().unwrap_or(false)},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if privileged { "rw" } else { "ro" }]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if privileged { "rw" } else { "ro" }]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", crate::resources::shm_size(host))]},
            bind("/etc/resolv.conf", paths.resolv),
            bind("/etc/hostname", paths.hostname),
            bind("/etc/hosts", paths.hosts)
        ],
        "linux": {
            "resources": crate::resources::resources_with(host, device_rules),
            "namespaces": namespaces,
            "sysctl": crate::resources::sysctls(host),
            "devices": device_nodes
        }
    });
    for m in paths.mounts {
        spec["mounts"]
            .as_array_mut()
            .expect("mounts is a list")
            .push(m.oci());
    }
    if let (true, Some(init)) = (with_init, paths.init) {
        spec["mounts"]
            .as_array_mut()
            .expect("mounts is a list")
            .push(
                json!({"destination": INIT_IN_CONTAINER, "type": "bind", "source": init,
                "options": ["rbind", "ro", "rprivate"]}),
            );
    }
    let seccomp = strings(&host["SecurityOpt"]).into_iter().find_map(|o| {
        o.strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
            .map(str::to_string)
    });
    match seccomp.as_deref() {
        Some("unconfined") => {}
        Some(profile) if profile != "builtin" && !privileged => {
            spec["linux"]["seccomp"] = crate::seccomp::from_profile(profile, &caps)?;
        }
        _ if !privileged => spec["linux"]["seccomp"] = crate::seccomp::default_profile(&caps),
        _ => {}
    }
    if !privileged {
        spec["linux"]["maskedPaths"] = json!([
            "/proc/asound",
            "/proc/acpi",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap"
        ]);
        spec["linux"]["readonlyPaths"] = json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_follow_add_drop_and_privileged() {
        let c = capabilities(&json!({"CapAdd": ["NET_ADMIN"], "CapDrop": ["chown"]})).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()) && !c.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(
            capabilities(&json!({"CapDrop": ["ALL"]})).unwrap(),
            Vec::<String>::new()
        );
        // Privileged: every capability the engine itself holds (all of them outside
        // another container).
        let all = capabilities(&json!({"Privileged": true})).unwrap();
        assert_eq!(all, held_capabilities());
        assert!(all.contains(&"CAP_SYS_ADMIN".to_string()) && all.len() > DEFAULT_CAPS.len());
        assert!(
            capabilities(&json!({"CapAdd": ["NOPE"]}))
                .unwrap_err()
                .to_string()
                .contains("NOPE")
        );
    }

    #[test]
    fn users_resolve_in_the_rootfs() {
        let root = tempfile_dir();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
        )
        .unwrap();
        assert_eq!(resolve_user(&root, "").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user(&root, "app").unwrap(), (1000, 1000, vec![10]));
        assert_eq!(
            resolve_user(&root, "app:wheel").unwrap(),
            (1000, 10, vec![10])
        );
        assert_eq!(
            resolve_user(&root, "4242:4343").unwrap(),
            (4242, 4343, vec![])
        );
        assert!(
            resolve_user(&root, "ghost")
                .unwrap_err()
                .to_string()
                .contains("unable to find user ghost")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("berth-spec-test-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn argv_is_entrypoint_then_cmd() {
        assert_eq!(
            argv(&json!({"Entrypoint": ["/e"], "Cmd": ["a", "b"]})).unwrap(),
            ["/e", "a", "b"]
        );
        assert!(argv(&json!({})).is_err());
    }
}
