#![recursion_limit = "256"]
//! `berthd`: the Berth daemon. It reads its flags and config file, builds the engine's
//! services, and serves the Docker Engine API on its sockets until SIGINT or SIGTERM.
//! All wiring of the engine's parts happens in [`build_backends`], in one place.

mod build_context;
mod config;
mod containers;
mod images;
mod listen;
mod networks;
mod pidfile;
mod system;
mod volumes;

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

use crate::config::{Config, Flags};

fn main() {
    let flags = Flags::parse();
    let config = match Config::load(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            std::process::exit(1);
        }
    };
    init_logging(&config.log_level);
    if let Err(e) = run(config) {
        tracing::error!("{e:#}");
        eprintln!("berthd: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

/// Builds every service the API needs from the configuration: the one place where the
/// engine's parts are wired together.
fn build_backends(config: &Config) -> Result<berth_api::Backends> {
    let content = berth_content::Store::open(config.data_root.join("content"))?;
    let db_path = config.data_root.join("metadata.redb");
    let db = Arc::new(berth_metadata::Db::open(&db_path)?);
    let images = berth_images::ImageStore::new(content.clone(), db.clone());
    let distribution = berth_distribution::Distribution::new(
        images.clone(),
        content.clone(),
        berth_snapshots::Snapshotter::open(config.data_root.join("snapshots"))?,
        db.clone(),
        config.registry.clone(),
    );
    let shim = std::env::current_exe()
        .context("locate berthd")?
        .with_file_name("berth-shim");
    let events = berth_events::Events::open(
        &config.data_root.join("events"),
        berth_events::DEFAULT_JOURNAL_BYTES,
    )
    .context("open the event journal")?;
    let network = berth_network::NetworkService::open(
        db.clone(),
        &config.exec_root,
        config.network.clone(),
        events.clone(),
    )?;
    let volumes = berth_volumes::VolumeService::new(db.clone(), &config.data_root, events.clone())?;
    let parts = berth_containers::Parts {
        db: db.clone(),
        images: images.clone(),
        content,
        network: network.clone(),
        volumes: volumes.clone(),
        events: events.clone(),
    };
    let containers =
        berth_containers::ContainerService::new(parts, &config.data_root, &config.exec_root, shim)?
            .with_log_defaults(config.container_logs.clone())
            .with_init_path(config.init_path.clone());
    // Containers outlive berthd: pick up what happened while it was away.
    containers.recover()?;
    containers.spawn_exit_monitor();
    containers.spawn_sampler();
    let image_service = Arc::new(images::ImageService::new(
        images.clone(),
        containers.clone(),
        distribution,
        db.clone(),
        config.data_root.join("tmp"),
    ));
    image_service.collect_garbage();
    Ok(berth_api::Backends {
        system: Arc::new(system::HostSystem::new(
            config,
            images.clone(),
            containers.clone(),
            volumes.clone(),
        )),
        images: image_service,
        networks: Arc::new(networks::Networks::new(network, containers.clone())),
        volumes: Arc::new(volumes::Volumes::new(volumes, containers.clone())),
        containers: Arc::new(containers::Containers::new(containers)),
        events,
    })
}

fn run(config: Config) -> Result<()> {
    for dir in [&config.data_root, &config.exec_root] {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let _pid = pidfile::PidFile::claim(&config.pidfile)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start async runtime")?;
    let result = runtime.block_on(serve(config));
    // Blocking tasks (a client's wait) must not hold the exit: containers live on anyway.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn serve(config: Config) -> Result<()> {
    // Installed before the sockets exist: a client that sees the socket may signal us.
    let shutdown = shutdown_signal()?;
    let backends = build_backends(&config)?;
    let mut listeners = Vec::new();
    for host in &config.hosts {
        listeners.push(listen::bind(host).await?);
    }
    let mut servers = tokio::task::JoinSet::new();
    for l in listeners {
        let app = berth_api::app(backends.clone());
        tracing::info!(socket = %l.path.display(), "API listening");
        servers.spawn(async move {
            let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
            axum::serve(l, service).await
        });
    }
    shutdown.await;
    tracing::info!("shutting down");
    servers.abort_all();
    for host in &config.hosts {
        listen::remove_socket(host);
    }
    Ok(())
}

/// Resolves at the first SIGTERM or SIGINT; the handlers are in place when this returns.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
