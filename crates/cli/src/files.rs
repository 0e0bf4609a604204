//! `cp`, `export` and `commit`: files between the host and containers through the
//! archive API, and a container's changes as a new image.
//!
//! Archives from the daemon are extracted here with every entry's path checked (plain
//! names only, no `..`, nothing absolute) and never written through a symlink the same
//! archive made.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::client::{Client, ClientError, enc, enc_path};
use crate::{CliError, CmdResult};

/// `cp` flags.
#[derive(clap::Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow: bool,
    /// Suppress progress output during copy (accepted; berth prints none)
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH (- for a tar on stdin)
    src: String,
    /// CONTAINER:DEST_PATH or DEST_PATH (- for a tar on stdout)
    dest: String,
}

/// `export` flags.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// The container
    container: String,
}

/// `container:path` → (container, path); a plain path (or one with a `/` before the
/// colon, as docker decides) is local.
fn split_remote(arg: &str) -> Option<(&str, &str)> {
    let (c, p) = arg.split_once(':')?;
    (!c.is_empty() && !c.contains('/') && !arg.starts_with('.')).then_some((c, p))
}

fn archive_path(container: &str, path: &str) -> String {
    format!(
        "/containers/{}/archive?path={}",
        enc_path(container),
        enc(path)
    )
}

/// The daemon's stat of `path`, or None when it does not exist.
fn remote_stat(c: &Client, container: &str, path: &str) -> Result<Option<Value>, CliError> {
    let resp = c.send("HEAD", &archive_path(container, path), None, &[])?;
    if resp.status == 404 {
        return Ok(None);
    }
    let resp = resp.error_for_status()?;
    let raw = resp.header("x-docker-container-path-stat").unwrap_or("");
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| CliError::new("the daemon sent a bad path stat"))?;
    Ok(Some(serde_json::from_slice(&json).unwrap_or_default()))
}

fn is_dir_mode(stat: &Value) -> bool {
    stat["mode"].as_u64().unwrap_or(0) & (1 << 31) != 0
}

/// `cp`.
pub fn cp(c: &Client, a: CpArgs) -> CmdResult {
    let _ = a.quiet;
    match (split_remote(&a.src), split_remote(&a.dest)) {
        (Some((ctr, path)), None) => copy_out(c, ctr, path, &a.dest, a.follow),
        (None, Some((ctr, path))) => copy_in(c, &a.src, ctr, path, a.archive),
        (Some(_), Some(_)) => Err(CliError::new("copying between containers is not supported")),
        (None, None) => Err(CliError::new(
            "must specify at least one container source (CONTAINER:PATH)",
        )),
    }
}

fn copy_out(c: &Client, ctr: &str, path: &str, dest: &str, follow: bool) -> CmdResult {
    let not_found =
        |e: ClientError| CliError::new(format!("Error response from daemon: {}", strip_daemon(&e)));
    let mut path = path.to_string();
    if follow
        && let Some(stat) = remote_stat(c, ctr, &path)?
        && let Some(target) = stat["linkTarget"].as_str().filter(|t| !t.is_empty())
    {
        path = target.to_string();
    }
    let resp = c
        .send("GET", &archive_path(ctr, &path), None, &[])?
        .error_for_status()
        .map_err(not_found)?;
    let data = resp.into_bytes()?;
    if dest == "-" {
        std::io::stdout()
            .write_all(&data)
            .map_err(|e| CliError::new(e.to_string()))?;
        return Ok(0);
    }
    let dest = Path::new(dest);
    // Into an existing directory: under its own name; otherwise: as `dest`.
    let (base, rename) = if dest.is_dir() && !path.ends_with("/.") {
        (dest.to_path_buf(), None)
    } else if path.ends_with("/.") {
        std::fs::create_dir_all(dest)
            .map_err(|e| CliError::new(format!("{}: {e}", dest.display())))?;
        (dest.to_path_buf(), None)
    } else {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(CliError::new(format!(
                "invalid output path: directory {:?} does not exist",
                parent.display().to_string()
            )));
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned());
        (parent.to_path_buf(), name)
    };
    extract(&data, &base, rename.as_deref())
        .map_err(|e| CliError::new(format!("copy to {}: {e}", dest.display())))?;
    Ok(0)
}

/// The daemon's message without the "Error response from daemon: " the client adds.
fn strip_daemon(e: &ClientError) -> String {
    let s = e.to_string();
    s.strip_prefix("Error response from daemon: ")
        .unwrap_or(&s)
        .to_string()
}

/// Extracts `data` under `base`, the archive's top name replaced by `rename` if given.
fn extract(data: &[u8], base: &Path, rename: Option<&str>) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(data);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let mut parts: Vec<String> = Vec::new();
        for comp in raw.components() {
            match comp {
                Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
                Component::CurDir => {}
                _ => {
                    return Err(std::io::Error::other(format!(
                        "unsafe path in archive: {}",
                        raw.display()
                    )));
                }
            }
        }
        if let (Some(first), Some(name)) = (parts.first_mut(), rename) {
            *first = name.to_string();
        }
        if parts.is_empty() {
            continue;
        }
        let target: PathBuf = parts.iter().fold(base.to_path_buf(), |p, c| p.join(c));
        // Never through a symlink: every parent below `base` must be a real directory.
        let mut dir = base.to_path_buf();
        for comp in &parts[..parts.len() - 1] {
            dir.push(comp);
            if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(std::io::Error::other(format!(
                    "refusing to write through the symlink {}",
                    dir.display()
                )));
            }
        }
        entry.unpack(&target)?;
    }
    Ok(())
}

fn copy_in(c: &Client, src: &str, ctr: &str, path: &str, archive: bool) -> CmdResult {
    let (dir, data) = if src == "-" {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| CliError::new(e.to_string()))?;
        (path.to_string(), data)
    } else {
        let src_path = Path::new(src);
        let meta = std::fs::symlink_metadata(src_path)
            .map_err(|_| CliError::new(format!("lstat {src}: no such file or directory")))?;
        let dest_stat = remote_stat(c, ctr, path)?;
        // Into an existing directory under the source's name, else as `path` itself.
        let (dir, name) = match &dest_stat {
            Some(st) if is_dir_mode(st) => (
                path.to_string(),
                src_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            Some(_) if meta.is_dir() => {
                return Err(CliError::new(format!(
                    "cannot copy directory to a file: {ctr}:{path}"
                )));
            }
            _ => {
                let p = Path::new(path.trim_end_matches('/'));
                let parent = p
                    .parent()
                    .map_or("/".to_string(), |x| x.display().to_string());
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if path.ends_with('/') && dest_stat.is_none() {
                    return Err(CliError::new(format!(
                        "Error response from daemon: Could not find the file {path} in container {ctr}"
                    )));
                }
                (parent, name)
            }
        };
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        let added = if meta.is_dir() {
            builder.append_dir_all(&name, src_path)
        } else {
            builder.append_path_with_name(src_path, &name)
        };
        added.map_err(|e| CliError::new(format!("read {src}: {e}")))?;
        let data = builder
            .into_inner()
            .map_err(|e| CliError::new(e.to_string()))?;
        (dir, data)
    };
    let query = format!(
        "/containers/{}/archive?path={}&noOverwriteDirNonDir=true&copyUIDGID={}",
        enc_path(ctr),
        enc(&dir),
        u8::from(archive)
    );
    c.send(
        "PUT",
        &query,
        Some(&data),
        &[("Content-Type", "application/x-tar")],
    )?
    .error_for_status()?;
    Ok(0)
}

/// `export`.
pub fn export(c: &Client, a: ExportArgs) -> CmdResult {
    let resp = c
        .send(
            "GET",
            &format!("/containers/{}/export", enc_path(&a.container)),
            None,
            &[],
        )?
        .error_for_status()?;
    write_archive(resp, a.output.as_deref())
}

/// Streams an archive response to `-o FILE` (through a temp file, renamed at the end so a
/// failure leaves no half archive) or to stdout, which must not be a terminal.
fn write_archive(mut resp: crate::client::Response, output: Option<&str>) -> CmdResult {
    let into = |f: &mut dyn Write, resp: &mut crate::client::Response| -> Result<(), CliError> {
        loop {
            let chunk = resp.read_chunk()?;
            if chunk.is_empty() {
                return Ok(());
            }
            f.write_all(&chunk)
                .map_err(|e| CliError::new(e.to_string()))?;
        }
    };
    match output {
        Some(path) => {
            let tmp = format!("{path}.berth-tmp");
            let fail = |e: std::io::Error| CliError::new(format!("write {path}: {e}"));
            let mut f = std::fs::File::create(&tmp).map_err(fail)?;
            let written = into(&mut f, &mut resp).and_then(|()| {
                f.sync_all().map_err(fail)?;
                std::fs::rename(&tmp, path).map_err(fail)
            });
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err(CliError::new(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                ));
            }
            into(&mut std::io::stdout().lock(), &mut resp)?;
        }
    }
    Ok(0)
}

/// `save` flags.
#[derive(clap::Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// IMAGE [IMAGE...]
    #[arg(required = true)]
    images: Vec<String>,
}

/// `save`.
pub fn save(c: &Client, a: SaveArgs) -> CmdResult {
    let names: Vec<String> = a
        .images
        .iter()
        .map(|n| format!("names={}", enc(n)))
        .collect();
    let resp = c
        .send(
            "GET",
            &format!("/images/get?{}", names.join("&")),
            None,
            &[],
        )?
        .error_for_status()?;
    write_archive(resp, a.output.as_deref())
}

/// `load` flags.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input")]
    input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
}

/// `load`.
pub fn load(c: &Client, a: LoadArgs) -> CmdResult {
    let mut data = Vec::new();
    match &a.input {
        Some(f) => std::fs::File::open(f)
            .and_then(|mut file| file.read_to_end(&mut data))
            .map_err(|e| CliError::new(format!("open {f}: {e}")))?,
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(CliError::new(
                    "requested load from stdin, but stdin is empty",
                ));
            }
            std::io::stdin()
                .read_to_end(&mut data)
                .map_err(|e| CliError::new(format!("read stdin: {e}")))?
        }
    };
    let path = format!("/images/load?quiet={}", u8::from(a.quiet));
    let resp = c
        .send(
            "POST",
            &path,
            Some(&data),
            &[("Content-Type", "application/x-tar")],
        )?
        .error_for_status()?;
    crate::registry::show_progress(resp, false)?;
    Ok(0)
}

/// `commit` flags.
#[derive(clap::Args)]
pub struct CommitArgs {
    #[command(flatten)]
    flags: CommitFlags,
    /// The container
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

/// The flags `commit` shares with `compose commit`.
#[derive(clap::Args, Clone)]
pub struct CommitFlags {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long = "author")]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long = "message")]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
}

impl CommitArgs {
    /// `commit` of `container` to `reference` with these flags.
    pub fn of(flags: CommitFlags, container: String, reference: Option<String>) -> CommitArgs {
        CommitArgs {
            flags,
            container,
            reference,
        }
    }
}

/// `commit`.
pub fn commit(c: &Client, a: CommitArgs) -> CmdResult {
    let mut q = format!(
        "/commit?container={}&pause={}",
        enc(&a.container),
        u8::from(a.flags.pause)
    );
    if let Some(r) = &a.reference {
        let (repo, tag) = crate::images::split_reference(r);
        q.push_str(&format!("&repo={}&tag={}", enc(&repo), enc(&tag)));
    }
    if let Some(m) = &a.flags.message {
        q.push_str(&format!("&comment={}", enc(m)));
    }
    if let Some(au) = &a.flags.author {
        q.push_str(&format!("&author={}", enc(au)));
    }
    for ch in &a.flags.change {
        q.push_str(&format!("&changes={}", enc(ch)));
    }
    let v = c.post(&q, None)?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}
