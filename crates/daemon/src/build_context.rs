//! The context of a build, wherever it comes from: a tar the client sends (plain or
//! compressed), a Git repository (`remote=` a Git URL, cloned with the `git` binary as
//! dockerd does), or an HTTP(S) URL serving a tar or a lone Dockerfile. All of them end
//! up extracted by the confined extractor into a scratch directory, each file hashed as
//! it is written (COPY's cache key needs those digests).

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use berth_api::ApiError;
use berth_types::remote::{self, GitRef};

/// A build's scratch directory, removed on drop together with its siblings named
/// `<dir>.*` (what COPY --from staged, a cloned repository, a download).
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A sibling path that goes with it.
    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.0.as_os_str().to_owned();
        name.push(format!(".{suffix}"));
        PathBuf::from(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let (Some(parent), Some(name)) = (self.0.parent(), self.0.file_name()) {
            let prefix = format!("{}.", name.to_string_lossy());
            for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let path = e.path();
                    if path.is_dir() {
                        let _ = std::fs::remove_dir_all(&path);
                    } else {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
    }
}

pub fn scratch_dir(base: &Path) -> Result<ScratchDir, ApiError> {
    let id = berth_types::id::random_hex(16)
        .map_err(|e| ApiError::internal(format!("random id: {e}")))?;
    let dir = base.join(format!("build-{id}"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("create {}: {e}", dir.display())))?;
    Ok(ScratchDir(dir))
}

/// Paths in the context and the digests of their contents.
pub type Digests = HashMap<PathBuf, String>;

/// Extracts a context tar (plain or compressed) into `dir`.
pub fn extract(context: &mut (dyn Read + Send), dir: &Path) -> Result<Digests, ApiError> {
    let reader = decompressed(context)?;
    let opts = berth_snapshots::unpack::Options {
        whiteouts: false,
        owner: None,
    };
    let root = std::fs::File::open(dir)
        .map_err(|e| ApiError::internal(format!("open {}: {e}", dir.display())))?;
    let mut hashing: HashMap<PathBuf, berth_build::FileHasher> = HashMap::new();
    let mut seen = |path: &Path, data: &[u8]| {
        if data.is_empty() {
            // A new entry for this path: what an earlier one wrote is gone.
            hashing.insert(path.to_path_buf(), berth_build::FileHasher::new());
        } else if let Some(h) = hashing.get_mut(path) {
            h.update(data);
        }
    };
    use std::os::fd::AsFd;
    berth_snapshots::unpack::unpack_observed(reader, root.as_fd(), opts, &mut seen)
        .map_err(|e| ApiError::bad_request(format!("invalid build context: {e}")))?;
    Ok(hashing.into_iter().map(|(p, h)| (p, h.hex())).collect())
}

/// The largest Dockerfile a URL may serve.
const MAX_REMOTE_DOCKERFILE: u64 = 8 << 20;

/// Downloads `url` to a file (the distribution client's HTTP, proxies and CAs).
pub type Download = dyn Fn(&str, &Path) -> Result<(), String>;

/// Fetches a remote context into `dir`; returns its digests and the Dockerfile's path in
/// it (a lone Dockerfile fetched from a URL becomes `Dockerfile`, whatever was asked).
pub fn fetch_remote(
    remote: &str,
    dir: &ScratchDir,
    dockerfile: String,
    download: &Download,
    cancel: &AtomicBool,
) -> Result<(Digests, String), ApiError> {
    if remote::is_git_url(remote) {
        let checkout = dir.sibling("git");
        let root = clone(&remote::git_ref(remote), &checkout, cancel)?;
        let tar = dir.sibling("tar");
        pack(&root, &tar)?;
        let mut file = open(&tar)?;
        return Ok((extract(&mut file, dir.path())?, dockerfile));
    }
    if !remote::is_url(remote) {
        return Err(ApiError::bad_request(format!(
            "unable to prepare context: {remote:?} is neither a Git repository nor an http(s) URL"
        )));
    }
    let fetched = dir.sibling("download");
    download(remote, &fetched).map_err(|e| {
        ApiError::bad_request(format!(
            "unable to prepare context: unable to download remote context {remote}: {e}"
        ))
    })?;
    let mut file = open(&fetched)?;
    if is_tar(&mut file)? {
        return Ok((extract(&mut file, dir.path())?, dockerfile));
    }
    // Anything else is the Dockerfile itself, with nothing beside it (and small: a
    // compressed "Dockerfile" must not fill the daemon's memory).
    let mut text = Vec::new();
    decompressed(&mut file)?
        .take(MAX_REMOTE_DOCKERFILE + 1)
        .read_to_end(&mut text)
        .map_err(internal)?;
    if text.len() as u64 > MAX_REMOTE_DOCKERFILE {
        return Err(ApiError::bad_request(format!(
            "unable to prepare context: {remote} is neither an archive nor a Dockerfile of at most {} MiB",
            MAX_REMOTE_DOCKERFILE >> 20
        )));
    }
    std::fs::write(dir.path().join("Dockerfile"), text).map_err(internal)?;
    Ok((Digests::new(), "Dockerfile".into()))
}

fn decompressed<'a>(r: impl Read + 'a) -> Result<Box<dyn Read + 'a>, ApiError> {
    berth_images::decompress(r).map_err(crate::images::api_error)
}

fn internal(e: std::io::Error) -> ApiError {
    ApiError::internal(e.to_string())
}

fn open(path: &Path) -> Result<std::fs::File, ApiError> {
    std::fs::File::open(path).map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))
}

/// Whether the (possibly compressed) file holds a tar: the `ustar` magic of its first
/// header. Leaves the file at its start.
fn is_tar(file: &mut std::fs::File) -> Result<bool, ApiError> {
    let mut head = Vec::with_capacity(512);
    decompressed(&mut *file)?
        .take(512)
        .read_to_end(&mut head)
        .map_err(internal)?;
    file.rewind().map_err(internal)?;
    Ok(head.len() == 512 && &head[257..262] == b"ustar")
}

/// Runs one git command in `dir`; its last error line on failure. A canceled build
/// ends it.
fn git(dir: &Path, args: &[&str], cancel: &AtomicBool) -> Result<(), String> {
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        // Never wait for a password on the daemon's terminal, never read the host's
        // user configuration, and reach only network transports: `file://`, a local
        // path or `ext::` would let a context name the daemon host's own files or
        // commands (CVE-2019-13139 in dockerd).
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_ALLOW_PROTOCOL", "https:http:git:ssh")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "git was not found in the system PATH: install git to build from a Git repository"
                    .to_string()
            }
            _ => format!("git: {e}"),
        })?;
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if cancel.load(Ordering::Relaxed) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(format!("git: {e}")),
        }
    };
    let text = reader.join().unwrap_or_default();
    match status {
        None => Err("canceled: the client went away".into()),
        Some(s) if s.success() => Ok(()),
        Some(_) => Err(text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("git failed")
            .trim()
            .to_string()),
    }
}

/// Clones the reference (the default branch when none is given) with its submodules,
/// shallowly where the server allows; returns the context directory in the checkout.
fn clone(g: &GitRef, checkout: &Path, cancel: &AtomicBool) -> Result<PathBuf, ApiError> {
    let failed = |e: String| {
        ApiError::bad_request(format!(
            "unable to prepare context: unable to 'git clone' {}: {e}",
            g.url
        ))
    };
    for part in [&g.reference, &g.subdir].into_iter().flatten() {
        if part.starts_with('-') {
            return Err(ApiError::bad_request(format!(
                "unable to prepare context: invalid Git reference or directory {part:?}"
            )));
        }
    }
    std::fs::create_dir_all(checkout).map_err(internal)?;
    let git = |args: &[&str]| git(checkout, args, cancel).map_err(failed);
    git(&["init", "-q"])?;
    let wanted = g.reference.as_deref().unwrap_or("HEAD");
    let shallow = git(&["fetch", "-q", "--depth", "1", "--", &g.url, wanted]);
    if let Err(e) = shallow {
        // A commit id the server does not serve shallowly: fetch every branch and tag,
        // and look for it there.
        let is_commit = wanted.len() >= 7 && wanted.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_commit {
            return Err(e);
        }
        git(&[
            "fetch",
            "-q",
            "--",
            &g.url,
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
        ])?;
        git(&["checkout", "-q", wanted, "--"])?;
    } else {
        git(&["checkout", "-q", "FETCH_HEAD", "--"])?;
    }
    if checkout.join(".gitmodules").exists() {
        git(&[
            "submodule",
            "update",
            "-q",
            "--init",
            "--recursive",
            "--depth",
            "1",
        ])?;
    }
    let Some(sub) = &g.subdir else {
        return Ok(checkout.to_path_buf());
    };
    let top = checkout.canonicalize().map_err(internal)?;
    match checkout.join(sub).canonicalize() {
        Ok(dir) if dir.starts_with(&top) && dir.is_dir() => Ok(dir),
        _ => Err(ApiError::bad_request(format!(
            "unable to prepare context: subdirectory {sub:?} not found in {}",
            g.url
        ))),
    }
}

/// Packs a directory into a tar file, symlinks as links (the extractor confines them).
fn pack(root: &Path, tar: &Path) -> Result<(), ApiError> {
    let file = std::fs::File::create(tar).map_err(internal)?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    b.follow_symlinks(false);
    b.append_dir_all(".", root).map_err(internal)?;
    b.into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(internal)
}
