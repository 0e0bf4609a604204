//! Volumes on the command line: the `run`/`create` mount flags (`-v`, `--mount`,
//! `--tmpfs`, `--volumes-from`) and `volume create|ls|inspect|rm|prune`.

use std::io::Write;

use serde_json::{Value, json};

use crate::client::{Client, enc_path};
use crate::{CliError, CmdResult, format};

/// The mount flags of `run` and `create`.
#[derive(clap::Args, Default)]
pub struct MountArgs {
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount")]
    mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs")]
    tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    volumes_from: Vec<String>,
}

fn bad(message: String) -> CliError {
    CliError {
        message: format!("{message}\n\nRun 'berth run --help' for more information"),
        code: 125,
    }
}

fn truthy(v: Option<&str>) -> Result<bool, CliError> {
    match v.unwrap_or("true") {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(bad(format!(
            "berth: invalid boolean value {other:?} in --mount"
        ))),
    }
}

/// One `--mount` value as a `HostConfig.Mounts` entry.
pub fn parse_mount(spec: &str) -> Result<Value, CliError> {
    let mut m = json!({"Type": "volume"});
    let mut volume_opts = serde_json::Map::new();
    let mut volume_labels = serde_json::Map::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        let need = || {
            value.ok_or_else(|| {
                bad(format!(
                    "berth: invalid field '{field}' must be a key=value pair"
                ))
            })
        };
        match key.to_ascii_lowercase().as_str() {
            "type" => m["Type"] = json!(need()?),
            "source" | "src" => m["Source"] = json!(need()?),
            "target" | "destination" | "dst" => m["Target"] = json!(need()?),
            "readonly" | "ro" => m["ReadOnly"] = json!(truthy(value)?),
            "volume-nocopy" => m["VolumeOptions"]["NoCopy"] = json!(truthy(value)?),
            "volume-subpath" => m["VolumeOptions"]["Subpath"] = json!(need()?),
            "volume-opt" => {
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                volume_opts.insert(k.to_string(), json!(v));
            }
            "volume-label" => {
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                volume_labels.insert(k.to_string(), json!(v));
            }
            "volume-driver" => m["VolumeOptions"]["DriverConfig"]["Name"] = json!(need()?),
            "bind-propagation" => m["BindOptions"]["Propagation"] = json!(need()?),
            "tmpfs-size" => {
                m["TmpfsOptions"]["SizeBytes"] = json!(crate::containers::parse_bytes(need()?)?)
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(need()?, 8)
                    .map_err(|_| bad(format!("berth: invalid tmpfs-mode: {field}")))?;
                m["TmpfsOptions"]["Mode"] = json!(mode);
            }
            "consistency" => {}
            _ => return Err(bad(format!("berth: unexpected key '{key}' in '{field}'"))),
        }
    }
    if !volume_opts.is_empty() {
        m["VolumeOptions"]["DriverConfig"]["Options"] = Value::Object(volume_opts);
    }
    if !volume_labels.is_empty() {
        m["VolumeOptions"]["Labels"] = Value::Object(volume_labels);
    }
    if m["Target"].is_null() {
        return Err(bad(
            "berth: invalid argument for --mount: target is required".into(),
        ));
    }
    Ok(m)
}

/// Writes the mount flags into a create request body.
pub fn apply(a: &MountArgs, body: &mut Value) -> Result<(), CliError> {
    let mut binds = Vec::new();
    let mut anonymous = serde_json::Map::new();
    for v in &a.volume {
        // `-v /path` alone is an anonymous volume; anything with a ':' is a bind or a
        // named volume.
        if v.starts_with('/') && !v.contains(':') {
            anonymous.insert(v.clone(), json!({}));
        } else {
            binds.push(json!(v));
        }
    }
    let mounts: Vec<Value> = a
        .mount
        .iter()
        .map(|m| parse_mount(m))
        .collect::<Result<_, _>>()?;
    let mut tmpfs = serde_json::Map::new();
    for t in &a.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(path.to_string(), json!(opts));
    }
    let host = &mut body["HostConfig"];
    host["Binds"] = json!(binds);
    host["Mounts"] = json!(mounts);
    host["Tmpfs"] = Value::Object(tmpfs);
    host["VolumesFrom"] = json!(a.volumes_from);
    if !anonymous.is_empty() {
        body["Volumes"] = Value::Object(anonymous);
    }
    Ok(())
}

/// `volume` subcommands.
#[derive(clap::Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

/// `volume create` flags.
#[derive(clap::Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", default_value = "local")]
    driver: String,
    /// Specify volume name
    #[arg(long = "name")]
    name_flag: Option<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long = "label")]
    label: Vec<String>,
    /// The volume's name
    name: Option<String>,
}

/// `volume ls` flags.
#[derive(clap::Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long = "format")]
    format: Option<String>,
}

/// `volume inspect` flags.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long = "format")]
    format: Option<String>,
    /// Volumes
    #[arg(required = true)]
    names: Vec<String>,
}

/// `volume rm` flags.
#[derive(clap::Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Volumes
    #[arg(required = true)]
    names: Vec<String>,
}

/// `volume prune` flags.
#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

fn key_values(list: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for item in list {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        m.insert(k.to_string(), json!(v));
    }
    Value::Object(m)
}

/// Runs a `volume` subcommand.
pub fn dispatch(c: &Client, cmd: VolumeCommand) -> CmdResult {
    match cmd {
        VolumeCommand::Create(a) => {
            if a.name.is_some() && a.name_flag.is_some() && a.name != a.name_flag {
                return Err(CliError::new(
                    "Conflicting options: either specify --name or provide positional arg, not both",
                ));
            }
            let name = a.name.or(a.name_flag).unwrap_or_default();
            let body = json!({"Name": name, "Driver": a.driver,
                "DriverOpts": key_values(&a.opt), "Labels": key_values(&a.label)});
            let v = c.post("/volumes/create", Some(&body))?;
            println!("{}", v["Name"].as_str().unwrap_or(""));
            Ok(0)
        }
        VolumeCommand::Ls(a) => ls(c, a),
        VolumeCommand::Inspect(a) => {
            let mut found = Vec::new();
            let mut code = 0;
            for n in &a.names {
                match c.get(&format!("/volumes/{}", enc_path(n))) {
                    Ok(v) => found.push(v),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            crate::print_inspected(&found, a.format.as_deref())?;
            Ok(code)
        }
        VolumeCommand::Rm(a) => {
            let mut code = 0;
            for n in &a.names {
                let path = format!("/volumes/{}?force={}", enc_path(n), u8::from(a.force));
                match c.json("DELETE", &path, None) {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune(a) => prune(c, a),
    }
}

fn ls(c: &Client, a: LsArgs) -> CmdResult {
    let path = crate::images::with_filters("/volumes", &a.filter)?;
    let v = c.get(&path)?;
    let rows: Vec<Value> = v["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            json!({"Name": v["Name"], "Driver": v["Driver"], "Scope": v["Scope"],
                   "Mountpoint": v["Mountpoint"], "Labels": format::labels_text(&v["Labels"])})
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["Name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let headers = json!({"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "Mountpoint": "MOUNTPOINT", "Labels": "LABELS"});
    let mut out = std::io::stdout().lock();
    format::print_list(
        &mut out,
        a.format.as_deref(),
        "table {{.Driver}}\t{{.Name}}",
        &headers,
        &rows,
    )
    .map_err(CliError::new)?;
    let _ = out.flush();
    Ok(0)
}

fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !crate::confirm(warning) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("all=true".into());
    }
    let path = crate::images::with_filters("/volumes/prune", &filters)?;
    let v = c.post(&path, None)?;
    crate::images::print_pruned(&v, "VolumesDeleted", "Volumes", true);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_flags_parse_like_docker() {
        let m = parse_mount("type=volume,source=data,target=/data,readonly,volume-nocopy,volume-opt=type=tmpfs,volume-label=a=b").unwrap();
        assert_eq!(m["Source"], "data");
        assert_eq!(m["ReadOnly"], true);
        assert_eq!(m["VolumeOptions"]["NoCopy"], true);
        assert_eq!(
            m["VolumeOptions"]["DriverConfig"]["Options"]["type"],
            "tmpfs"
        );
        assert_eq!(m["VolumeOptions"]["Labels"]["a"], "b");
        let t = parse_mount("type=tmpfs,dst=/scratch,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(t["TmpfsOptions"]["SizeBytes"], 1048576);
        assert_eq!(t["TmpfsOptions"]["Mode"], 0o1770);
        assert!(parse_mount("type=bind,source=/x").is_err());
        assert!(parse_mount("type=bind,bogus=1,target=/x").is_err());
    }
}
