//! `berth`: the docker CLI's commands, flags, output and exit codes, talking to berthd
//! through the Engine API only.
//!
//! The daemon is found through `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then
//! `unix:///run/berth/berth.sock`. Exit codes follow docker's: 125 when the daemon
//! refuses `run`/`create`, 126 when the command cannot be invoked, 127 when it is not
//! found, otherwise the container's own code; other commands exit 1 on errors.

mod build;
mod client;
mod compose;
mod containers;
mod events;
mod files;
mod format;
mod health;
mod images;
mod network;
mod registry;
mod resources;
mod stats;
mod stream;
mod system;
mod volume;

use clap::{Parser, Subcommand};

use client::{Client, ClientError};

/// An error as the CLI reports it: one line on stderr and an exit code.
#[derive(Debug)]
pub struct CliError {
    /// The line to print.
    pub message: String,
    /// The exit code.
    pub code: i32,
}

impl CliError {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::new(e.to_string())
    }
}

/// What a command returns: its exit code.
pub type CmdResult = Result<i32, CliError>;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A fast, crash-proof container engine that speaks Docker's interfaces",
    disable_help_subcommand = true
)]
struct Cli {
    /// Daemon socket to connect to (unix:///path)
    #[arg(short = 'H', long = "host")]
    host: Option<String>,
    /// Enable debug mode (accepted for docker compatibility)
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    /// Set the logging level (accepted for docker compatibility)
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and run a new container from an image
    Run(containers::RunArgs),
    /// Create a new container
    Create(containers::RunArgs),
    /// Start one or more stopped containers
    Start(containers::StartArgs),
    /// Stop one or more running containers
    Stop(containers::StopArgs),
    /// Restart one or more containers
    Restart(containers::StopArgs),
    /// Kill one or more running containers
    Kill(containers::KillArgs),
    /// Remove one or more containers
    Rm(containers::RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(containers::NamesArgs),
    /// Rename a container
    Rename(containers::RenameArgs),
    /// Pause all processes within one or more containers
    Pause(containers::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(containers::NamesArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// Display the running processes of a container
    Top(containers::TopArgs),
    /// Fetch the logs of a container
    Logs(containers::LogsArgs),
    /// Execute a command in a running container
    Exec(containers::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(containers::AttachArgs),
    /// Update configuration of one or more containers
    Update(containers::UpdateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(containers::DiffArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(images::ImportArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(files::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(files::LoadArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// Log in to a registry
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Show the Berth version information
    Version,
    /// Display system-wide information
    Info,
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Copy files/folders between a container and the local filesystem
    Cp(files::CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(files::ExportArgs),
    /// Create a new image from a container's changes
    Commit(files::CommitArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Define and run multi-container applications (the Compose Specification)
    Compose(compose::ComposeArgs),
    /// Manage Berth
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Show docker disk usage
    Df(system::DfArgs),
    /// Remove unused data
    Prune(system::PruneArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Display system-wide information
    Info,
}

#[derive(Subcommand)]
enum ContainerCommand {
    /// Create and run a new container from an image
    Run(containers::RunArgs),
    /// Create a new container
    Create(containers::RunArgs),
    /// Start one or more stopped containers
    Start(containers::StartArgs),
    /// Stop one or more running containers
    Stop(containers::StopArgs),
    /// Restart one or more containers
    Restart(containers::StopArgs),
    /// Kill one or more running containers
    Kill(containers::KillArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(containers::RmArgs),
    /// Block until one or more containers stop
    Wait(containers::NamesArgs),
    /// Rename a container
    Rename(containers::RenameArgs),
    /// Pause all processes within one or more containers
    Pause(containers::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(containers::NamesArgs),
    /// List containers
    #[command(alias = "ps", alias = "list")]
    Ls(containers::PsArgs),
    /// Display the running processes of a container
    Top(containers::TopArgs),
    /// Fetch the logs of a container
    Logs(containers::LogsArgs),
    /// Execute a command in a running container
    Exec(containers::ExecArgs),
    /// Attach to a running container
    Attach(containers::AttachArgs),
    /// Update configuration of one or more containers
    Update(containers::UpdateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(containers::DiffArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Remove all stopped containers
    Prune(containers::PruneArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(images::ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(images::ImportArgs),
    /// Download an image from a registry
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(files::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(files::LoadArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(images::RmiArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove unused images
    Prune(images::PruneArgs),
}

/// `inspect` flags.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    format: Option<String>,
    /// Only inspect objects of the given type (container, image)
    #[arg(long = "type")]
    kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long = "size")]
    size: bool,
    /// Names or ids
    #[arg(required = true)]
    names: Vec<String>,
}

fn host(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///run/berth/berth.sock".into())
}

fn main() {
    // Like other Unix tools (and the docker CLI): `berth ps | head` ends quietly when
    // `head` is done, instead of Rust's ignored SIGPIPE turning into a panic on print.
    // SAFETY: installing the default disposition for one signal touches no memory.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // Help and version are not errors; bad flags exit 125 like the docker CLI's.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            std::process::exit(125);
        }
    };
    let _ = (cli.debug, &cli.log_level);
    let client = match Client::new(&host(cli.host)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth: {e}");
            std::process::exit(1);
        }
    };
    let result = dispatch(&client, cli.command);
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("{}", e.message);
            }
            std::process::exit(e.code);
        }
    }
}

fn dispatch(c: &Client, cmd: Command) -> CmdResult {
    use containers as ct;
    match cmd {
        Command::Run(a) => ct::run(c, a),
        Command::Create(a) => ct::create_cmd(c, a),
        Command::Start(a) => ct::start(c, a),
        Command::Stop(a) => ct::stop(c, a, "stop"),
        Command::Restart(a) => ct::stop(c, a, "restart"),
        Command::Kill(a) => ct::kill(c, a),
        Command::Rm(a) => ct::rm(c, a),
        Command::Wait(a) => ct::wait(c, a),
        Command::Rename(a) => ct::rename(c, a),
        Command::Pause(a) => ct::simple(c, a, "pause"),
        Command::Unpause(a) => ct::simple(c, a, "unpause"),
        Command::Ps(a) => ct::ps(c, a),
        Command::Top(a) => ct::top(c, a),
        Command::Logs(a) => ct::logs(c, a),
        Command::Exec(a) => ct::exec(c, a),
        Command::Attach(a) => ct::attach(c, a),
        Command::Update(a) => ct::update(c, a),
        Command::Diff(a) => ct::diff(c, a),
        Command::Inspect(a) => inspect(c, a, None),
        Command::Images(a) => images::list(c, a),
        Command::Import(a) => images::import(c, a),
        Command::Build(a) => build::build(c, a),
        Command::Pull(a) => registry::pull(c, a),
        Command::Push(a) => registry::push(c, a),
        Command::Save(a) => files::save(c, a),
        Command::Load(a) => files::load(c, a),
        Command::History(a) => images::history(c, a),
        Command::Login(a) => registry::login(c, a),
        Command::Logout(a) => registry::logout(c, a),
        Command::Tag(a) => images::tag(c, a),
        Command::Rmi(a) => images::rmi(c, a),
        Command::Version => version(c),
        Command::Info => info(c),
        Command::Container(sub) => match sub {
            ContainerCommand::Run(a) => ct::run(c, a),
            ContainerCommand::Create(a) => ct::create_cmd(c, a),
            ContainerCommand::Start(a) => ct::start(c, a),
            ContainerCommand::Stop(a) => ct::stop(c, a, "stop"),
            ContainerCommand::Restart(a) => ct::stop(c, a, "restart"),
            ContainerCommand::Kill(a) => ct::kill(c, a),
            ContainerCommand::Rm(a) => ct::rm(c, a),
            ContainerCommand::Wait(a) => ct::wait(c, a),
            ContainerCommand::Rename(a) => ct::rename(c, a),
            ContainerCommand::Pause(a) => ct::simple(c, a, "pause"),
            ContainerCommand::Unpause(a) => ct::simple(c, a, "unpause"),
            ContainerCommand::Ls(a) => ct::ps(c, a),
            ContainerCommand::Top(a) => ct::top(c, a),
            ContainerCommand::Logs(a) => ct::logs(c, a),
            ContainerCommand::Exec(a) => ct::exec(c, a),
            ContainerCommand::Attach(a) => ct::attach(c, a),
            ContainerCommand::Update(a) => ct::update(c, a),
            ContainerCommand::Diff(a) => ct::diff(c, a),
            ContainerCommand::Inspect(a) => inspect(c, a, Some("container")),
            ContainerCommand::Prune(a) => ct::prune(c, a),
        },
        Command::Network(sub) => network::dispatch(c, sub),
        Command::Port(a) => network::port(c, a),
        Command::Volume(sub) => volume::dispatch(c, sub),
        Command::Cp(a) => files::cp(c, a),
        Command::Export(a) => files::export(c, a),
        Command::Commit(a) => files::commit(c, a),
        Command::Stats(a) => stats::stats(c, a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => events::events(c, a),
        Command::Compose(a) => compose::compose(c, a),
        Command::System(SystemCommand::Df(a)) => system::df(c, a),
        Command::System(SystemCommand::Prune(a)) => system::prune(c, a),
        Command::System(SystemCommand::Info) => info(c),
        Command::Image(sub) => match sub {
            ImageCommand::Ls(a) => images::list(c, a),
            ImageCommand::Import(a) => images::import(c, a),
            ImageCommand::Build(a) => build::build(c, a),
            ImageCommand::Pull(a) => registry::pull(c, a),
            ImageCommand::Push(a) => registry::push(c, a),
            ImageCommand::Save(a) => files::save(c, a),
            ImageCommand::Load(a) => files::load(c, a),
            ImageCommand::History(a) => images::history(c, a),
            ImageCommand::Tag(a) => images::tag(c, a),
            ImageCommand::Rm(a) => images::rmi(c, a),
            ImageCommand::Inspect(a) => inspect(c, a, Some("image")),
            ImageCommand::Prune(a) => images::prune(c, a),
        },
    }
}

/// `inspect`: containers first, then images (as docker does without `--type`); prints a
/// JSON array indented like Go's, or the template per object.
fn inspect(c: &Client, a: InspectArgs, only: Option<&str>) -> CmdResult {
    let kind = a.kind.as_deref().or(only);
    let mut found = Vec::new();
    let mut code = 0;
    for name in &a.names {
        let mut result = Err(ClientError::Protocol(String::new()));
        if kind.is_none_or(|k| k == "container") {
            let q = if a.size { "?size=1" } else { "" };
            result = c.get(&format!("/containers/{}/json{q}", client::enc_path(name)));
        }
        if result.is_err() && kind.is_none_or(|k| k == "image") {
            result = c.get(&format!("/images/{}/json", client::enc_path(name)));
        }
        match result {
            Ok(v) => found.push(v),
            Err(_) => {
                let what = match kind {
                    Some("container") => "container",
                    Some("image") => "image",
                    _ => "object",
                };
                eprintln!("Error: No such {what}: {name}");
                code = 1;
            }
        }
    }
    print_inspected(&found, a.format.as_deref())?;
    Ok(code)
}

/// Prints inspected objects: the template per object, or a JSON array indented like Go's.
pub fn print_inspected(found: &[serde_json::Value], format: Option<&str>) -> Result<(), CliError> {
    match format {
        Some(f) if !f.is_empty() => {
            for v in found {
                let line = format::render(f, v).map_err(CliError::new)?;
                println!("{line}");
            }
        }
        _ => println!("{}", go_indent(&serde_json::Value::from(found.to_vec()))),
    }
    Ok(())
}

/// Asks `warning` + docker's "Are you sure" question on stderr; true for y/Y.
pub fn confirm(warning: &str) -> bool {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    answer.trim().eq_ignore_ascii_case("y")
}

/// JSON indented with 4 spaces, as Go's `json.MarshalIndent(v, "", "    ")`.
fn go_indent(v: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8(out).unwrap_or_default()
}

fn version(c: &Client) -> CmdResult {
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    let v = c.get("/version")?;
    println!();
    println!("Server: Berth Engine");
    println!(" Engine:");
    println!(
        "  Version:          {}",
        v["Version"].as_str().unwrap_or("")
    );
    println!(
        "  API version:      {} (minimum version {})",
        v["ApiVersion"].as_str().unwrap_or(""),
        v["MinAPIVersion"].as_str().unwrap_or("")
    );
    println!(
        "  Go version:       {}",
        v["GoVersion"].as_str().unwrap_or("n/a")
    );
    println!(
        "  OS/Arch:          {}/{}",
        v["Os"].as_str().unwrap_or(""),
        v["Arch"].as_str().unwrap_or("")
    );
    Ok(0)
}

fn info(c: &Client) -> CmdResult {
    let i = c.get("/info")?;
    let s = |k: &str| i[k].as_str().unwrap_or("").to_string();
    let n = |k: &str| i[k].as_i64().unwrap_or(0);
    println!("Server:");
    println!(" Containers: {}", n("Containers"));
    println!("  Running: {}", n("ContainersRunning"));
    println!("  Paused: {}", n("ContainersPaused"));
    println!("  Stopped: {}", n("ContainersStopped"));
    println!(" Images: {}", n("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", n("NCPU"));
    println!(
        " Total Memory: {}",
        format::human_size(n("MemTotal") as f64)
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    Ok(0)
}
