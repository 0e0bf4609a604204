//! The pid file: claimed at start (refusing to run twice on the same root), removed at exit.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A claimed pid file, removed on drop.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes our pid, unless a live process already holds the file.
    pub fn claim(path: &Path) -> Result<Self> {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse::<i32>()
            && pid != std::process::id() as i32
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            bail!(
                "pid file {} names a running process ({pid}): is another berthd running? stop it or use other --pidfile and --exec-root",
                path.display()
            );
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        std::fs::write(path, std::process::id().to_string())
            .with_context(|| format!("write pid file {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
