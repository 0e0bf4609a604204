//! `berth-runtime`: a runc-compatible OCI runtime command over the `berth-runtime` library,
//! so containerd, the OCI runtime-tools and people can drive Berth's runtime like runc.
//! It only parses flags, prints, and handles foreground stdio; the library does the work.

mod exec;
mod info;
mod lifecycle;
mod log;
mod signals;
mod tty;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// runc-compatible OCI runtime of Berth
#[derive(Parser, Debug)]
#[command(name = "berth-runtime", version = VERSION, about, disable_version_flag = true)]
struct Cli {
    /// Root directory for container state
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Log file (errors are also written to stderr)
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Log debug information
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd for cgroups (not supported: pass cgroup paths)
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; ignored
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    /// Print version
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0");

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container (its process waits for `start`)
    Create(lifecycle::CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Create and start a container, then wait for it (unless --detach)
    Run(lifecycle::RunArgs),
    /// Print a container's state as JSON
    State { id: String },
    /// Send a signal to a container's init (or all its processes)
    Kill {
        /// Send the signal to every process of the container
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete containers
    Delete {
        /// Kill the container first if it is running
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Run a new process in a running container
    Exec(exec::ExecArgs),
    /// List containers
    List(info::ListArgs),
    /// List the processes of a container
    Ps(info::PsArgs),
    /// Freeze a container's processes
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Change a container's resource limits
    Update(update::UpdateArgs),
    /// Print container statistics
    Events(info::EventsArgs),
    /// Print the features this runtime supports, as JSON
    Features,
    /// Write a default config.json
    Spec(info::SpecArgs),
    /// Not supported
    Checkpoint { id: String },
    /// Not supported
    Restore { id: String },
}

fn main() {
    let cli = Cli::parse();
    let logger = log::Logger::new(cli.log.clone(), &cli.log_format, cli.debug);
    if cli.version {
        println!("berth-runtime version {VERSION}");
        return;
    }
    let Some(command) = cli.command else {
        eprintln!("berth-runtime: no command given; see --help");
        std::process::exit(1);
    };
    let spawns_containers = matches!(
        command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    );
    if spawns_containers && !berth_runtime::selfexe::is_protected() {
        // Never let container code see a writable host binary behind /proc/self/exe.
        let err = berth_runtime::selfexe::reexec_protected(&cli.root.join(".exe-layer"));
        logger.error(&format!(
            "re-execute from a write-protected view of berth-runtime: {err}"
        ));
        std::process::exit(1);
    }
    if cli.systemd_cgroup {
        logger.error("--systemd-cgroup is not supported: pass linux.cgroupsPath as a path");
        std::process::exit(1);
    }
    let result = run(command, &cli.root);
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logger.error(&format!("{e:#}"));
            std::process::exit(1);
        }
    }
}

fn run(command: Command, root: &std::path::Path) -> anyhow::Result<i32> {
    let root = berth_runtime::StateRoot::open(root)?;
    match command {
        Command::Create(a) => lifecycle::create(&root, a).map(|()| 0),
        Command::Start { id } => lifecycle::start(&root, &id).map(|()| 0),
        Command::Run(a) => lifecycle::run(&root, a),
        Command::State { id } => info::state(&root, &id).map(|()| 0),
        Command::Kill { all, id, signal } => lifecycle::kill(&root, &id, &signal, all).map(|()| 0),
        Command::Delete { force, ids } => lifecycle::delete(&root, &ids, force).map(|()| 0),
        Command::Exec(a) => exec::exec(&root, a),
        Command::List(a) => info::list(&root, a).map(|()| 0),
        Command::Ps(a) => info::ps(&root, a),
        Command::Pause { id } => Ok(berth_runtime::Container::load(&root, &id)?
            .pause()
            .map(|()| 0)?),
        Command::Resume { id } => Ok(berth_runtime::Container::load(&root, &id)?
            .resume()
            .map(|()| 0)?),
        Command::Update(a) => update::update(&root, a).map(|()| 0),
        Command::Events(a) => info::events(&root, a).map(|()| 0),
        Command::Features => info::features().map(|()| 0),
        Command::Spec(a) => info::spec(a).map(|()| 0),
        Command::Checkpoint { .. } | Command::Restore { .. } => {
            anyhow::bail!("checkpoint and restore are not supported by berth-runtime")
        }
    }
}
