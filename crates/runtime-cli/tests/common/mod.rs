//! Test harness: a busybox bundle in a temp dir, a private state root and cgroup per test,
//! and a guard that deletes the container and checks nothing is left behind.

#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Path of the built CLI.
pub fn runtime_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime"))
}

/// Path of the probe binary built beside the CLI.
pub fn probe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth-probe"))
}

/// A container-to-be: bundle, state root, id, config.
pub struct TestBundle {
    pub dir: tempfile::TempDir,
    pub state_root: tempfile::TempDir,
    pub id: String,
    pub config: Value,
    /// A shell script every runtime command runs under (in a private mount namespace).
    pub wrapper: Option<PathBuf>,
}

/// The capabilities Docker gives a container by default.
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

impl TestBundle {
    /// A bundle whose process runs `args` under busybox.
    pub fn new(args: &[&str]) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("berth-test-{}-{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("busybox-static is installed");
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let _ = symlink("busybox", rootfs.join("bin").join(applet));
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        let state_root = tempfile::Builder::new()
            .prefix("berth-state")
            .tempdir()
            .unwrap();
        let config = base_config(&id, args);
        TestBundle {
            dir,
            state_root,
            id,
            config,
            wrapper: None,
        }
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Copies the probe binary and the shared libraries it needs into the rootfs.
    pub fn add_probe(&self) {
        let probe = probe_bin();
        std::fs::copy(&probe, self.rootfs().join("bin/berth-probe")).unwrap();
        let ldd = Command::new("ldd").arg(&probe).output().unwrap();
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            let lib = line.split_whitespace().find(|w| w.starts_with('/'));
            if let Some(lib) = lib {
                let dest = self.rootfs().join(lib.trim_start_matches('/'));
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::copy(lib, dest).unwrap();
            }
        }
    }

    /// Writes config.json.
    pub fn write_config(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// `berth-runtime --root <state> ARGS...`, under the wrapper script if there is one.
    pub fn rt(&self, args: &[&str]) -> Command {
        let mut c = match &self.wrapper {
            Some(script) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "--", "sh"]);
                c.arg(script).arg(runtime_bin());
                c
            }
            None => Command::new(runtime_bin()),
        };
        c.arg("--root")
            .arg(self.state_root.path())
            .args(args)
            .current_dir(self.dir.path());
        c
    }

    /// Writes the config and runs the container in the foreground, capturing its output.
    pub fn run(&self) -> Output {
        self.write_config();
        self.rt(&["run", &self.id])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Writes the config and creates the container.
    pub fn create(&self) -> Output {
        self.write_config();
        self.cmd(&["create", &self.id])
    }

    /// Runs a runtime command against this container and returns its output. Output goes
    /// through files, not pipes: a created container's init inherits the command's stdio
    /// and would keep a pipe open until it exits.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let out_path = self.state_root.path().join(format!("out.{n}"));
        let err_path = self.state_root.path().join(format!("err.{n}"));
        let status = self
            .rt(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap(),
            stderr: std::fs::read(&err_path).unwrap(),
        }
    }

    /// The `state` JSON.
    pub fn state(&self) -> Value {
        let out = self.cmd(&["state", &self.id]);
        assert!(
            out.status.success(),
            "state failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The cgroup path this test's container uses.
    pub fn cgroup_path(&self) -> String {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Asserts the runtime left nothing for this container: no state dir, no cgroup
    /// directory, no mount under the bundle.
    pub fn assert_no_leftovers(&self) {
        assert!(
            !self.state_root.path().join(&self.id).exists(),
            "state dir left behind"
        );
        let cg = self.cgroup_path();
        for hierarchy in ["memory", "pids", "freezer", "unified", ""] {
            let p = Path::new("/sys/fs/cgroup")
                .join(hierarchy)
                .join(cg.trim_start_matches('/'));
            assert!(!p.exists(), "cgroup {} left behind", p.display());
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = self.dir.path().to_string_lossy().to_string();
        assert!(
            !mountinfo.contains(&bundle),
            "a mount under the bundle was left on the host"
        );
    }
}

impl Drop for TestBundle {
    fn drop(&mut self) {
        let _ = self
            .rt(&["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}

/// stdout as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config like `runc spec` writes, with Docker's default capabilities and a private
/// cgroup for the test.
pub fn base_config(id: &str, args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS
            },
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "berth-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": format!("/{id}"),
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}
