//! The commands that change a project: `up`, `down`, `run`, `build`, `pull`, `push`,
//! `start`, `stop`, `restart`, `rm`, `kill`, `pause`, `unpause`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_compose::Project;
use serde_json::{Value, json};

use super::create::{body, config_hash, image_of, injected, injected_tar, networks};
use super::{containers, label, name_of, parse_as, selected};
use crate::client::{Client, ClientError, enc, enc_path};
use crate::{CliError, CmdResult};

/// `up` flags.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Detached mode: Run containers in the background
    #[arg(short = 'd', long = "detach")]
    detach: bool,
    /// Build images before starting containers
    #[arg(long = "build")]
    build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long = "no-build")]
    no_build: bool,
    /// Scale SERVICE to NUM instances
    #[arg(long = "scale")]
    scale: Vec<String>,
    /// Wait for services to be running|healthy
    #[arg(long = "wait")]
    wait: bool,
    /// Maximum duration to wait for the project to be running|healthy (seconds)
    #[arg(long = "wait-timeout")]
    wait_timeout: Option<u64>,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long = "force-recreate")]
    force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate")]
    no_recreate: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Create the containers without starting them
    #[arg(long = "no-start")]
    no_start: bool,
    /// Use this timeout in seconds for container shutdown
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    /// Stops all containers if any container was stopped
    #[arg(long = "abort-on-container-exit")]
    abort_on_container_exit: bool,
    /// Return the exit code of the selected service container (implies
    /// --abort-on-container-exit)
    #[arg(long = "exit-code-from")]
    exit_code_from: Option<String>,
    /// Watch source code and rebuild/refresh containers when files are updated
    #[arg(short = 'w', long = "watch")]
    watch: bool,
    /// Services
    services: Vec<String>,
}

/// `create` flags.
#[derive(clap::Args)]
pub struct CreateArgs {
    /// Build images before starting containers
    #[arg(long = "build")]
    build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long = "no-build")]
    no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long = "force-recreate")]
    force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate")]
    no_recreate: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Scale SERVICE to NUM instances
    #[arg(long = "scale")]
    scale: Vec<String>,
    /// Services
    services: Vec<String>,
}

/// `create`: `up --no-start`.
pub fn create(c: &Client, p: &Project, a: &CreateArgs) -> CmdResult {
    let mut argv = vec!["--no-start".to_string()];
    for (flag, on) in [
        ("--build", a.build),
        ("--no-build", a.no_build),
        ("--force-recreate", a.force_recreate),
        ("--no-recreate", a.no_recreate),
        ("--remove-orphans", a.remove_orphans),
    ] {
        if on {
            argv.push(flag.into());
        }
    }
    for s in &a.scale {
        argv.extend(["--scale".into(), s.clone()]);
    }
    argv.extend(a.services.iter().cloned());
    up(c, p, &parse_as("up", argv)?)
}

/// `scale` flags.
#[derive(clap::Args)]
pub struct ScaleArgs {
    /// Don't start linked services
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// SERVICE=REPLICAS
    #[arg(required = true)]
    scales: Vec<String>,
}

/// `scale`: `up -d --scale` of the services named.
pub fn scale(c: &Client, p: &Project, a: &ScaleArgs) -> CmdResult {
    let mut argv = vec!["-d".to_string()];
    if a.no_deps {
        argv.push("--no-deps".into());
    }
    let mut services = Vec::new();
    for s in &a.scales {
        let Some((svc, _)) = s.split_once('=') else {
            return Err(CliError::new(format!(
                "invalid scale specifier {s:?}: use SERVICE=REPLICAS"
            )));
        };
        argv.extend(["--scale".into(), s.clone()]);
        services.push(svc.to_string());
    }
    argv.extend(services);
    up(c, p, &parse_as("up", argv)?)
}

/// `down` flags.
#[derive(clap::Args)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section of the Compose file and
    /// anonymous volumes attached to containers
    #[arg(short = 'v', long = "volumes")]
    volumes: bool,
    /// Remove images used by services: "local" (built ones without a custom tag) or "all"
    #[arg(long = "rmi")]
    rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
}

/// `run` flags.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long = "rm")]
    rm: bool,
    /// Assign a name to the container
    #[arg(long = "name")]
    name: Option<String>,
    /// Override the entrypoint of the image
    #[arg(long = "entrypoint")]
    entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Add or override a label
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive", default_value_t = true)]
    interactive: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long = "service-ports")]
    service_ports: bool,
    /// Run as specified username or uid
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// The service
    service: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `build` flags.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long = "pull")]
    pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Set build-time variables for services
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Services
    services: Vec<String>,
}

/// Commands that take service names only.
#[derive(clap::Args)]
pub struct ServicesArgs {
    /// Services
    pub(crate) services: Vec<String>,
}

/// `stop` and `restart` flags.
#[derive(clap::Args)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    /// Services
    services: Vec<String>,
}

/// `rm` flags.
#[derive(clap::Args)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short = 's', long = "stop")]
    stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short = 'v', long = "volumes")]
    volumes: bool,
    /// Services
    services: Vec<String>,
}

/// `kill` flags.
#[derive(clap::Args)]
pub struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short = 's', long = "signal", default_value = "SIGKILL")]
    signal: String,
    /// Services
    services: Vec<String>,
}

/// A progress line as docker compose prints them without a terminal.
fn say(kind: &str, name: &str, what: &str) {
    eprintln!(" {kind} {name}  {what}");
}

fn api(e: ClientError) -> CliError {
    CliError::new(e.to_string())
}

/// Makes a create request from (engine name, declaration, labels).
type CreateBody = dyn Fn(&str, &Value, serde_json::Map<String, Value>) -> Value;

/// Declared networks or volumes, made unless they exist (external ones must): `kind`
/// is `Network` or `Volume`, `path` the API collection, `body` the create request
/// from (engine name, declaration, labels).
fn ensure_declared(
    c: &Client,
    p: &Project,
    kind: &str,
    path: &str,
    section: &serde_json::Map<String, Value>,
    body: &CreateBody,
) -> Result<(), CliError> {
    let own_label = if kind == "Network" {
        label::NETWORK
    } else {
        label::VOLUME
    };
    for (key, decl) in section {
        let name = decl["name"].as_str().unwrap_or(key);
        let exists = c.get(&format!("/{path}/{}", enc_path(name))).is_ok();
        if decl["external"].as_bool() == Some(true) {
            if !exists {
                return Err(CliError::new(format!(
                    "{} {name} declared as external, but could not be found",
                    kind.to_lowercase()
                )));
            }
            continue;
        }
        if exists {
            continue;
        }
        say(kind, name, "Creating");
        let mut labels = decl["labels"].as_object().cloned().unwrap_or_default();
        labels.insert(label::PROJECT.into(), json!(p.name));
        labels.insert(own_label.into(), json!(key));
        labels.insert(label::VERSION.into(), json!(super::COMPOSE_VERSION));
        c.post(&format!("/{path}/create"), Some(&body(name, decl, labels)))
            .map_err(api)?;
        say(kind, name, "Created");
    }
    Ok(())
}

/// Removes the declared networks or volumes that exist (external ones stay).
fn remove_declared(
    c: &Client,
    kind: &str,
    path: &str,
    section: &serde_json::Map<String, Value>,
) -> Result<(), CliError> {
    for (key, decl) in section {
        if decl["external"].as_bool() == Some(true) {
            continue;
        }
        let name = decl["name"].as_str().unwrap_or(key);
        if c.get(&format!("/{path}/{}", enc_path(name))).is_ok() {
            say(kind, name, "Removing");
            c.json("DELETE", &format!("/{path}/{}", enc_path(name)), None)
                .map_err(api)?;
            say(kind, name, "Removed");
        }
    }
    Ok(())
}

fn ensure_networks(c: &Client, p: &Project) -> Result<(), CliError> {
    ensure_declared(
        c,
        p,
        "Network",
        "networks",
        &p.networks,
        &|name, n, labels| {
            let mut req = json!({
                "Name": name,
                "Driver": n["driver"].as_str().unwrap_or("bridge"),
                "Internal": n["internal"].as_bool().unwrap_or(false),
                "Labels": labels,
                "Options": n["driver_opts"].clone(),
            });
            if let Some(configs) = n["ipam"]["config"].as_array() {
                let cfg: Vec<Value> = configs
                .iter()
                .map(|c| json!({"Subnet": c["subnet"], "Gateway": c["gateway"], "IPRange": c["ip_range"]}))
                .collect();
                req["IPAM"] = json!({"Driver": "default", "Config": cfg});
            }
            req
        },
    )
}

fn ensure_volumes(c: &Client, p: &Project) -> Result<(), CliError> {
    ensure_declared(c, p, "Volume", "volumes", &p.volumes, &|name, v, labels| {
        json!({"Name": name, "Driver": v["driver"].as_str().unwrap_or("local"),
            "DriverOpts": v["driver_opts"], "Labels": labels})
    })
}

fn image_exists(c: &Client, image: &str) -> bool {
    c.get(&format!("/images/{}/json", enc_path(image))).is_ok()
}

/// Builds one service's image (tagged with its image name).
fn build_service(c: &Client, p: &Project, svc: &str, a: &BuildArgs) -> Result<(), CliError> {
    let s = &p.services[svc];
    let b = &s["build"];
    let mut args: Vec<String> = b["args"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| match v.as_str() {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    args.extend(a.build_arg.iter().cloned());
    let mut argv = vec!["-t".to_string(), image_of(p, svc, s)];
    for arg in args {
        argv.extend(["--build-arg".into(), arg]);
    }
    if let Some(f) = b["dockerfile"].as_str() {
        let context = b["context"].as_str().unwrap_or(".");
        let path = if f.starts_with('/') || berth_types::remote::is_remote(context) {
            f.to_string()
        } else {
            format!("{context}/{f}")
        };
        argv.extend(["-f".into(), path]);
    }
    if let Some(t) = b["target"].as_str() {
        argv.extend(["--target".into(), t.into()]);
    }
    for (k, v) in b["labels"].as_object().into_iter().flatten() {
        argv.extend([
            "--label".into(),
            format!("{k}={}", v.as_str().unwrap_or("")),
        ]);
    }
    if a.no_cache || b["no_cache"].as_bool() == Some(true) {
        argv.push("--no-cache".into());
    }
    if a.pull || b["pull"].as_bool() == Some(true) {
        argv.push("--pull".into());
    }
    if a.quiet {
        argv.push("-q".into());
    }
    argv.push(b["context"].as_str().unwrap_or(".").to_string());
    let args: crate::build::BuildArgs = parse_as("build", argv)?;
    let code = crate::build::build(c, args)?;
    if code != 0 {
        return Err(CliError {
            message: format!("failed to build service {svc:?}"),
            code,
        });
    }
    Ok(())
}

/// Makes sure a service's image exists: built (when it has `build` and `--build`, or
/// the image is missing) or pulled.
fn ensure_image(
    c: &Client,
    p: &Project,
    svc: &str,
    build: bool,
    no_build: bool,
) -> Result<(), CliError> {
    let s = &p.services[svc];
    let image = image_of(p, svc, s);
    let policy = s["pull_policy"].as_str().unwrap_or("missing");
    if s["build"].is_object()
        && !no_build
        && (build || policy == "build" || !image_exists(c, &image))
    {
        return build_service(
            c,
            p,
            svc,
            &BuildArgs {
                no_cache: false,
                pull: false,
                quiet: false,
                build_arg: Vec::new(),
                services: Vec::new(),
            },
        );
    }
    if policy == "always" || !image_exists(c, &image) {
        if policy == "never" {
            return Err(CliError::new(format!(
                "image {image} not found and pull_policy is never"
            )));
        }
        say("Image", &image, "Pulling");
        crate::registry::pull_for_run(c, &image)?;
        say("Image", &image, "Pulled");
    }
    Ok(())
}

/// The number of containers wanted for each service.
fn scales(p: &Project, flags: &[String]) -> Result<BTreeMap<String, u32>, CliError> {
    let mut out = BTreeMap::new();
    for (name, s) in &p.services {
        let n = s["scale"]
            .as_u64()
            .or(s["deploy"]["replicas"].as_u64())
            .unwrap_or(1);
        out.insert(name.clone(), n as u32);
    }
    for f in flags {
        let (svc, n) = f
            .split_once('=')
            .ok_or_else(|| CliError::new(format!("invalid --scale {f:?}: use SERVICE=NUM")))?;
        let n: u32 = n
            .parse()
            .map_err(|_| CliError::new(format!("invalid --scale {f:?}")))?;
        if !p.services.contains_key(svc) {
            return Err(CliError::new(format!("no such service: {svc}")));
        }
        out.insert(svc.to_string(), n);
    }
    Ok(out)
}

/// The services to act on and everything they depend on (unless `no_deps`).
fn with_dependencies(
    p: &Project,
    names: &[String],
    no_deps: bool,
) -> Result<Vec<String>, CliError> {
    let mut want: Vec<String> = selected(p, names)?;
    if no_deps {
        return Ok(want);
    }
    let mut i = 0;
    while i < want.len() {
        let deps: Vec<String> = p.services[&want[i]]["depends_on"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(d, _)| d.clone())
            .filter(|d| p.services.contains_key(d))
            .collect();
        for d in deps {
            if !want.contains(&d) {
                want.push(d);
            }
        }
        i += 1;
    }
    Ok(want)
}

fn container_name(p: &Project, svc: &str, n: u32) -> String {
    match p.services[svc]["container_name"].as_str() {
        Some(name) => name.to_string(),
        None => format!("{}-{svc}-{n}", p.name),
    }
}

/// Creates container `n` of `svc` and connects its other networks.
fn create_container(
    c: &Client,
    p: &Project,
    svc: &str,
    n: u32,
    name: &str,
) -> Result<String, CliError> {
    say("Container", name, "Creating");
    let req = body(p, svc, n, false)?;
    let created = c
        .post(
            &format!("/containers/create?name={}", enc(name)),
            Some(&req),
        )
        .map_err(api)?;
    let id = created["Id"].as_str().unwrap_or("").to_string();
    complete_created(c, p, svc, &id)?;
    say("Container", name, "Created");
    Ok(id)
}

/// What follows a create before the start: the service's other networks, and its
/// secrets and configs given by content or environment written in.
fn complete_created(c: &Client, p: &Project, svc: &str, id: &str) -> Result<(), CliError> {
    for (net, endpoint) in networks(p, svc).into_iter().skip(1) {
        c.post(
            &format!("/networks/{}/connect", enc_path(&net)),
            Some(&json!({"Container": id, "EndpointConfig": endpoint})),
        )
        .map_err(api)?;
    }
    let files = injected(p, &p.services[svc])?;
    if !files.is_empty() {
        let tar = injected_tar(&files).map_err(|e| CliError::new(e.to_string()))?;
        c.send(
            "PUT",
            &format!("/containers/{id}/archive?path=/&copyUIDGID=1"),
            Some(&tar),
            &[("Content-Type", "application/x-tar")],
        )
        .and_then(|r| r.error_for_status())
        .map_err(api)?;
    }
    Ok(())
}

/// Everything a service's create needs, checked before anything is made.
fn check_services(p: &Project, services: &[String]) -> Result<(), CliError> {
    for svc in services {
        body(p, svc, 1, false)?;
        injected(p, &p.services[svc])?;
    }
    Ok(())
}

/// Brings one service's containers to `scale`, recreating changed ones; returns their
/// ids, in number order.
fn converge(
    c: &Client,
    p: &Project,
    svc: &str,
    scale: u32,
    a: &UpArgs,
) -> Result<Vec<String>, CliError> {
    let existing = containers(c, &p.name, &[svc.to_string()], true, false)?;
    let hash = config_hash(&p.services[svc]);
    let mut ids = Vec::new();
    let mut numbers_taken = Vec::new();
    for ct in &existing {
        let n: u32 = ct["Labels"][label::NUMBER]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let name = name_of(ct);
        let id = ct["Id"].as_str().unwrap_or("").to_string();
        let running = ct["State"] == "running";
        if n == 0 || n > scale || numbers_taken.contains(&n) {
            if running {
                run_hooks(c, p, svc, &name, "pre_stop")?;
            }
            say("Container", &name, "Removing");
            c.json("DELETE", &format!("/containers/{id}?force=1"), None)
                .map_err(api)?;
            say("Container", &name, "Removed");
            continue;
        }
        numbers_taken.push(n);
        let changed = ct["Labels"][label::HASH].as_str() != Some(hash.as_str());
        if (changed && !a.no_recreate) || a.force_recreate {
            if running {
                run_hooks(c, p, svc, &name, "pre_stop")?;
            }
            say("Container", &name, "Recreate");
            let t = a.timeout.map_or(String::new(), |t| format!("?t={t}"));
            let _ = c.post(&format!("/containers/{id}/stop{t}"), None);
            c.json("DELETE", &format!("/containers/{id}?force=1"), None)
                .map_err(api)?;
            ids.push((n, create_container(c, p, svc, n, &name)?));
            say("Container", &name, "Recreated");
        } else {
            say("Container", &name, "Running");
            ids.push((n, id));
        }
    }
    for n in 1..=scale {
        if !numbers_taken.contains(&n) {
            let name = container_name(p, svc, n);
            ids.push((n, create_container(c, p, svc, n, &name)?));
        }
    }
    ids.sort();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

/// Waits for `svc`'s dependencies to be as its `depends_on` asks.
fn wait_for_dependencies(c: &Client, p: &Project, svc: &str) -> Result<(), CliError> {
    for (dep, cond) in p.services[svc]["depends_on"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let condition = cond["condition"].as_str().unwrap_or("service_started");
        if condition == "service_started" || !p.services.contains_key(dep) {
            continue;
        }
        for ct in containers(c, &p.name, std::slice::from_ref(dep), true, false)? {
            let name = name_of(&ct);
            say("Container", &name, "Waiting");
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                let info = c
                    .get(&format!("/containers/{}/json", enc_path(&name)))
                    .map_err(api)?;
                let state = &info["State"];
                let done = match condition {
                    "service_healthy" => match state["Health"]["Status"].as_str() {
                        Some("healthy") => true,
                        Some("unhealthy") => {
                            return Err(CliError::new(format!(
                                "dependency failed to start: container {name} is unhealthy"
                            )));
                        }
                        None if state["Running"].as_bool() == Some(true) => {
                            return Err(CliError::new(format!(
                                "dependency failed to start: container {name} has no healthcheck configured"
                            )));
                        }
                        _ => false,
                    },
                    _ => {
                        let exited = state["Status"] == "exited";
                        let code = state["ExitCode"].as_i64().unwrap_or(0);
                        if exited && code != 0 {
                            return Err(CliError::new(format!(
                                "service {dep:?} didn't complete successfully: exit {code}"
                            )));
                        }
                        exited
                    }
                };
                if done {
                    say(
                        "Container",
                        &name,
                        if condition == "service_healthy" {
                            "Healthy"
                        } else {
                            "Exited"
                        },
                    );
                    break;
                }
                if Instant::now() > deadline {
                    return Err(CliError::new(format!("timed out waiting for {name}")));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

fn start_ids(c: &Client, p: &Project, ids: &[String]) -> Result<(), CliError> {
    for id in ids {
        let info = c.get(&format!("/containers/{id}/json")).map_err(api)?;
        let name = super::inspected_name(&info);
        if info["State"]["Running"].as_bool() == Some(true) {
            continue;
        }
        say("Container", &name, "Starting");
        c.post(&format!("/containers/{id}/start"), None)
            .map_err(api)?;
        if let Some(svc) = info["Config"]["Labels"][label::SERVICE].as_str() {
            run_hooks(c, p, svc, &name, "post_start")?;
        }
        say("Container", &name, "Started");
    }
    Ok(())
}

/// A service's `post_start` or `pre_stop` hooks, run in one of its containers in order,
/// each waited for; a failing hook fails the command, as in docker compose.
fn run_hooks(
    c: &Client,
    p: &Project,
    svc: &str,
    container: &str,
    kind: &str,
) -> Result<(), CliError> {
    let Some(s) = p.services.get(svc) else {
        return Ok(());
    };
    for hook in s[kind].as_array().into_iter().flatten() {
        super::passthrough::exec_in(c, container, hook)
            .map_err(|e| CliError::new(format!("{kind} hook of {container}: {}", e.message)))?;
    }
    Ok(())
}

/// Set by SIGINT while `up` is attached.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// `up`.
pub fn up(c: &Client, p: &Project, a: &UpArgs) -> CmdResult {
    let services = with_dependencies(p, &a.services, a.no_deps)?;
    let scale = &scales(p, &a.scale)?;
    check_services(p, &services)?;
    let watch_rules = if a.watch && !a.no_start {
        Some(super::watch::rules_for_up(p, &services)?)
    } else {
        None
    };
    if a.remove_orphans {
        remove_orphans(c, p)?;
    }
    ensure_networks(c, p)?;
    ensure_volumes(c, p)?;
    for svc in &services {
        ensure_image(c, p, svc, a.build, a.no_build)?;
    }
    let mut all_ids = Vec::new();
    for wave in p.start_order().map_err(|e| CliError::new(e.to_string()))? {
        let wave: Vec<&String> = wave.iter().filter(|s| services.contains(s)).collect();
        // Independent services start side by side.
        let results: Vec<Result<Vec<String>, CliError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = wave
                .iter()
                .map(|svc| {
                    scope.spawn(move || {
                        let ids = converge(c, p, svc, scale[svc.as_str()], a)?;
                        if !a.no_start {
                            wait_for_dependencies(c, p, svc)?;
                            start_ids(c, p, &ids)?;
                        }
                        Ok(ids)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(CliError::new("a service thread panicked")))
                })
                .collect()
        });
        for r in results {
            all_ids.extend(r?);
        }
    }
    if a.wait {
        wait_running(c, &all_ids, a.wait_timeout)?;
    }
    let watcher = watch_rules.map(|r| super::watch::spawn(c, p, r));
    if a.detach || a.no_start || a.wait {
        if let Some(w) = watcher {
            // Detached, the watch is what keeps running.
            let _ = w.join();
        }
        return Ok(0);
    }
    if let Some(svc) = &a.exit_code_from
        && !p.services.contains_key(svc)
    {
        return Err(CliError::new(format!("no such service: {svc}")));
    }
    let abort = a.abort_on_container_exit || a.exit_code_from.is_some();
    attach_until_done(
        c,
        p,
        &all_ids,
        a.timeout,
        abort,
        a.exit_code_from.as_deref(),
    )
}

/// `--wait`: every container running, and healthy where it has a healthcheck.
fn wait_running(c: &Client, ids: &[String], timeout: Option<u64>) -> Result<(), CliError> {
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t));
    for id in ids {
        loop {
            let info = c.get(&format!("/containers/{id}/json")).map_err(api)?;
            let name = super::inspected_name(&info);
            let state = &info["State"];
            let health = state["Health"]["Status"].as_str();
            if state["Status"] == "exited" {
                return Err(CliError::new(format!(
                    "container {name} exited ({})",
                    state["ExitCode"]
                )));
            }
            if health == Some("unhealthy") {
                return Err(CliError::new(format!("container {name} is unhealthy")));
            }
            if state["Running"].as_bool() == Some(true) && health.is_none_or(|h| h == "healthy") {
                say(
                    "Container",
                    &name,
                    if health.is_some() {
                        "Healthy"
                    } else {
                        "Running"
                    },
                );
                break;
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(CliError::new(format!("timed out waiting for {name}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Attached `up`: every container's output with its name, until they all stop; ^C stops
/// them.
fn attach_until_done(
    c: &Client,
    p: &Project,
    ids: &[String],
    timeout: Option<u64>,
    abort: bool,
    exit_code_from: Option<&str>,
) -> CmdResult {
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        )
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // Each container inspected once: its name sets the prefix width, its service
    // whether it is shown.
    let infos: Vec<Value> = ids
        .iter()
        .map(|id| {
            c.get(&format!("/containers/{id}/json"))
                .unwrap_or(Value::Null)
        })
        .collect();
    let width = infos
        .iter()
        .map(|i| super::inspected_name(i).len())
        .max()
        .unwrap_or(0);
    for (id, info) in ids.iter().zip(&infos) {
        let (id, tx) = (id.clone(), tx.clone());
        let host = c.clone();
        // `attach: false`: its output is not shown, its end still counts.
        let quiet = info["Config"]["Labels"][label::SERVICE]
            .as_str()
            .and_then(|svc| p.services.get(svc))
            .is_some_and(|s| s["attach"] == false);
        std::thread::spawn(move || {
            if quiet {
                let _ = host.post(&format!("/containers/{id}/wait"), None);
            } else {
                let _ = super::show::follow_logs(&host, &id, width, true, None);
            }
            let _ = tx.send(id);
        });
    }
    drop(tx);
    let mut left = ids.len();
    while left > 0 {
        if INTERRUPTED.load(Ordering::SeqCst) {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            // SAFETY: restoring the default disposition.
            unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
            stop_all(c, p, &containers(c, &p.name, &[], false, false)?, timeout);
            return Ok(130);
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(id) => {
                left -= 1;
                if abort {
                    eprintln!("Aborting on container exit...");
                    stop_all(c, p, &containers(c, &p.name, &[], false, false)?, timeout);
                    return exit_code_of(c, p, exit_code_from, &id);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(0)
}

/// The exit code `up` returns: that of `--exit-code-from`'s container, else of the
/// container that ended the run.
fn exit_code_of(c: &Client, p: &Project, service: Option<&str>, ended: &str) -> CmdResult {
    let id = match service {
        Some(svc) => containers(c, &p.name, &[svc.to_string()], true, false)?
            .first()
            .and_then(|ct| ct["Id"].as_str().map(str::to_string))
            .unwrap_or_else(|| ended.to_string()),
        None => ended.to_string(),
    };
    let info = c.get(&format!("/containers/{id}/json")).map_err(api)?;
    Ok(info["State"]["ExitCode"].as_i64().unwrap_or(0) as i32)
}

fn stop_all(c: &Client, p: &Project, list: &[Value], timeout: Option<u64>) {
    std::thread::scope(|scope| {
        for ct in list {
            scope.spawn(move || {
                let name = name_of(ct);
                let svc = ct["Labels"][label::SERVICE].as_str().unwrap_or("");
                if ct["State"] == "running"
                    && let Err(e) = run_hooks(c, p, svc, &name, "pre_stop")
                {
                    // Taking the project down goes on.
                    eprintln!("{}", e.message);
                }
                say("Container", &name, "Stopping");
                let t = timeout.map_or(String::new(), |t| format!("?t={t}"));
                let _ = c.post(&format!("/containers/{}/stop{t}", enc_path(&name)), None);
                say("Container", &name, "Stopped");
            });
        }
    });
}

fn remove_orphans(c: &Client, p: &Project) -> Result<(), CliError> {
    for ct in containers(c, &p.name, &[], true, true)? {
        let svc = ct["Labels"][label::SERVICE].as_str().unwrap_or("");
        if !p.services.contains_key(svc) && !p.disabled.contains_key(svc) {
            let name = name_of(&ct);
            say("Container", &name, "Removing");
            c.json(
                "DELETE",
                &format!("/containers/{}?force=1&v=1", enc_path(&name)),
                None,
            )
            .map_err(api)?;
            say("Container", &name, "Removed");
        }
    }
    Ok(())
}

/// `down`.
pub fn down(c: &Client, p: &Project, a: &DownArgs) -> CmdResult {
    let all = containers(c, &p.name, &[], true, true)?;
    let (ours, orphans): (Vec<Value>, Vec<Value>) = all.into_iter().partition(|ct| {
        let svc = ct["Labels"][label::SERVICE].as_str().unwrap_or("");
        p.services.contains_key(svc) || p.disabled.contains_key(svc)
    });
    let mut gone = ours;
    if a.remove_orphans {
        gone.extend(orphans);
    }
    let running: Vec<Value> = gone
        .iter()
        .filter(|ct| ct["State"] == "running")
        .cloned()
        .collect();
    stop_all(c, p, &running, a.timeout);
    for ct in &gone {
        let name = name_of(ct);
        say("Container", &name, "Removing");
        c.json(
            "DELETE",
            &format!(
                "/containers/{}?force=1&v={}",
                enc_path(&name),
                u8::from(a.volumes)
            ),
            None,
        )
        .map_err(api)?;
        say("Container", &name, "Removed");
    }
    remove_declared(c, "Network", "networks", &p.networks)?;
    if a.volumes {
        remove_declared(c, "Volume", "volumes", &p.volumes)?;
    }
    if let Some(which) = &a.rmi {
        if which != "all" && which != "local" {
            return Err(CliError::new(format!(
                "invalid --rmi {which:?}: use local or all"
            )));
        }
        for (svc, s) in &p.services {
            if which == "local" && s["image"].is_string() {
                continue;
            }
            let image = image_of(p, svc, s);
            if c.json("DELETE", &format!("/images/{}", enc_path(&image)), None)
                .is_ok()
            {
                say("Image", &image, "Removed");
            }
        }
    }
    Ok(0)
}

/// `run`: a one-off container of a service, its dependencies started first.
pub fn run(c: &Client, p: &Project, a: RunArgs) -> CmdResult {
    let svc = a.service.clone();
    if !p.services.contains_key(&svc) {
        return Err(CliError::new(format!("no such service: {svc}")));
    }
    check_services(p, std::slice::from_ref(&svc))?;
    if !a.no_deps {
        let deps = with_dependencies(p, std::slice::from_ref(&svc), false)?;
        let deps: Vec<String> = deps.into_iter().filter(|d| *d != svc).collect();
        if !deps.is_empty() {
            let up_args: UpArgs = parse_as("up", {
                let mut v = vec!["-d".to_string()];
                v.extend(deps.iter().cloned());
                v
            })?;
            up(c, p, &up_args)?;
        }
        wait_for_dependencies(c, p, &svc)?;
    }
    ensure_networks(c, p)?;
    ensure_volumes(c, p)?;
    ensure_image(c, p, &svc, false, false)?;
    let mut req = body(p, &svc, 1, true)?;
    let tty = !a.no_tty && crate::stream::stdin_is_terminal();
    req["Tty"] = json!(tty);
    req["OpenStdin"] = json!(a.interactive);
    req["AttachStdin"] = json!(a.interactive && !a.detach);
    req["AttachStdout"] = json!(!a.detach);
    req["AttachStderr"] = json!(!a.detach);
    req["StdinOnce"] = json!(a.interactive && !a.detach);
    req["HostConfig"]["AutoRemove"] = json!(a.rm);
    req["HostConfig"]["RestartPolicy"] = json!({"Name": "no"});
    if !a.service_ports {
        req["HostConfig"]["PortBindings"] = json!({});
    }
    if !a.command.is_empty() {
        req["Cmd"] = json!(a.command);
    }
    if let Some(e) = &a.entrypoint {
        req["Entrypoint"] = json!(berth_compose::normalize::shell_words(e).map_err(CliError::new)?);
    }
    if let Some(u) = &a.user {
        req["User"] = json!(u);
    }
    if let Some(w) = &a.workdir {
        req["WorkingDir"] = json!(w);
    }
    let env = req["Env"].as_array_mut().expect("Env is a list");
    for e in &a.env {
        env.push(json!(e));
    }
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        req["Labels"][k] = json!(v);
    }
    let suffix = berth_types::id::random_hex(6).map_err(|e| CliError::new(e.to_string()))?;
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{svc}-run-{suffix}", p.name));
    let created = c
        .post(
            &format!("/containers/create?name={}", enc(&name)),
            Some(&req),
        )
        .map_err(api)?;
    let id = created["Id"].as_str().unwrap_or("").to_string();
    complete_created(c, p, &svc, &id)?;
    if a.detach {
        c.post(&format!("/containers/{id}/start"), None)
            .map_err(api)?;
        println!("{name}");
        return Ok(0);
    }
    let mut argv = vec!["-a".to_string()];
    if a.interactive {
        argv.push("-i".into());
    }
    argv.push(id);
    crate::containers::start(c, parse_as("start", argv)?)
}

/// `build`.
pub fn build(c: &Client, p: &Project, a: &BuildArgs) -> CmdResult {
    for svc in selected(p, &a.services)? {
        if p.services[&svc]["build"].is_object() {
            build_service(c, p, &svc, a)?;
        }
    }
    Ok(0)
}

/// `pull`: the images of services that are not built.
pub fn pull(c: &Client, p: &Project, a: &ServicesArgs) -> CmdResult {
    for svc in selected(p, &a.services)? {
        let s = &p.services[&svc];
        if let Some(image) = s["image"].as_str()
            && !s["build"].is_object()
        {
            say("Image", image, "Pulling");
            crate::registry::pull_for_run(c, image)?;
            say("Image", image, "Pulled");
        }
    }
    Ok(0)
}

/// `push`: the images of services that are built and named.
pub fn push(c: &Client, p: &Project, a: &ServicesArgs) -> CmdResult {
    for svc in selected(p, &a.services)? {
        let s = &p.services[&svc];
        if let (Some(image), true) = (s["image"].as_str(), s["build"].is_object()) {
            let code = crate::registry::push(c, parse_as("push", vec![image.to_string()])?)?;
            if code != 0 {
                return Ok(code);
            }
        }
    }
    Ok(0)
}

/// `start`: existing containers, dependencies first.
pub fn start(c: &Client, p: &Project, a: &ServicesArgs) -> CmdResult {
    let want = selected(p, &a.services)?;
    for wave in p.start_order().map_err(|e| CliError::new(e.to_string()))? {
        for svc in wave.iter().filter(|s| want.contains(s)) {
            wait_for_dependencies(c, p, svc)?;
            let ids: Vec<String> = containers(c, &p.name, std::slice::from_ref(svc), true, false)?
                .iter()
                .filter_map(|ct| ct["Id"].as_str().map(str::to_string))
                .collect();
            start_ids(c, p, &ids)?;
        }
    }
    Ok(0)
}

/// `stop` and `restart`: dependents first.
pub fn stop(c: &Client, p: &Project, a: &StopArgs, action: &str) -> CmdResult {
    let want = selected(p, &a.services)?;
    let mut waves = p.start_order().map_err(|e| CliError::new(e.to_string()))?;
    if action == "stop" {
        waves.reverse();
    }
    let (doing, done) = if action == "stop" {
        ("Stopping", "Stopped")
    } else {
        ("Restarting", "Started")
    };
    for wave in waves {
        for svc in wave.iter().filter(|s| want.contains(s)) {
            for ct in containers(
                c,
                &p.name,
                std::slice::from_ref(svc),
                action == "restart",
                false,
            )? {
                let name = name_of(&ct);
                if ct["State"] == "running" {
                    run_hooks(c, p, svc, &name, "pre_stop")?;
                }
                say("Container", &name, doing);
                let t = a.timeout.map_or(String::new(), |t| format!("?t={t}"));
                c.post(
                    &format!("/containers/{}/{action}{t}", enc_path(&name)),
                    None,
                )
                .map_err(api)?;
                if action == "restart" {
                    run_hooks(c, p, svc, &name, "post_start")?;
                }
                say("Container", &name, done);
            }
        }
    }
    Ok(0)
}

/// `rm`: stopped containers of the services.
pub fn rm(c: &Client, p: &Project, a: &RmArgs) -> CmdResult {
    let list = containers(c, &p.name, &selected(p, &a.services)?, true, false)?;
    if a.stop {
        let running: Vec<Value> = list
            .iter()
            .filter(|ct| ct["State"] == "running")
            .cloned()
            .collect();
        stop_all(c, p, &running, None);
    }
    let stopped: Vec<String> = containers(c, &p.name, &selected(p, &a.services)?, true, false)?
        .iter()
        .filter(|ct| ct["State"] != "running" && ct["State"] != "paused")
        .map(name_of)
        .collect();
    if stopped.is_empty() {
        eprintln!("No stopped containers");
        return Ok(0);
    }
    if !a.force && !crate::confirm(&format!("Going to remove {}", stopped.join(", "))) {
        return Ok(0);
    }
    for name in stopped {
        say("Container", &name, "Removing");
        c.json(
            "DELETE",
            &format!("/containers/{}?v={}", enc_path(&name), u8::from(a.volumes)),
            None,
        )
        .map_err(api)?;
        say("Container", &name, "Removed");
    }
    Ok(0)
}

/// `kill`.
pub fn kill(c: &Client, p: &Project, a: &KillArgs) -> CmdResult {
    for ct in containers(c, &p.name, &selected(p, &a.services)?, false, false)? {
        let name = name_of(&ct);
        say("Container", &name, "Killing");
        c.post(
            &format!(
                "/containers/{}/kill?signal={}",
                enc_path(&name),
                enc(&a.signal)
            ),
            None,
        )
        .map_err(api)?;
        say("Container", &name, "Killed");
    }
    Ok(0)
}

/// `pause` and `unpause`.
pub fn simple(c: &Client, p: &Project, a: &ServicesArgs, action: &str) -> CmdResult {
    let done = if action == "pause" {
        "Paused"
    } else {
        "Unpaused"
    };
    for ct in containers(c, &p.name, &selected(p, &a.services)?, false, false)? {
        let name = name_of(&ct);
        c.post(&format!("/containers/{}/{action}", enc_path(&name)), None)
            .map_err(api)?;
        say("Container", &name, done);
    }
    Ok(0)
}
