//! `berth compose`: the Compose Specification on the client side, as `docker compose`
//! does it: the project is loaded by `berth-compose` and turned into Engine API calls,
//! with docker compose's labels (`com.docker.compose.project`, `.service`,
//! `.container-number`, `.oneoff`, `.config-hash`...) so either tool sees the other's
//! projects.

mod create;
mod passthrough;
mod show;
mod up;
mod watch;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::client::{Client, enc};
use crate::{CliError, CmdResult};

/// Flags every `compose` subcommand takes.
#[derive(clap::Args)]
pub struct ComposeArgs {
    /// Compose configuration files
    #[arg(short = 'f', long = "file")]
    file: Vec<String>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Specify an alternate environment file
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Specify a profile to enable
    #[arg(long = "profile")]
    profile: Vec<String>,
    /// Specify an alternate working directory (default: the path of the first Compose file)
    #[arg(long = "project-directory")]
    project_directory: Option<String>,
    #[command(subcommand)]
    command: ComposeCommand,
}

/// The subcommands.
#[derive(clap::Subcommand)]
pub enum ComposeCommand {
    /// Create and start containers
    Up(up::UpArgs),
    /// Stop and remove containers, networks
    Down(up::DownArgs),
    /// List containers
    Ps(show::PsArgs),
    /// View output from containers
    Logs(show::LogsArgs),
    /// Execute a command in a running container
    Exec(show::ExecArgs),
    /// Run a one-off command on a service
    Run(up::RunArgs),
    /// Build or rebuild services
    Build(up::BuildArgs),
    /// Pull service images
    Pull(up::ServicesArgs),
    /// Push service images
    Push(up::ServicesArgs),
    /// Parse, resolve and render compose file in canonical format
    Config(show::ConfigArgs),
    /// Start services
    Start(up::ServicesArgs),
    /// Stop services
    Stop(up::StopArgs),
    /// Restart service containers
    Restart(up::StopArgs),
    /// Removes stopped service containers
    Rm(up::RmArgs),
    /// Display the running processes
    Top(up::ServicesArgs),
    /// Print the public port for a port binding
    Port(show::PortArgs),
    /// List images used by the created containers
    Images(up::ServicesArgs),
    /// Force stop service containers
    Kill(up::KillArgs),
    /// Pause services
    Pause(up::ServicesArgs),
    /// Unpause services
    Unpause(up::ServicesArgs),
    /// List running compose projects
    Ls(show::LsArgs),
    /// Creates containers for a service
    Create(up::CreateArgs),
    /// Scale services
    Scale(up::ScaleArgs),
    /// Attach local standard input, output, and error streams to a service's running container
    Attach(passthrough::AttachArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(passthrough::CpArgs),
    /// Create a new image from a service container's changes
    Commit(passthrough::CommitArgs),
    /// Export a service container's filesystem as a tar archive
    Export(passthrough::ExportArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(passthrough::StatsArgs),
    /// Block until containers of all (or specified) services stop
    Wait(passthrough::WaitArgs),
    /// Receive real time events from containers
    Events(passthrough::EventsArgs),
    /// Show the Docker Compose version information
    Version(VersionArgs),
    /// Watch build context for service and rebuild/refresh containers when files are updated
    Watch(watch::WatchArgs),
}

/// `version` flags.
#[derive(clap::Args)]
pub struct VersionArgs {
    /// Shows only Compose's version number
    #[arg(long = "short")]
    short: bool,
    /// Format the output. Values: [pretty | json]
    #[arg(short = 'f', long = "format", default_value = "pretty")]
    format: String,
}

/// `version`: the docker compose release whose behaviour this follows (scripts compare
/// it), and Berth's own.
fn version(a: &VersionArgs) -> CmdResult {
    let v = format!("v{COMPOSE_VERSION}");
    match (a.short, a.format.as_str()) {
        (true, _) => println!("{COMPOSE_VERSION}"),
        (false, "json") => println!("{}", json!({"version": v})),
        (false, "pretty") => println!(
            "Berth Compose version {v} (berth {})",
            env!("CARGO_PKG_VERSION")
        ),
        (false, other) => {
            return Err(CliError::new(format!(
                "invalid format {other:?}: use pretty or json"
            )));
        }
    }
    Ok(0)
}

/// docker compose's labels.
pub(crate) mod label {
    pub const PROJECT: &str = "com.docker.compose.project";
    pub const SERVICE: &str = "com.docker.compose.service";
    pub const NUMBER: &str = "com.docker.compose.container-number";
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    pub const HASH: &str = "com.docker.compose.config-hash";
    pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
    pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
    pub const VERSION: &str = "com.docker.compose.version";
    pub const NETWORK: &str = "com.docker.compose.network";
    pub const VOLUME: &str = "com.docker.compose.volume";
    pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
}

/// The compose version these labels claim (the docker compose release whose behaviour
/// is followed).
pub(crate) const COMPOSE_VERSION: &str = "2.29.0";

/// `berth compose ...`.
pub fn compose(c: &Client, a: ComposeArgs) -> CmdResult {
    match &a.command {
        ComposeCommand::Ls(l) => return show::ls(c, l),
        ComposeCommand::Version(v) => return version(v),
        _ => {}
    }
    let project = load(&a)?;
    let p = &project;
    match a.command {
        ComposeCommand::Up(u) => up::up(c, p, &u),
        ComposeCommand::Down(d) => up::down(c, p, &d),
        ComposeCommand::Ps(s) => show::ps(c, p, &s),
        ComposeCommand::Logs(l) => show::logs(c, p, &l),
        ComposeCommand::Exec(e) => show::exec(c, p, e),
        ComposeCommand::Run(r) => up::run(c, p, r),
        ComposeCommand::Build(b) => up::build(c, p, &b),
        ComposeCommand::Pull(s) => up::pull(c, p, &s),
        ComposeCommand::Push(s) => up::push(c, p, &s),
        ComposeCommand::Config(cf) => show::config(p, &cf),
        ComposeCommand::Start(s) => up::start(c, p, &s),
        ComposeCommand::Stop(s) => up::stop(c, p, &s, "stop"),
        ComposeCommand::Restart(s) => up::stop(c, p, &s, "restart"),
        ComposeCommand::Rm(r) => up::rm(c, p, &r),
        ComposeCommand::Top(s) => show::top(c, p, &s),
        ComposeCommand::Port(s) => show::port(c, p, &s),
        ComposeCommand::Images(s) => show::images(c, p, &s),
        ComposeCommand::Kill(k) => up::kill(c, p, &k),
        ComposeCommand::Pause(s) => up::simple(c, p, &s, "pause"),
        ComposeCommand::Unpause(s) => up::simple(c, p, &s, "unpause"),
        ComposeCommand::Create(cr) => up::create(c, p, &cr),
        ComposeCommand::Scale(sc) => up::scale(c, p, &sc),
        ComposeCommand::Attach(at) => passthrough::attach(c, p, &at),
        ComposeCommand::Cp(cp) => passthrough::cp(c, p, &cp),
        ComposeCommand::Commit(cm) => passthrough::commit(c, p, &cm),
        ComposeCommand::Export(ex) => passthrough::export(c, p, &ex),
        ComposeCommand::Stats(st) => passthrough::stats(c, p, &st),
        ComposeCommand::Wait(w) => passthrough::wait(c, p, &w),
        ComposeCommand::Events(ev) => passthrough::events(c, p, &ev),
        ComposeCommand::Watch(w) => watch::watch(c, p, &w),
        ComposeCommand::Ls(_) | ComposeCommand::Version(_) => unreachable!("answered above"),
    }
}

fn load(a: &ComposeArgs) -> Result<berth_compose::Project, CliError> {
    let cwd =
        std::env::current_dir().map_err(|e| CliError::new(format!("current directory: {e}")))?;
    let opts = berth_compose::Options {
        files: a.file.iter().map(Into::into).collect(),
        working_dir: cwd,
        project_dir: a.project_directory.as_ref().map(Into::into),
        project_name: a.project_name.clone(),
        env_files: a.env_file.iter().map(Into::into).collect(),
        profiles: a.profile.clone(),
        environment: std::env::vars().collect::<BTreeMap<_, _>>(),
    };
    berth_compose::load(&opts).map_err(|e| CliError::new(e.to_string()))
}

/// The project's containers (one-offs too with `oneoff`), optionally of some services,
/// as `GET /containers/json` lists them.
pub(crate) fn containers(
    c: &Client,
    project: &str,
    services: &[String],
    all: bool,
    oneoff: bool,
) -> Result<Vec<Value>, CliError> {
    let mut labels = vec![format!("{}={project}", label::PROJECT)];
    if !oneoff {
        labels.push(format!("{}=False", label::ONEOFF));
    }
    let filters = json!({"label": labels});
    let list = c.get(&format!(
        "/containers/json?all={}&filters={}",
        u8::from(all),
        enc(&filters.to_string())
    ))?;
    let mut out: Vec<Value> = list
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|ct| {
            services.is_empty()
                || ct["Labels"][label::SERVICE]
                    .as_str()
                    .is_some_and(|s| services.iter().any(|x| x == s))
        })
        .collect();
    out.sort_by_key(name_of);
    Ok(out)
}

/// An inspected container's name without the slash.
pub(crate) fn inspected_name(info: &Value) -> String {
    info["Name"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

/// A listed container's name without the slash.
pub(crate) fn name_of(ct: &Value) -> String {
    ct["Names"][0]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

/// The services named, checked against the project (all when none are named).
pub(crate) fn selected(
    p: &berth_compose::Project,
    names: &[String],
) -> Result<Vec<String>, CliError> {
    for n in names {
        if !p.services.contains_key(n) {
            return Err(CliError::new(format!("no such service: {n}")));
        }
    }
    Ok(if names.is_empty() {
        p.services.keys().cloned().collect()
    } else {
        names.to_vec()
    })
}

/// A clap `Args` struct of another command, filled from an argument list (so compose
/// subcommands reuse the plain commands' behaviour).
pub(crate) fn parse_as<T: clap::Args + clap::FromArgMatches>(
    name: &'static str,
    argv: Vec<String>,
) -> Result<T, CliError> {
    let cmd = T::augment_args(clap::Command::new(name));
    let m = cmd
        .try_get_matches_from(std::iter::once(name.to_string()).chain(argv))
        .map_err(|e| CliError::new(e.to_string()))?;
    T::from_arg_matches(&m).map_err(|e| CliError::new(e.to_string()))
}
