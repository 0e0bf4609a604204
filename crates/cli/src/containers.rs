//! Container commands: `run`, `create`, `start`, `stop`, `restart`, `kill`, `rm`, `wait`,
//! `rename`, `pause`, `unpause`, `ps`, `top`, `logs`, `exec`, `attach`, `update`,
//! `container prune`.

use std::io::Write;

use serde_json::{Value, json};

use crate::client::{Client, ClientError, enc, enc_path};
use crate::images::filters_json;
use crate::stream::{self, Ended};
use crate::{CliError, CmdResult, format};

/// Docker's default detach sequence.
const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// `run` and `create` flags (the ones Berth implements).
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print usage
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long = "rm")]
    rm: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    tty: bool,
    /// Assign a name to the container
    #[arg(long = "name")]
    name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint")]
    entrypoint: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    label_file: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long = "init")]
    init: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname")]
    hostname: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Give extended privileges to this container
    #[arg(long = "privileged")]
    privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    stop_timeout: Option<i64>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach")]
    attach: Vec<String>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped,
    /// on-failure[:max-retries])
    #[arg(long = "restart")]
    restart: Option<String>,
    #[command(flatten)]
    net: crate::network::NetArgs,
    #[command(flatten)]
    mounts: crate::volume::MountArgs,
    #[command(flatten)]
    health: crate::health::HealthArgs,
    #[command(flatten)]
    resources: crate::resources::ResourceArgs,
    /// The image
    image: String,
    /// The command and its arguments (flags after the image belong to the command)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `start` flags.
#[derive(clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long = "attach")]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Containers
    #[arg(required = true)]
    names: Vec<String>,
}

/// `stop` and `restart` flags.
#[derive(clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    time: Option<i64>,
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    signal: Option<String>,
    /// Containers
    #[arg(required = true)]
    names: Vec<String>,
}

/// `kill` flags.
#[derive(clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    signal: Option<String>,
    /// Containers
    #[arg(required = true)]
    names: Vec<String>,
}

/// `rm` flags.
#[derive(clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long = "volumes")]
    volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long = "link")]
    link: bool,
    /// Containers
    #[arg(required = true)]
    names: Vec<String>,
}

/// Commands that take container names only.
#[derive(clap::Args)]
pub struct NamesArgs {
    /// Containers
    #[arg(required = true)]
    names: Vec<String>,
}

/// `rename` arguments.
#[derive(clap::Args)]
pub struct RenameArgs {
    /// The container
    container: String,
    /// Its new name
    new_name: String,
}

/// `ps` flags.
#[derive(clap::Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last")]
    last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    size: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
}

/// `top` arguments.
#[derive(clap::Args)]
pub struct TopArgs {
    /// The container
    container: String,
    /// ps options
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

/// `logs` flags.
#[derive(clap::Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long = "tail")]
    tail: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    timestamps: bool,
    /// Show logs since timestamp or relative (e.g. 42m)
    #[arg(long = "since")]
    since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m)
    #[arg(long = "until")]
    until: Option<String>,
    /// Show extra details provided to logs
    #[arg(long = "details")]
    details: bool,
    /// The container
    container: String,
}

/// `exec` flags.
#[derive(clap::Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long = "detach")]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Username or UID
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long = "privileged")]
    privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// The container
    container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    command: Vec<String>,
}

/// `attach` flags.
#[derive(clap::Args)]
pub struct AttachArgs {
    #[command(flatten)]
    flags: AttachFlags,
    /// The container
    container: String,
}

/// The flags `attach` shares with `compose attach`.
#[derive(clap::Args, Clone)]
pub struct AttachFlags {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Proxy all received signals to the process (accepted)
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
}

impl AttachArgs {
    /// `attach` to `container` with these flags.
    pub fn of(flags: AttachFlags, container: String) -> AttachArgs {
        AttachArgs { flags, container }
    }
}

/// `update` flags.
#[derive(clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    limits: crate::resources::LimitArgs,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart")]
    restart: Option<String>,
    /// Containers
    #[arg(required = true)]
    names: Vec<String>,
}

/// `diff` arguments.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The container
    container: String,
}

/// `diff`: `A /path`, `C /path`, `D /path` lines.
pub fn diff(c: &Client, a: DiffArgs) -> CmdResult {
    let v = c.get(&format!("/containers/{}/changes", enc_path(&a.container)))?;
    for ch in v.as_array().cloned().unwrap_or_default() {
        let kind = match ch["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            _ => "D",
        };
        println!("{kind} {}", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(0)
}

/// `container prune` flags.
#[derive(clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `--restart name[:max-retries]` as the API's RestartPolicy.
fn restart_policy(spec: &str) -> Result<Value, CliError> {
    let (name, count) = spec.split_once(':').unwrap_or((spec, "0"));
    let count: i64 = count.parse().map_err(|_| CliError {
        message: format!(
            "berth: invalid restart policy format: maximum retry count must be an integer: {spec}"
        ),
        code: 125,
    })?;
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

/// An error of `run`/`create`: exit code 125 like docker's, 126/127 when the command
/// cannot be invoked or is not found.
fn run_error(e: ClientError) -> CliError {
    let message = format!("berth: {e}");
    let code = if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") {
        126
    } else {
        125
    };
    CliError {
        message: format!("{message}\n\nRun 'berth run --help' for more information"),
        code,
    }
}

fn read_lines_file(path: &str) -> Result<Vec<String>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError {
        message: format!("berth: open {path}: {e}"),
        code: 125,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// `-e` values: `KEY` alone takes the value from our environment (dropped if unset).
fn env_list(env: &[String], files: &[String]) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for f in files {
        out.extend(read_lines_file(f)?);
    }
    out.extend(env.iter().cloned());
    Ok(out
        .into_iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e)
            } else {
                std::env::var(&e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect())
}

pub(crate) fn parse_bytes(s: &str) -> Result<i64, CliError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<f64>()
        .map(|n| (n * mult as f64) as i64)
        .map_err(|_| CliError {
            message: format!("berth: invalid size: '{s}'"),
            code: 125,
        })
}

/// The create request docker sends for these flags.
fn create_body(a: &RunArgs, attach_stdio: bool) -> Result<Value, CliError> {
    let image = &a.image;
    let cmd: Vec<String> = a.command.clone();
    let mut labels = serde_json::Map::new();
    let mut label_lines = Vec::new();
    for f in &a.label_file {
        label_lines.extend(read_lines_file(f)?);
    }
    label_lines.extend(a.label.iter().cloned());
    for l in label_lines {
        let (k, v) = l.split_once('=').unwrap_or((&l, ""));
        labels.insert(k.to_string(), json!(v));
    }
    let mut log_opts = serde_json::Map::new();
    for o in &a.log_opt {
        let (k, v) = o.split_once('=').ok_or_else(|| CliError {
            message: format!("berth: invalid log opt: {o}: expected key=value"),
            code: 125,
        })?;
        log_opts.insert(k.to_string(), json!(v));
    }
    let console = if a.tty { stream::terminal_size() } else { None };
    let mut host = json!({
        "AutoRemove": a.rm,
        "Init": a.init,
        "ReadonlyRootfs": a.read_only,
        "Privileged": a.privileged,
        "CapAdd": a.cap_add,
        "CapDrop": a.cap_drop,
        "SecurityOpt": crate::resources::security_opts(&a.security_opt)?,
        "LogConfig": {"Type": a.log_driver.clone().unwrap_or_default(), "Config": log_opts},
        "ConsoleSize": console.map_or([0, 0], |(h, w)| [h, w]),
    });
    if let Some(r) = &a.restart {
        host["RestartPolicy"] = restart_policy(r)?;
    }
    let attach = |s: &str| {
        attach_stdio && (a.attach.is_empty() || a.attach.iter().any(|x| x.eq_ignore_ascii_case(s)))
    };
    let mut body = json!({
        "Image": image,
        "Env": env_list(&a.env, &a.env_file)?,
        "Labels": labels,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": a.interactive && attach_stdio,
        "AttachStdin": a.interactive && attach_stdio,
        "AttachStdout": attach("stdout"),
        "AttachStderr": attach("stderr"),
        "HostConfig": host,
    });
    if !cmd.is_empty() {
        body["Cmd"] = json!(cmd);
    }
    if let Some(e) = &a.entrypoint {
        body["Entrypoint"] = if e.is_empty() {
            json!([""])
        } else {
            json!([e])
        };
    }
    if let Some(w) = &a.workdir {
        body["WorkingDir"] = json!(w);
    }
    if let Some(u) = &a.user {
        body["User"] = json!(u);
    }
    if let Some(h) = &a.hostname {
        body["Hostname"] = json!(h);
    }
    if let Some(s) = &a.stop_signal {
        body["StopSignal"] = json!(s);
    }
    if let Some(t) = a.stop_timeout {
        body["StopTimeout"] = json!(t);
    }
    crate::network::apply(&a.net, &mut body)?;
    crate::volume::apply(&a.mounts, &mut body)?;
    crate::health::apply(&a.health, &mut body)?;
    crate::resources::apply(&a.resources, &mut body)?;
    Ok(body)
}

/// The new container's id; dockerd's warnings go to stderr as the docker CLI prints them.
fn created_id(v: &Value) -> String {
    for w in v["Warnings"].as_array().into_iter().flatten() {
        eprintln!("WARNING: {}", w.as_str().unwrap_or(""));
    }
    v["Id"].as_str().unwrap_or("").to_string()
}

fn create(c: &Client, a: &RunArgs, attach_stdio: bool) -> Result<String, CliError> {
    let body = create_body(a, attach_stdio)?;
    let mut path = "/containers/create".to_string();
    if let Some(n) = &a.name {
        path.push_str(&format!("?name={}", enc(n)));
    }
    match c.post(&path, Some(&body)) {
        Ok(v) => Ok(created_id(&v)),
        Err(ClientError::Daemon {
            status: 404,
            message,
        }) if message.contains("No such image") => {
            // As docker does: say so, pull, and try again.
            let image = &a.image;
            let shown = if image.contains(':') || image.contains('@') {
                image.clone()
            } else {
                format!("{image}:latest")
            };
            eprintln!("Unable to find image '{shown}' locally");
            crate::registry::pull_for_run(c, &shown).map_err(|e| CliError {
                message: format!(
                    "berth: {}\n\nRun 'berth run --help' for more information",
                    e.message
                ),
                code: 125,
            })?;
            let v = c.post(&path, Some(&body)).map_err(run_error)?;
            Ok(created_id(&v))
        }
        Err(e) => Err(run_error(e)),
    }
}

/// `create`.
pub fn create_cmd(c: &Client, a: RunArgs) -> CmdResult {
    let id = create(c, &a, false)?;
    println!("{id}");
    Ok(0)
}

fn detach_keys(flag: &Option<String>) -> Result<Vec<u8>, CliError> {
    berth_types::detach::parse(flag.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))
        .map_err(CliError::new)
}

fn resizer(c: &Client, path: String) -> Box<dyn Fn(u16, u16) + Send> {
    let c = c.clone();
    Box::new(move |h, w| {
        let _ = c.post(&format!("{path}?h={h}&w={w}"), None);
    })
}

/// Runs a hijacked session at this terminal: raw mode when both ends are terminals, the
/// detach keys noticed here for a terminal (as the docker CLI does), and the window size
/// kept in sync through `resize_path`.
fn terminal_session(
    c: &Client,
    hijack: crate::client::Hijacked,
    stdin: bool,
    tty: bool,
    keys_flag: &Option<String>,
    resize_path: String,
) -> Result<Ended, CliError> {
    let keys = if tty {
        detach_keys(keys_flag)?
    } else {
        Vec::new()
    };
    let _raw = (tty && stdin && stream::stdin_is_terminal()).then(stream::RawMode::enter);
    let resize = tty.then(|| resizer(c, resize_path));
    stream::run(hijack, stdin, keys, resize).map_err(|e| CliError::new(format!("berth: {e}")))
}

/// `run`: create, attach, wait, start; the exit code is the container's.
pub fn run(c: &Client, a: RunArgs) -> CmdResult {
    if let Some(n) = crate::network::named_user_network(&a.net) {
        c.get(&format!("/networks/{}", enc_path(n)))
            .map_err(run_error)?;
    }
    let id = create(c, &a, !a.detach)?;
    if a.detach {
        c.post(&format!("/containers/{id}/start"), None)
            .map_err(run_error)?;
        println!("{id}");
        return Ok(0);
    }
    // Checked before anything is attached or started.
    detach_keys(&a.detach_keys)?;
    let stdin = a.interactive;
    let hijack = c
        .hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1&detachKeys={}",
                u8::from(stdin),
                enc(a.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))
            ),
            None,
        )
        .map_err(run_error)?;
    // Registered before the start, so a quick exit is not missed.
    let condition = if a.rm { "removed" } else { "next-exit" };
    let waiter = c
        .send(
            "POST",
            &format!("/containers/{id}/wait?condition={condition}"),
            None,
            &[],
        )
        .map_err(run_error)?;
    if let Err(e) = c.post(&format!("/containers/{id}/start"), None) {
        return Err(run_error(e));
    }
    let ended = terminal_session(
        c,
        hijack,
        stdin,
        a.tty,
        &a.detach_keys,
        format!("/containers/{id}/resize"),
    )?;
    if ended == Ended::Detached {
        return Ok(0);
    }
    let body = waiter
        .error_for_status()
        .map_err(run_error)?
        .into_bytes()
        .map_err(run_error)?;
    let status: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(msg) = status["Error"]["Message"].as_str() {
        return Err(CliError {
            message: format!("berth: {msg}"),
            code: 125,
        });
    }
    Ok(status["StatusCode"].as_i64().unwrap_or(125) as i32)
}

/// `start`.
pub fn start(c: &Client, a: StartArgs) -> CmdResult {
    if a.attach || a.interactive {
        let name = &a.names[0];
        let info = c.get(&format!("/containers/{}/json", enc_path(name)))?;
        let id = info["Id"].as_str().unwrap_or(name).to_string();
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let hijack = c.hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1",
                u8::from(a.interactive)
            ),
            None,
        )?;
        let waiter = c.send(
            "POST",
            &format!("/containers/{id}/wait?condition=next-exit"),
            None,
            &[],
        )?;
        c.post(&format!("/containers/{id}/start"), None)?;
        let ended = terminal_session(
            c,
            hijack,
            a.interactive,
            tty,
            &a.detach_keys,
            format!("/containers/{id}/resize"),
        )?;
        if ended == Ended::Detached {
            return Ok(0);
        }
        let status: Value = serde_json::from_slice(&waiter.into_bytes()?).unwrap_or(Value::Null);
        return Ok(status["StatusCode"].as_i64().unwrap_or(0) as i32);
    }
    each(&a.names, |n| {
        c.post(&format!("/containers/{}/start", enc_path(n)), None)?;
        println!("{n}");
        Ok(())
    })
}

/// Runs `f` for every name; errors are printed and make the exit code 1, as docker does.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<(), ClientError>) -> CmdResult {
    let mut code = 0;
    for n in names {
        if let Err(e) = f(n) {
            eprintln!("{e}");
            code = 1;
        }
    }
    Ok(code)
}

/// `stop` and `restart`.
pub fn stop(c: &Client, a: StopArgs, action: &str) -> CmdResult {
    let mut q = Vec::new();
    if let Some(t) = a.time {
        q.push(format!("t={t}"));
    }
    if let Some(s) = &a.signal {
        q.push(format!("signal={}", enc(s)));
    }
    let q = if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    };
    each(&a.names, |n| {
        c.post(&format!("/containers/{}/{action}{q}", enc_path(n)), None)?;
        println!("{n}");
        Ok(())
    })
}

/// `kill`.
pub fn kill(c: &Client, a: KillArgs) -> CmdResult {
    let q = a
        .signal
        .as_ref()
        .map_or(String::new(), |s| format!("?signal={}", enc(s)));
    each(&a.names, |n| {
        c.post(&format!("/containers/{}/kill{q}", enc_path(n)), None)?;
        println!("{n}");
        Ok(())
    })
}

/// `rm`.
pub fn rm(c: &Client, a: RmArgs) -> CmdResult {
    each(&a.names, |n| {
        // A link is named linker/alias: each part is a path segment of its own.
        let target = n
            .trim_start_matches('/')
            .split('/')
            .map(enc_path)
            .collect::<Vec<_>>()
            .join("/");
        c.json(
            "DELETE",
            &format!(
                "/containers/{target}?force={}&v={}&link={}",
                u8::from(a.force),
                u8::from(a.volumes),
                u8::from(a.link)
            ),
            None,
        )?;
        println!("{n}");
        Ok(())
    })
}

/// `wait`.
pub fn wait(c: &Client, a: NamesArgs) -> CmdResult {
    each(&a.names, |n| {
        let v = c.post(&format!("/containers/{}/wait", enc_path(n)), None)?;
        println!("{}", v["StatusCode"].as_i64().unwrap_or(-1));
        Ok(())
    })
}

/// `rename`.
pub fn rename(c: &Client, a: RenameArgs) -> CmdResult {
    match c.post(
        &format!(
            "/containers/{}/rename?name={}",
            enc_path(&a.container),
            enc(&a.new_name)
        ),
        None,
    ) {
        Ok(_) => Ok(0),
        Err(e) => Err(CliError::new(format!(
            "{e}\nError: failed to rename container named {}",
            a.container
        ))),
    }
}

/// `pause` and `unpause`.
pub fn simple(c: &Client, a: NamesArgs, action: &str) -> CmdResult {
    each(&a.names, |n| {
        c.post(&format!("/containers/{}/{action}", enc_path(n)), None)?;
        println!("{n}");
        Ok(())
    })
}

fn truncate_command(cmd: &str, no_trunc: bool) -> String {
    let quoted = format!("\"{cmd}\"");
    if no_trunc || cmd.chars().count() <= 20 {
        return quoted;
    }
    let short: String = cmd.chars().take(19).collect();
    format!("\"{short}…\"")
}

/// `ps`.
pub fn ps(c: &Client, a: PsArgs) -> CmdResult {
    let mut q = vec![format!("all={}", u8::from(a.all))];
    let limit = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    if let Some(n) = limit {
        q.push(format!("limit={n}"));
    }
    if a.size {
        q.push("size=1".into());
    }
    let f = filters_json(&a.filter)?;
    if !f.is_empty() {
        q.push(format!("filters={}", enc(&f)));
    }
    let list = c.get(&format!("/containers/json?{}", q.join("&")))?;
    let rows: Vec<Value> = list
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|ct| ps_row(ct, a.no_trunc))
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let default = if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let headers = json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
        "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
        "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES",
    });
    let mut out = std::io::stdout().lock();
    format::print_list(&mut out, a.format.as_deref(), default, &headers, &rows)
        .map_err(CliError::new)?;
    let _ = out.flush();
    Ok(0)
}

pub(crate) fn ps_row(ct: &Value, no_trunc: bool) -> Value {
    let id = ct["Id"].as_str().unwrap_or("");
    let names: Vec<String> = ct["Names"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(|x| x.as_str().map(|s| s.trim_start_matches('/').to_string()))
                .collect()
        })
        .unwrap_or_default();
    let labels = format::labels_text(&ct["Labels"]);
    let created = ct["Created"].as_i64().unwrap_or(0);
    let size = match (ct["SizeRw"].as_f64(), ct["SizeRootFs"].as_f64()) {
        (Some(rw), Some(root)) => format!(
            "{} (virtual {})",
            format::human_size(rw),
            format::human_size(root)
        ),
        _ => String::new(),
    };
    json!({
        "ID": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Image": ct["Image"],
        "Command": truncate_command(ct["Command"].as_str().unwrap_or(""), no_trunc),
        "CreatedAt": crate::images::format_local_time(created),
        "RunningFor": format::since(created),
        "Ports": crate::network::ports_column(&ct["Ports"]),
        "State": ct["State"],
        "Status": ct["Status"],
        "Size": size,
        "Names": names.join(","),
        "Labels": labels,
        "Mounts": "",
        "Networks": ct["NetworkSettings"]["Networks"]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
        "LocalVolumes": "0",
    })
}

/// `top`.
pub fn top(c: &Client, a: TopArgs) -> CmdResult {
    let mut path = format!("/containers/{}/top", enc_path(&a.container));
    if !a.ps_args.is_empty() {
        path.push_str(&format!("?ps_args={}", enc(&a.ps_args.join(" "))));
    }
    let v = c.get(&path)?;
    let titles: Vec<String> = v["Titles"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut text = titles.join("\t") + "\n";
    for p in v["Processes"].as_array().cloned().unwrap_or_default() {
        let row: Vec<String> = p
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    // docker's top table: Go tabwriter minimum width 20, padding 3 (this crate adds the padding to the minimum).
    let mut tw = tabwriter::TabWriter::new(Vec::new())
        .minwidth(17)
        .padding(3);
    let _ = tw.write_all(text.as_bytes());
    let _ = tw.flush();
    let _ = std::io::stdout().write_all(&tw.into_inner().unwrap_or_default());
    Ok(0)
}

/// docker's `--since`/`--until` as the Unix seconds the API takes.
pub(crate) fn log_time(v: &str) -> Result<String, CliError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    berth_types::time::parse_point_in_time(v, now)
        .map(|t| format!("{t:.9}"))
        .ok_or_else(|| {
            CliError::new(format!(
                "invalid value for time: {v}: use Unix seconds, RFC 3339 or a duration like 10m"
            ))
        })
}

/// `logs`.
pub fn logs(c: &Client, a: LogsArgs) -> CmdResult {
    let info = c.get(&format!("/containers/{}/json", enc_path(&a.container)))?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut q = vec![
        "stdout=1".to_string(),
        "stderr=1".to_string(),
        format!("follow={}", u8::from(a.follow)),
        format!("timestamps={}", u8::from(a.timestamps)),
        format!("details={}", u8::from(a.details)),
    ];
    if let Some(t) = &a.tail {
        q.push(format!("tail={}", enc(t)));
    }
    if let Some(s) = &a.since {
        q.push(format!("since={}", log_time(s)?));
    }
    if let Some(u) = &a.until {
        q.push(format!("until={}", log_time(u)?));
    }
    let path = format!(
        "/containers/{}/logs?{}",
        enc_path(&a.container),
        q.join("&")
    );
    let mut resp = c.send("GET", &path, None, &[])?.error_for_status()?;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = resp.read_chunk()?;
        if chunk.is_empty() {
            break;
        }
        if tty {
            if stdout
                .write_all(&chunk)
                .and_then(|_| stdout.flush())
                .is_err()
            {
                // The reader of our output is gone (`| head`).
                return Ok(0);
            }
            continue;
        }
        pending.extend_from_slice(&chunk);
        while pending.len() >= 8 {
            let len = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
            if pending.len() < 8 + len {
                break;
            }
            let frame: Vec<u8> = pending.drain(..8 + len).collect();
            let target: &mut dyn Write = if frame[0] == 2 {
                &mut stderr
            } else {
                &mut stdout
            };
            let _ = target.write_all(&frame[8..]);
            let _ = target.flush();
        }
    }
    Ok(0)
}

/// `exec`: its exit code is the process's.
pub fn exec(c: &Client, a: ExecArgs) -> CmdResult {
    let container = &a.container;
    let cmd = &a.command;
    let attach = !a.detach;
    let console = if a.tty { stream::terminal_size() } else { None };
    let mut body = json!({
        "AttachStdin": attach && a.interactive,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Tty": a.tty,
        "Env": env_list(&a.env, &a.env_file)?,
        "Cmd": cmd,
        "Privileged": a.privileged,
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
    });
    if let Some((h, w)) = console {
        body["ConsoleSize"] = json!([h, w]);
    }
    if let Some(w) = &a.workdir {
        body["WorkingDir"] = json!(w);
    }
    if let Some(u) = &a.user {
        body["User"] = json!(u);
    }
    let created = c.post(
        &format!("/containers/{}/exec", enc_path(container)),
        Some(&body),
    )?;
    let exec_id = created["Id"].as_str().unwrap_or("").to_string();
    if a.detach {
        c.post(
            &format!("/exec/{exec_id}/start"),
            Some(&json!({"Detach": true, "Tty": a.tty})),
        )?;
        return Ok(0);
    }
    let start = json!({"Detach": false, "Tty": a.tty, "ConsoleSize": console.map(|(h, w)| [h, w])});
    let hijack = c.hijack(&format!("/exec/{exec_id}/start"), Some(&start))?;
    let ended = terminal_session(
        c,
        hijack,
        a.interactive,
        a.tty,
        &a.detach_keys,
        format!("/exec/{exec_id}/resize"),
    )?;
    if ended == Ended::Detached {
        // As the docker CLI: its `exec` reports the escape as an error (exit 1).
        return Err(CliError::new("read escape sequence"));
    }
    let info = c.get(&format!("/exec/{exec_id}/json"))?;
    Ok(info["ExitCode"].as_i64().unwrap_or(0) as i32)
}

/// `attach`.
pub fn attach(c: &Client, a: AttachArgs) -> CmdResult {
    let _ = a.flags.sig_proxy;
    let info = c.get(&format!("/containers/{}/json", enc_path(&a.container)))?;
    if info["State"]["Running"].as_bool() != Some(true) {
        return Err(CliError::new(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    let id = info["Id"].as_str().unwrap_or("").to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.flags.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let hijack = c.hijack(
        &format!(
            "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1&detachKeys={}",
            u8::from(stdin),
            enc(a
                .flags
                .detach_keys
                .as_deref()
                .unwrap_or(DEFAULT_DETACH_KEYS))
        ),
        None,
    )?;
    let ended = terminal_session(
        c,
        hijack,
        stdin,
        tty,
        &a.flags.detach_keys,
        format!("/containers/{id}/resize"),
    )?;
    if ended == Ended::Detached {
        return Ok(0);
    }
    let v = c.get(&format!("/containers/{id}/json"))?;
    Ok(v["State"]["ExitCode"].as_i64().unwrap_or(0) as i32)
}

/// `update`.
pub fn update(c: &Client, a: UpdateArgs) -> CmdResult {
    let mut body = json!({});
    crate::resources::apply_limits(&a.limits, &mut body)?;
    if let Some(r) = &a.restart {
        let (name, count) = r.split_once(':').unwrap_or((r, "0"));
        body["RestartPolicy"] =
            json!({"Name": name, "MaximumRetryCount": count.parse::<i64>().unwrap_or(0)});
    }
    each(&a.names, |n| {
        c.post(&format!("/containers/{}/update", enc_path(n)), Some(&body))?;
        println!("{n}");
        Ok(())
    })
}

/// `container prune`.
pub fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    if !a.force && !crate::confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let path = crate::images::with_filters("/containers/prune", &a.filter)?;
    let v = c.post(&path, None)?;
    crate::images::print_pruned(&v, "ContainersDeleted", "Containers", true);
    Ok(0)
}
