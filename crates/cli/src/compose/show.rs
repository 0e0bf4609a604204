//! The commands that show a project: `config`, `ps`, `logs`, `top`, `port`, `images`,
//! `ls`, and `exec` (which reuses the plain `exec`).

use std::io::Write;

use berth_compose::Project;
use serde_json::{Value, json};

use super::{containers, label, name_of, parse_as, selected};
use crate::client::{Client, enc, enc_path};
use crate::{CliError, CmdResult, format};

/// `config` flags.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Print the service names, one per line
    #[arg(long = "services")]
    services: bool,
    /// Print the volume names, one per line
    #[arg(long = "volumes")]
    volumes: bool,
    /// Print the profile names, one per line
    #[arg(long = "profiles")]
    profiles: bool,
    /// Format the output: yaml or json
    #[arg(long = "format", default_value = "yaml")]
    format: String,
}

/// `ps` flags.
#[derive(clap::Args)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Only display IDs
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Display services
    #[arg(long = "services")]
    services_only: bool,
    /// Format output using a custom template ('table', 'json' or a Go template)
    #[arg(long = "format")]
    format: Option<String>,
    /// Services
    services: Vec<String>,
}

/// `logs` flags.
#[derive(clap::Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    follow: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long = "tail")]
    tail: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    timestamps: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    no_log_prefix: bool,
    /// Services
    services: Vec<String>,
}

/// `exec` flags.
#[derive(clap::Args)]
pub struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short = 'd', long = "detach")]
    detach: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Path to workdir directory for this command
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Run the command as this user
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long = "index", default_value_t = 1)]
    index: u32,
    /// Give extended privileges to the process
    #[arg(long = "privileged")]
    privileged: bool,
    /// The service
    service: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `port` arguments.
#[derive(clap::Args)]
pub struct PortArgs {
    /// tcp or udp
    #[arg(long = "protocol", default_value = "tcp")]
    protocol: String,
    /// Index of the container if service has multiple replicas
    #[arg(long = "index", default_value_t = 1)]
    index: u32,
    /// The service
    service: String,
    /// The private port
    private_port: u16,
}

/// `ls` flags.
#[derive(clap::Args)]
pub struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Only display IDs
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Format the output: table or json
    #[arg(long = "format", default_value = "table")]
    format: String,
}

/// `config`.
pub fn config(p: &Project, a: &ConfigArgs) -> CmdResult {
    if a.quiet {
        return Ok(0);
    }
    if a.services {
        p.services.keys().for_each(|s| println!("{s}"));
        return Ok(0);
    }
    if a.volumes {
        p.volumes.keys().for_each(|v| println!("{v}"));
        return Ok(0);
    }
    if a.profiles {
        let mut all: Vec<&str> = p
            .services
            .values()
            .chain(p.disabled.values())
            .flat_map(|s| {
                s["profiles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
            })
            .collect();
        all.sort_unstable();
        all.dedup();
        all.iter().for_each(|x| println!("{x}"));
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&p.to_json()).unwrap_or_default()
        ),
        "yaml" => print!("{}", p.to_yaml()),
        other => {
            return Err(CliError::new(format!(
                "unsupported format {other:?}: use yaml or json"
            )));
        }
    }
    Ok(0)
}

/// `ps`.
pub fn ps(c: &Client, p: &Project, a: &PsArgs) -> CmdResult {
    let list = containers(c, &p.name, &selected(p, &a.services)?, a.all, a.all)?;
    if a.services_only {
        let mut names: Vec<String> = list
            .iter()
            .filter_map(|ct| ct["Labels"][label::SERVICE].as_str().map(str::to_string))
            .collect();
        names.dedup();
        names.iter().for_each(|n| println!("{n}"));
        return Ok(0);
    }
    if a.quiet {
        list.iter()
            .for_each(|ct| println!("{}", ct["Id"].as_str().unwrap_or("")));
        return Ok(0);
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|ct| {
            let mut row = crate::containers::ps_row(ct, false);
            row["Name"] = json!(name_of(ct));
            row["Service"] = ct["Labels"][label::SERVICE].clone();
            row["Project"] = ct["Labels"][label::PROJECT].clone();
            row["Publishers"] = ct["Ports"].clone();
            row
        })
        .collect();
    if a.format.as_deref() == Some("json") {
        rows.iter().for_each(|r| println!("{r}"));
        return Ok(0);
    }
    let headers = json!({"Name": "NAME", "Image": "IMAGE", "Command": "COMMAND",
        "Service": "SERVICE", "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS",
        "ID": "CONTAINER ID", "State": "STATE", "Project": "PROJECT"});
    let default = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}";
    let fmt = match a.format.as_deref() {
        Some("table") | None => None,
        other => other,
    };
    let mut out = std::io::stdout().lock();
    format::print_list(&mut out, fmt, default, &headers, &rows).map_err(CliError::new)?;
    Ok(0)
}

/// Prints a container's log lines with `name | ` in front (padded to `width`), until the
/// stream ends (with `follow`, when the container stops).
pub(crate) fn follow_logs(
    c: &Client,
    id: &str,
    width: usize,
    follow: bool,
    extra: Option<&LogsArgs>,
) -> Result<(), CliError> {
    let info = c.get(&format!("/containers/{id}/json"))?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let name = super::inspected_name(&info);
    let mut q = format!("stdout=1&stderr=1&follow={}", u8::from(follow));
    if let Some(a) = extra {
        if let Some(t) = &a.tail {
            q.push_str(&format!("&tail={}", enc(t)));
        }
        if a.timestamps {
            q.push_str("&timestamps=1");
        }
    }
    let prefix = if extra.is_some_and(|a| a.no_log_prefix) {
        String::new()
    } else {
        format!("{name:width$}  | ")
    };
    let mut resp = c
        .send("GET", &format!("/containers/{id}/logs?{q}"), None, &[])?
        .error_for_status()?;
    let mut pending: Vec<u8> = Vec::new();
    let mut line = Vec::new();
    let emit = |line: &mut Vec<u8>| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(prefix.as_bytes());
        let _ = out.write_all(line);
        let _ = out.flush();
        line.clear();
    };
    loop {
        let chunk = resp.read_chunk()?;
        if chunk.is_empty() {
            break;
        }
        let data: Vec<u8> = if tty {
            chunk
        } else {
            pending.extend_from_slice(&chunk);
            let mut payload = Vec::new();
            while pending.len() >= 8 {
                let len =
                    u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
                if pending.len() < 8 + len {
                    break;
                }
                payload.extend_from_slice(&pending[8..8 + len]);
                pending.drain(..8 + len);
            }
            payload
        };
        for b in data {
            line.push(b);
            if b == b'\n' {
                emit(&mut line);
            }
        }
    }
    if !line.is_empty() {
        line.push(b'\n');
        emit(&mut line);
    }
    Ok(())
}

/// `logs`.
pub fn logs(c: &Client, p: &Project, a: &LogsArgs) -> CmdResult {
    let list = containers(c, &p.name, &selected(p, &a.services)?, true, false)?;
    let width = list.iter().map(|ct| name_of(ct).len()).max().unwrap_or(0);
    std::thread::scope(|scope| {
        for ct in &list {
            scope.spawn(move || {
                let id = ct["Id"].as_str().unwrap_or("");
                if let Err(e) = follow_logs(c, id, width, a.follow, Some(a)) {
                    eprintln!("{}", e.message);
                }
            });
        }
    });
    Ok(0)
}

/// `exec`: the plain `exec` against the service's container.
pub fn exec(c: &Client, p: &Project, a: ExecArgs) -> CmdResult {
    let name = super::passthrough::container_of(c, p, &a.service, a.index, false)?;
    let mut argv = Vec::new();
    if a.detach {
        argv.push("-d".to_string());
    } else {
        argv.push("-i".into());
        if !a.no_tty && crate::stream::stdin_is_terminal() {
            argv.push("-t".into());
        }
    }
    for e in &a.env {
        argv.extend(["-e".into(), e.clone()]);
    }
    if let Some(w) = &a.workdir {
        argv.extend(["-w".into(), w.clone()]);
    }
    if let Some(u) = &a.user {
        argv.extend(["-u".into(), u.clone()]);
    }
    if a.privileged {
        argv.push("--privileged".into());
    }
    argv.push(name);
    argv.extend(a.command.iter().cloned());
    crate::containers::exec(c, parse_as("exec", argv)?)
}

/// `top`: each running container's processes under its name.
pub fn top(c: &Client, p: &Project, a: &super::up::ServicesArgs) -> CmdResult {
    for ct in containers(c, &p.name, &selected(p, &a.services)?, false, false)? {
        let name = name_of(&ct);
        println!("{name}");
        crate::containers::top(c, parse_as("top", vec![name])?)?;
        println!();
    }
    Ok(0)
}

/// `port`.
pub fn port(c: &Client, p: &Project, a: &PortArgs) -> CmdResult {
    let name = super::passthrough::container_of(c, p, &a.service, a.index, false)?;
    let info = c.get(&format!("/containers/{}/json", enc_path(&name)))?;
    let key = format!("{}/{}", a.private_port, a.protocol);
    match info["NetworkSettings"]["Ports"][&key]
        .as_array()
        .and_then(|b| b.first())
    {
        Some(b) => {
            println!(
                "{}:{}",
                b["HostIp"].as_str().unwrap_or("0.0.0.0"),
                b["HostPort"].as_str().unwrap_or("")
            );
            Ok(0)
        }
        None => Err(CliError::new(format!("no port {key} for container {name}"))),
    }
}

/// `images`: the images the project's containers use.
pub fn images(c: &Client, p: &Project, a: &super::up::ServicesArgs) -> CmdResult {
    let mut rows = Vec::new();
    for ct in containers(c, &p.name, &selected(p, &a.services)?, true, false)? {
        let image = ct["Image"].as_str().unwrap_or("");
        let info = c.get(&format!(
            "/images/{}/json",
            enc_path(ct["ImageID"].as_str().unwrap_or(image))
        ))?;
        let (repo, tag) = image
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .unwrap_or((image, "latest"));
        let id = info["Id"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("sha256:");
        rows.push(json!({
            "Container": name_of(&ct), "Repository": repo, "Tag": tag,
            "ID": id.chars().take(12).collect::<String>(),
            "Size": format::human_size(info["Size"].as_f64().unwrap_or(0.0)),
        }));
    }
    let headers = json!({"Container": "CONTAINER", "Repository": "REPOSITORY", "Tag": "TAG",
        "ID": "IMAGE ID", "Size": "SIZE"});
    let mut out = std::io::stdout().lock();
    format::print_list(
        &mut out,
        None,
        "table {{.Container}}\t{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}",
        &headers,
        &rows,
    )
    .map_err(CliError::new)?;
    Ok(0)
}

/// `ls`: projects found by their containers' labels.
pub fn ls(c: &Client, a: &LsArgs) -> CmdResult {
    let filters = json!({"label": [label::PROJECT]});
    let list = c.get(&format!(
        "/containers/json?all={}&filters={}",
        u8::from(a.all),
        enc(&filters.to_string())
    ))?;
    let mut projects: std::collections::BTreeMap<String, (Vec<String>, String)> =
        Default::default();
    for ct in list.as_array().into_iter().flatten() {
        let name = ct["Labels"][label::PROJECT]
            .as_str()
            .unwrap_or("")
            .to_string();
        let entry = projects.entry(name).or_default();
        entry.0.push(ct["State"].as_str().unwrap_or("").to_string());
        entry.1 = ct["Labels"][label::CONFIG_FILES]
            .as_str()
            .unwrap_or("")
            .to_string();
    }
    if a.quiet {
        projects.keys().for_each(|p| println!("{p}"));
        return Ok(0);
    }
    let rows: Vec<Value> = projects
        .iter()
        .map(|(name, (states, files))| {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for s in states {
                *counts.entry(s.as_str()).or_default() += 1;
            }
            let status: Vec<String> = counts.iter().map(|(s, n)| format!("{s}({n})")).collect();
            json!({"Name": name, "Status": status.join(", "), "ConfigFiles": files})
        })
        .collect();
    if a.format == "json" {
        println!("{}", Value::Array(rows));
        return Ok(0);
    }
    let headers = json!({"Name": "NAME", "Status": "STATUS", "ConfigFiles": "CONFIG FILES"});
    let mut out = std::io::stdout().lock();
    format::print_list(
        &mut out,
        None,
        "table {{.Name}}\t{{.Status}}\t{{.ConfigFiles}}",
        &headers,
        &rows,
    )
    .map_err(CliError::new)?;
    Ok(0)
}
