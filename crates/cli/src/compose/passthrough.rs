//! Subcommands that find a service's containers and hand over to the plain command
//! (`attach`, `cp`, `commit`, `export`, `stats`, `wait`), and `events`: the engine's
//! events of the project's containers, printed as docker compose prints them.

use std::io::Write;

use berth_compose::Project;
use serde_json::{Value, json};

use super::{containers, label, name_of, parse_as, selected};
use crate::client::{Client, enc, enc_path};
use crate::{CliError, CmdResult};

/// The container of `service` numbered `index`, stopped ones too when `all`.
pub(crate) fn container_of(
    c: &Client,
    p: &Project,
    service: &str,
    index: u32,
    all: bool,
) -> Result<String, CliError> {
    selected(p, &[service.to_string()])?;
    containers(c, &p.name, &[service.to_string()], all, false)?
        .iter()
        .find(|ct| ct["Labels"][label::NUMBER].as_str() == Some(index.to_string().as_str()))
        .map(name_of)
        .ok_or_else(|| CliError::new(format!("service {service:?} is not running")))
}

/// Runs a command in a container through the plain `exec`, its output shown, as docker
/// compose runs hooks and `sync+exec`: `spec` has `command` (a string runs under
/// `/bin/sh -c`) and optionally `user`, `working_dir`, `privileged`, `environment` (a
/// map or a list). A non-zero exit is an error.
pub(crate) fn exec_in(c: &Client, container: &str, spec: &Value) -> Result<(), CliError> {
    let mut argv = Vec::new();
    if let Some(u) = spec["user"].as_str() {
        argv.extend(["-u".to_string(), u.into()]);
    }
    if let Some(w) = spec["working_dir"].as_str() {
        argv.extend(["-w".into(), w.into()]);
    }
    if spec["privileged"].as_bool() == Some(true) {
        argv.push("--privileged".into());
    }
    match &spec["environment"] {
        Value::Object(m) => {
            for (k, v) in m {
                let pair = match v {
                    // No value: taken from this environment, as `-e K` does.
                    Value::Null => k.clone(),
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                };
                argv.extend(["-e".into(), pair]);
            }
        }
        Value::Array(l) => {
            for e in l.iter().filter_map(Value::as_str) {
                argv.extend(["-e".into(), e.into()]);
            }
        }
        _ => {}
    }
    argv.push(container.to_string());
    // The model has split string commands into words already (no shell, as docker
    // compose).
    match &spec["command"] {
        Value::Array(l) if !l.is_empty() => {
            argv.extend(l.iter().filter_map(|v| v.as_str().map(str::to_string)))
        }
        _ => return Err(CliError::new(format!("{container}: no command to run"))),
    }
    let code = crate::containers::exec(c, parse_as("exec", argv)?)?;
    if code != 0 {
        return Err(CliError::new(format!(
            "{container}: {} exited with status {code}",
            spec["command"]
        )));
    }
    Ok(())
}

/// `attach` flags.
#[derive(clap::Args)]
pub struct AttachArgs {
    /// Index of the container if service has multiple replicas
    #[arg(long = "index", default_value_t = 1)]
    index: u32,
    #[command(flatten)]
    flags: crate::containers::AttachFlags,
    /// The service
    service: String,
}

/// `attach`: the plain `attach` to the service's container.
pub fn attach(c: &Client, p: &Project, a: &AttachArgs) -> CmdResult {
    let name = container_of(c, p, &a.service, a.index, false)?;
    crate::containers::attach(c, crate::containers::AttachArgs::of(a.flags.clone(), name))
}

/// `cp` flags.
#[derive(clap::Args)]
pub struct CpArgs {
    /// Index of the container if service has multiple replicas (0: every replica when
    /// copying in, the first when copying out)
    #[arg(long = "index", default_value_t = 0)]
    index: u32,
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow: bool,
    /// SERVICE:SRC_PATH or SRC_PATH
    src: String,
    /// SERVICE:DEST_PATH or DEST_PATH
    dest: String,
}

/// `SERVICE:path` → `container:path` for each container meant (`index` 0: all of the
/// service's); a local path as it is (docker's rule: a `/` before the colon, or a
/// leading `.`, makes it local).
fn to_container_paths(
    c: &Client,
    p: &Project,
    arg: &str,
    index: u32,
) -> Result<Vec<String>, CliError> {
    let Some((svc, path)) = arg
        .split_once(':')
        .filter(|(svc, _)| !svc.is_empty() && !svc.contains('/') && !arg.starts_with('.'))
    else {
        return Ok(vec![arg.to_string()]);
    };
    if index != 0 {
        return Ok(vec![format!(
            "{}:{path}",
            container_of(c, p, svc, index, true)?
        )]);
    }
    selected(p, &[svc.to_string()])?;
    let all: Vec<String> = containers(c, &p.name, &[svc.to_string()], true, false)?
        .iter()
        .map(|ct| format!("{}:{path}", name_of(ct)))
        .collect();
    if all.is_empty() {
        return Err(CliError::new(format!("service {svc:?} has no container")));
    }
    Ok(all)
}

/// `cp`: the plain `cp` with the service's containers in place of the service.
pub fn cp(c: &Client, p: &Project, a: &CpArgs) -> CmdResult {
    let mut flags = Vec::new();
    if a.archive {
        flags.push("-a".to_string());
    }
    if a.follow {
        flags.push("-L".into());
    }
    // Out of the first container meant; into every one.
    let src = to_container_paths(c, p, &a.src, a.index)?.remove(0);
    let dests = if src == "-" {
        to_container_paths(c, p, &a.dest, a.index.max(1))?
    } else {
        to_container_paths(c, p, &a.dest, a.index)?
    };
    for dest in dests {
        let mut argv = flags.clone();
        argv.extend([src.clone(), dest]);
        let code = crate::files::cp(c, parse_as("cp", argv)?)?;
        if code != 0 {
            return Ok(code);
        }
    }
    Ok(0)
}

/// `export` flags.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Index of the container if service has multiple replicas
    #[arg(long = "index", default_value_t = 1)]
    index: u32,
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// The service
    service: String,
}

/// `export`: the service container's filesystem as a tar.
pub fn export(c: &Client, p: &Project, a: &ExportArgs) -> CmdResult {
    let mut argv = Vec::new();
    if let Some(o) = &a.output {
        argv.extend(["-o".to_string(), o.clone()]);
    }
    argv.push(container_of(c, p, &a.service, a.index, true)?);
    crate::files::export(c, parse_as("export", argv)?)
}

/// `commit` flags.
#[derive(clap::Args)]
pub struct CommitArgs {
    /// Index of the container if service has multiple replicas
    #[arg(long = "index", default_value_t = 1)]
    index: u32,
    #[command(flatten)]
    flags: crate::files::CommitFlags,
    /// The service
    service: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

/// `commit`: a new image from the service container's changes.
pub fn commit(c: &Client, p: &Project, a: &CommitArgs) -> CmdResult {
    let name = container_of(c, p, &a.service, a.index, true)?;
    let args = crate::files::CommitArgs::of(a.flags.clone(), name, a.reference.clone());
    crate::files::commit(c, args)
}

/// `stats` flags.
#[derive(clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    flags: crate::stats::StatsFlags,
    /// The service (default: all)
    service: Option<String>,
}

/// `stats`: the plain `stats` of the project's containers.
pub fn stats(c: &Client, p: &Project, a: &StatsArgs) -> CmdResult {
    let services: Vec<String> = a.service.iter().cloned().collect();
    let names: Vec<String> =
        containers(c, &p.name, &selected(p, &services)?, a.flags.all(), false)?
            .iter()
            .map(name_of)
            .collect();
    if names.is_empty() {
        return Ok(0);
    }
    crate::stats::stats(c, crate::stats::StatsArgs::of(a.flags.clone(), names))
}

/// `wait` flags.
#[derive(clap::Args)]
pub struct WaitArgs {
    /// Drops project when the first container stops
    #[arg(long = "down-project")]
    down_project: bool,
    /// Services
    #[arg(required = true)]
    services: Vec<String>,
}

/// `wait`: blocks until the services' containers stop; the exit code is the last one
/// reported, as docker compose does. With `--down-project`, the first stop takes the
/// project down.
pub fn wait(c: &Client, p: &Project, a: &WaitArgs) -> CmdResult {
    let list = containers(c, &p.name, &selected(p, &a.services)?, true, false)?;
    let (tx, rx) = std::sync::mpsc::channel();
    for ct in &list {
        let (tx, c) = (tx.clone(), c.clone());
        let id = ct["Id"].as_str().unwrap_or_default().to_string();
        // Not scoped: with --down-project the others are left waiting when we go.
        std::thread::spawn(move || {
            let r = c.post(&format!("/containers/{}/wait", enc_path(&id)), None);
            let _ = tx.send((id, r));
        });
    }
    drop(tx);
    let mut code = 0;
    for (id, r) in rx {
        code = r?["StatusCode"].as_i64().unwrap_or(0) as i32;
        println!("container {id:?} exited with status code {code}");
        if a.down_project {
            super::up::down(c, p, &parse_as("down", Vec::new())?)?;
            break;
        }
    }
    Ok(code)
}

/// `events` flags.
#[derive(clap::Args)]
pub struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long = "json")]
    json: bool,
    /// Services (default: all)
    services: Vec<String>,
}

/// `events`: the project's container events until interrupted.
pub fn events(c: &Client, p: &Project, a: &EventsArgs) -> CmdResult {
    let services = selected(p, &a.services)?;
    let filters = json!({
        "type": ["container"],
        "label": [format!("{}={}", label::PROJECT, p.name)],
    });
    let mut resp = c
        .send(
            "GET",
            &format!("/events?filters={}", enc(&filters.to_string())),
            None,
            &[],
        )?
        .error_for_status()?;
    let mut out = std::io::stdout().lock();
    crate::registry::each_message(&mut resp, |m| {
        let attrs = &m["Actor"]["Attributes"];
        let Some(service) = attrs[label::SERVICE].as_str() else {
            return;
        };
        // One-off containers (`run`) are not the services', as docker compose sees it.
        if attrs[label::ONEOFF] == "True" {
            return;
        }
        if !services.iter().any(|s| s == service) {
            return;
        }
        let line = event_line(&m, service, a.json);
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })?;
    Ok(0)
}

/// One event as docker compose prints it: `time container action id (k=v, ...)` with
/// its own labels left out, or the same as a JSON object.
fn event_line(m: &Value, service: &str, as_json: bool) -> String {
    let stamp = crate::events::event_time(m);
    let mut attrs: Vec<(String, String)> = m["Actor"]["Attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with("com.docker.compose."))
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    attrs.sort();
    let action = m["Action"].as_str().unwrap_or("");
    let id = m["Actor"]["ID"].as_str().unwrap_or("");
    if as_json {
        let attributes: serde_json::Map<String, Value> =
            attrs.into_iter().map(|(k, v)| (k, json!(v))).collect();
        // Go's RFC3339Nano: no trailing zeros in the fraction.
        let (whole, frac) = stamp
            .trim_end_matches('Z')
            .split_once('.')
            .unwrap_or((&stamp, ""));
        let frac = frac.trim_end_matches('0');
        let time = if frac.is_empty() {
            format!("{whole}Z")
        } else {
            format!("{whole}.{frac}Z")
        };
        return json!({
            "time": time, "type": "container", "service": service,
            "id": id, "action": action, "attributes": attributes,
        })
        .to_string();
    }
    // `2006-01-02 15:04:05.000000`
    let human = format!("{} {}", &stamp[..10], &stamp[11..26]);
    let pairs: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{human} container {action} {id} ({})", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_as_docker_compose_prints_them() {
        let m = json!({
            "Type": "container", "Action": "start", "time": 1_700_000_000,
            "timeNano": 1_700_000_000_123_456_789_i64,
            "Actor": {"ID": "abc", "Attributes": {
                "name": "p-web-1", "image": "busybox",
                "com.docker.compose.service": "web",
            }},
        });
        assert_eq!(
            event_line(&m, "web", false),
            "2023-11-14 22:13:20.123456 container start abc (image=busybox, name=p-web-1)"
        );
        let j: Value = serde_json::from_str(&event_line(&m, "web", true)).unwrap();
        assert_eq!(j["service"], "web");
        assert_eq!(j["action"], "start");
        assert_eq!(
            j["attributes"],
            json!({"image": "busybox", "name": "p-web-1"})
        );
        assert_eq!(j["time"], "2023-11-14T22:13:20.123456789Z");
        let mut round = m.clone();
        round["timeNano"] = json!(1_700_000_000_120_000_000_i64);
        let j: Value = serde_json::from_str(&event_line(&round, "web", true)).unwrap();
        assert_eq!(j["time"], "2023-11-14T22:13:20.12Z");
    }
}
