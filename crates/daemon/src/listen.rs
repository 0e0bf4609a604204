//! API sockets: unix sockets, mode 0660, replacing a stale file but never a live socket.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tokio::net::UnixListener;

/// A bound API socket.
pub struct Listener {
    /// Socket path.
    pub path: PathBuf,
    /// The listening socket.
    pub listener: UnixListener,
}

/// Binds `path`. An existing socket that still answers belongs to another daemon: refuse.
pub async fn bind(path: &Path) -> Result<Listener> {
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!(
                "{} is in use by another daemon: stop it or choose another -H",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("remove stale socket {}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod 0660 {}", path.display()))?;
    Ok(Listener {
        path: path.to_path_buf(),
        listener,
    })
}

/// Accepted connections come wrapped for Docker's legacy hijack (see
/// `berth_api::legacy`).
impl axum::serve::Listener for Listener {
    type Io = berth_api::legacy::LegacyHijack<tokio::net::UnixStream>;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((io, addr)) => return (berth_api::legacy::LegacyHijack::new(io), addr),
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// Removes a socket file at shutdown.
pub fn remove_socket(path: &Path) {
    let _ = std::fs::remove_file(path);
}
