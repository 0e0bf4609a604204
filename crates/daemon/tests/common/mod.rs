//! Test harness: a private berthd per test (own socket, data root, exec root, pid file),
//! stopped and removed on drop; raw HTTP and the docker CLI against it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A private berthd: own socket, data root, exec root and pid file; stopped and removed on
/// drop, even when the test fails.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    /// This daemon's own default bridge (its nftables table is `berth_<bridge>`).
    pub bridge: String,
    /// More berthd flags.
    pub extra: Vec<String>,
}

/// A bridge name no other test daemon on this host uses (at most 15 characters).
fn unique_bridge() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("bt{}x{n}", std::process::id())
}

impl Daemon {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A daemon with more flags (`--certs-dir ...`).
    pub fn start_with(extra: &[&str]) -> Self {
        let shim = std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth-shim");
        assert!(
            shim.exists(),
            "{} is missing: run cargo build --workspace --bins first (scripts/test.sh does)",
            shim.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("berthd-test")
            .tempdir()
            .unwrap();
        let mut d = Daemon {
            dir,
            child: None,
            bridge: unique_bridge(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        d.child = Some(d.spawn().spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(d.socket()).is_err() {
            assert!(Instant::now() < deadline, "berthd did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        d
    }

    pub fn spawn(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berthd"));
        c.arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--data-root")
            .arg(self.dir.path().join("data"))
            .arg("--exec-root")
            .arg(self.dir.path().join("exec"))
            .arg("--pidfile")
            .arg(self.pidfile())
            .arg("--bridge")
            .arg(&self.bridge)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.log_file());
        c
    }

    /// berthd's log, appended to across restarts; shown when a test fails.
    fn log_file(&self) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    pub fn pidfile(&self) -> PathBuf {
        self.dir.path().join("berthd.pid")
    }

    /// One HTTP/1.1 request over the socket; returns (status, headers, body).
    pub fn request(&self, method: &str, path: &str) -> (u16, String, String) {
        let mut s = UnixStream::connect(self.socket()).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    /// POSTs a JSON body; returns (status, body).
    pub fn post_json(&self, path: &str, body: &str) -> (u16, String) {
        let mut s = UnixStream::connect(self.socket()).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    /// Kills berthd with SIGKILL (no cleanup at all) and starts a new one on the same
    /// socket, data root and exec root.
    pub fn crash_and_restart(&mut self) {
        self.crash_then(|_| {});
    }

    /// Like [`Daemon::crash_and_restart`], running `while_down` between the two.
    pub fn crash_then(&mut self, while_down: impl FnOnce(&Daemon)) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        while_down(self);
        self.child = Some(self.spawn().spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "berthd did not restart");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on the pid of the child this test started.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap()
    }
}

impl Drop for Daemon {
    /// Stops berthd, then removes what its containers left even when a test failed
    /// half-way: their processes (found through their cgroups), their shims (processes
    /// started with this daemon's directories on their command line), cgroups and mounts.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- berthd log (last lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        // User networks' bridges, while berthd can still say which they are.
        let bridges = if self.child.is_some() {
            self.user_bridges()
        } else {
            Vec::new()
        };
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let ids = self.container_ids();
        let cgroups: Vec<PathBuf> = ids.iter().flat_map(|id| cgroup_dirs(id)).collect();
        for dir in &cgroups {
            // Frozen processes cannot die.
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
            kill_listed(&dir.join("cgroup.procs"));
        }
        let ours = self.dir.path().to_string_lossy().into_owned();
        for pid in pids_with_arg_containing(&ours) {
            // SAFETY: kill(2) on a shim this test's daemon started (its command line names
            // this test's private directory).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(100));
        for dir in &cgroups {
            let _ = std::fs::remove_dir(dir);
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&ours))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let c = std::ffi::CString::new(m).unwrap();
            // SAFETY: umount2 with a NUL-terminated path under this test's directory.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        remove_network_leftovers(&self.bridge);
        for b in bridges {
            remove_network_leftovers(&b);
        }
    }
}

/// Removes a test daemon's bridge, the veths still on it and its nftables table.
pub fn remove_network_leftovers(bridge: &str) {
    for port in bridge_ports(bridge) {
        let _ = Command::new("ip").args(["link", "del", &port]).status();
    }
    let _ = Command::new("ip").args(["link", "del", bridge]).status();
    let table = format!("berth_{bridge}");
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", &table])
        .stderr(Stdio::null())
        .status();
    remove_iptables_chains(&table.to_uppercase());
}

/// Berth's iptables chains for a table name (the `--firewall-backend iptables` daemons
/// of tests), with the jumps to them.
fn remove_iptables_chains(prefix: &str) {
    let quiet = |args: &[&str]| {
        Command::new("iptables")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !quiet(&["-t", "nat", "-S", &format!("{prefix}-PUB")]) {
        return;
    }
    for (t, builtin, suffix) in [
        ("nat", "PREROUTING", "PRE"),
        ("nat", "OUTPUT", "OUT"),
        ("nat", "POSTROUTING", "POST"),
        ("filter", "FORWARD", "FWD"),
    ] {
        let chain = format!("{prefix}-{suffix}");
        while quiet(&["-t", t, "-D", builtin, "-j", &chain]) {}
    }
    for (t, suffix) in [
        ("nat", "PRE"),
        ("nat", "OUT"),
        ("nat", "PUB"),
        ("nat", "POST"),
        ("filter", "FWD"),
    ] {
        let chain = format!("{prefix}-{suffix}");
        quiet(&["-t", t, "-F", &chain]);
        quiet(&["-t", t, "-X", &chain]);
    }
}

/// The veths attached to a bridge.
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

impl Daemon {
    /// The bridges of this daemon's user-defined networks.
    pub fn user_bridges(&self) -> Vec<String> {
        let Ok(mut s) = UnixStream::connect(self.socket()) else {
            return Vec::new();
        };
        let _ = write!(
            s,
            "GET /networks HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n"
        );
        let mut raw = String::new();
        let _ = s.read_to_string(&mut raw);
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let list: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        list.as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["Driver"] == "bridge" && n["Name"] != "bridge")
            .map(
                |n| match n["Options"]["com.docker.network.bridge.name"].as_str() {
                    Some(b) => b.to_string(),
                    None => format!("br-{}", &n["Id"].as_str().unwrap_or("")[..12]),
                },
            )
            .collect()
    }

    pub fn container_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for sub in ["data/containers", "exec/containers"] {
            for e in std::fs::read_dir(self.dir.path().join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if !ids.contains(&name) {
                    ids.push(name);
                }
            }
        }
        ids
    }
}

/// The cgroup directories of container `id` (Berth's default `/berth/<id>`), v1 and v2.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join("berth").join(id)];
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        dirs.push(e.path().join("berth").join(id));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

pub fn kill_listed(procs: &std::path::Path) {
    for pid in std::fs::read_to_string(procs)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
    {
        // SAFETY: kill(2) on a process in the cgroup of a container this test created.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// The pid of the `berth-shim` that supervises container `id` (not its execs').
pub fn shim_pid_of(id: &str) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.first().is_some_and(|a| a.ends_with(b"berth-shim"))
                    && args.contains(&id.as_bytes())
                    && !args.contains(&b"--exec-process".as_slice())
            })
        })
}

pub fn pids_with_arg_containing(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

pub fn docker(d: &Daemon, args: &[&str]) -> Option<std::process::Output> {
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("skipped: the docker CLI is not installed");
        return None;
    }
    // A hang is a failure, not a stuck CI run: coreutils' timeout ends the CLI.
    let out = Command::new("timeout")
        .args(["-s", "KILL", "120", "docker"])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        None,
        "docker {args:?} hung and was killed"
    );
    Some(out)
}

/// A busybox root filesystem at `root` (these applets linked, and a passwd file), from
/// Debian's busybox-static: no registry is reachable.
fn busybox_rootfs(root: &std::path::Path, applets: &[&str]) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
    for applet in applets {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
}

/// `root` as a tar at `tar`.
fn tar_dir(root: &std::path::Path, tar: &std::path::Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-cf")
        .arg(tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
}

/// A busybox root filesystem tar in the daemon's temp dir.
pub fn busybox_tar(d: &Daemon, applets: &[&str]) -> PathBuf {
    let root = d.dir.path().join("rootfs");
    busybox_rootfs(&root, applets);
    let tar = d.dir.path().join("rootfs.tar");
    tar_dir(&root, &tar);
    tar
}

/// A busybox image called `name`: a rootfs under the test dir with `applets`, shaped by
/// `extra` (given the rootfs path), imported with `--change` lines `changes`.
pub fn import_image(
    d: &Daemon,
    name: &str,
    applets: &[&str],
    extra: impl FnOnce(&std::path::Path),
    changes: &[&str],
) -> Option<()> {
    let root = d.dir.path().join(format!("{name}-root"));
    busybox_rootfs(&root, applets);
    extra(&root);
    let tar = d.dir.path().join(format!("{name}.tar"));
    tar_dir(&root, &tar);
    let mut args = vec!["import".to_string()];
    for c in changes {
        args.push("--change".into());
        args.push(c.to_string());
    }
    args.push(tar.to_str().unwrap().into());
    args.push(name.into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = docker(d, &refs)?;
    assert!(o.status.success(), "{}", err(&o));
    Some(())
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// A daemon with a busybox image imported as busybox:latest.
pub fn daemon_with_busybox() -> Option<Daemon> {
    let d = Daemon::start();
    let tar = busybox_tar(
        &d,
        &[
            "sh", "sleep", "echo", "cat", "hostname", "id", "ls", "pwd", "grep", "mount", "stty",
            "tty", "env", "wc", "httpd", "wget", "nc", "ip", "ping", "nslookup",
        ],
    );
    let o = docker(
        &d,
        &[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            tar.to_str().unwrap(),
            "busybox:latest",
        ],
    )?;
    assert!(o.status.success(), "{}", err(&o));
    Some(d)
}

/// Asserts that no mount or cgroup of this daemon's containers is left.
pub fn assert_clean(d: &Daemon) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(d.dir.path().to_str().unwrap()),
        "a mount under the daemon's dirs is left"
    );
    // Veths go with their namespaces, which the kernel tears down in the background.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bridge_ports(&d.bridge).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        bridge_ports(&d.bridge),
        Vec::<String>::new(),
        "a veth is left on the bridge"
    );
    let cg = std::path::Path::new("/sys/fs/cgroup/memory/berth");
    if cg.exists() {
        let ours: Vec<_> = std::fs::read_dir(cg)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        // Other tests' containers may run in parallel: only this daemon's ids matter.
        let data = d.dir.path().join("data/containers");
        for e in ours {
            assert!(
                !data.join(e.file_name()).exists(),
                "cgroup of a removed container is left"
            );
        }
    }
}

/// The docker CLI, which must succeed; returns its trimmed stdout.
pub fn docker_ok(d: &Daemon, args: &[&str]) -> String {
    let o = docker(d, args).expect("the docker CLI is installed");
    assert!(
        o.status.success(),
        "docker {args:?}: {} (exit {:?}; stdout: {:?})",
        err(&o),
        o.status.code(),
        out(&o)
    );
    out(&o)
}

/// The docker CLI with `input` on its stdin.
pub fn docker_with_input(d: &Daemon, args: &[&str], input: &[u8]) -> Option<Output> {
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("skipped: the docker CLI is not installed");
        return None;
    }
    let mut child = Command::new("timeout")
        .args(["-s", "KILL", "120", "docker"])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_ne!(
        out.status.code(),
        None,
        "docker {args:?} hung and was killed"
    );
    Some(out)
}

/// Runs a shell command line inside a new pseudo-terminal (util-linux `script`) with the
/// docker CLI pointed at the daemon; `input` is typed into the terminal, a chunk per
/// second so the program sees it as typing. Returns what the terminal showed.
pub fn in_terminal(d: &Daemon, command: &str, input: &[&[u8]]) -> Option<Output> {
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("skipped: the docker CLI is not installed");
        return None;
    }
    let mut child = Command::new("timeout")
        .args(["-s", "KILL", "120", "script", "-qec", command, "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let chunks: Vec<Vec<u8>> = input.iter().map(|c| c.to_vec()).collect();
    let writer = std::thread::spawn(move || {
        for c in chunks {
            std::thread::sleep(Duration::from_secs(1));
            let _ = stdin.write_all(&c);
        }
        // Keep the terminal open a moment: script ends when its input does.
        std::thread::sleep(Duration::from_secs(2));
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Some(out)
}

/// Berth's own CLI against this daemon, with `input` on its stdin.
pub fn berth(d: &Daemon, args: &[&str], input: Option<&[u8]>) -> Output {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --workspace --bins",
        bin.display()
    );
    let mut child = Command::new("timeout")
        .args(["-s", "KILL", "120"])
        .arg(&bin)
        .args(args)
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env_remove("DOCKER_HOST")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Which CLI a test drives.
#[derive(Debug, Clone, Copy)]
pub enum CliKind {
    /// The docker CLI 28.
    Docker,
    /// `berth`.
    Berth,
}

/// Either CLI, which must succeed; returns its trimmed stdout.
pub fn cli_ok(d: &Daemon, cli: CliKind, args: &[&str]) -> String {
    match cli {
        CliKind::Docker => docker_ok(d, args),
        CliKind::Berth => {
            let o = berth(d, args, None);
            assert!(
                o.status.success(),
                "berth {args:?}: {} (exit {:?}; stdout: {:?})",
                err(&o),
                o.status.code(),
                out(&o)
            );
            out(&o)
        }
    }
}
