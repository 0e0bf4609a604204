//! Read-only commands: state, list, ps, events, features, spec.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use berth_runtime::{Container, StateRoot};

/// `state`.
pub fn state(root: &StateRoot, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    println!("{}", serde_json::to_string_pretty(&c.oci_state())?);
    Ok(())
}

/// Flags of `list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// table or json
    #[arg(short, long, default_value = "table")]
    format: String,
    /// Print only ids
    #[arg(short, long)]
    quiet: bool,
}

/// `list`.
pub fn list(root: &StateRoot, a: ListArgs) -> Result<()> {
    let states: Vec<_> = berth_runtime::list(root)?
        .iter()
        .map(|c| c.oci_state())
        .collect();
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for s in &states {
            writeln!(out, "{}", s.id)?;
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" => writeln!(out, "{}", serde_json::to_string(&states)?)?,
        "table" => {
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        "root".into(),
                    ]
                })
                .collect();
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            print_table(&mut out, &header, &rows)?;
        }
        f => anyhow::bail!("invalid --format {f:?}: use table or json"),
    }
    Ok(())
}

fn print_table(out: &mut impl Write, header: &[String; 6], rows: &[[String; 6]]) -> Result<()> {
    let mut widths = header.each_ref().map(|h| h.len());
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    for r in std::iter::once(header).chain(rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}

/// Flags of `ps`.
#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// table or json
    #[arg(short, long, default_value = "table")]
    format: String,
    /// Container id
    id: String,
    /// Options passed to ps(1)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

/// `ps`: pids as JSON, or ps(1)'s output filtered to the container's processes.
pub fn ps(root: &StateRoot, a: PsArgs) -> Result<i32> {
    let pids = Container::load(root, &a.id)?.pids()?;
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    anyhow::ensure!(
        a.format == "table",
        "invalid --format {:?}: use table or json",
        a.format
    );
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}

/// Flags of `events`.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Print one stats event and exit
    #[arg(long)]
    stats: bool,
    /// Interval between stats events, e.g. 5s or 500ms
    #[arg(long, default_value = "5s")]
    interval: String,
    /// Container id
    id: String,
}

fn parse_interval(s: &str) -> Result<Duration> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid --interval {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => anyhow::bail!("invalid --interval {s:?}: use ms, s or m"),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// `events`: stats as runc prints them, once or every interval until the container stops.
pub fn events(root: &StateRoot, a: EventsArgs) -> Result<()> {
    let interval = parse_interval(&a.interval)?;
    loop {
        let c = Container::load(root, &a.id)?;
        if c.status() == berth_runtime::Status::Stopped {
            anyhow::bail!("container {} is not running", a.id);
        }
        let event = serde_json::json!({"type": "stats", "id": a.id, "data": c.stats()?});
        println!("{event}");
        if a.stats {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

/// `features`, in runc's JSON shape.
pub fn features() -> Result<()> {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mut caps = caps;
    caps.sort();
    let f = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "loud",
            "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid",
            "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
            "shared", "silent", "slave", "strictatime", "suid", "sync", "tmpcopyup", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"org.opencontainers.runtime-spec.features.runtime": "berth-runtime"}
    });
    println!("{}", serde_json::to_string_pretty(&f)?);
    Ok(())
}

/// Flags of `spec`.
#[derive(clap::Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json into
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Accepted for runc compatibility; a rootless spec is not generated
    #[arg(long)]
    rootless: bool,
}

/// `spec`: writes runc's default config.json, refusing to overwrite one.
pub fn spec(a: SpecArgs) -> Result<()> {
    anyhow::ensure!(!a.rootless, "--rootless specs are not supported yet");
    let path = a.bundle.join("config.json");
    anyhow::ensure!(!path.exists(), "{} exists: remove it first", path.display());
    let spec = oci_spec::runtime::Spec::default();
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
}
