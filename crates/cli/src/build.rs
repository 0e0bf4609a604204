//! `build`: the context (a directory less what `.dockerignore` leaves out, a tar on stdin,
//! or a lone Dockerfile on stdin) sent to `POST /build`, and the build's output printed
//! as it comes.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::client::{Client, enc};
use crate::{CliError, CmdResult};
use berth_dockerfile::Ignore;

/// `build` flags.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: 'PATH/Dockerfile')
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Set metadata for an image
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long)]
    network: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    add_hosts: Vec<String>,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<String>,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    force_rm: bool,
    /// Images to consider as cache sources
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// Set platform if server is multi-platform capable (the platform FROM images are taken for)
    #[arg(long)]
    platform: Option<String>,
    /// PATH | URL | -
    context: String,
}

/// `build`.
pub fn build(c: &Client, a: BuildArgs) -> CmdResult {
    // A Git repository or a URL is fetched by the daemon (`remote=`), nothing is sent.
    let remote = berth_types::remote::is_remote(&a.context).then(|| a.context.clone());
    let (context, dockerfile) = match &remote {
        Some(_) => (
            Vec::new(),
            a.file.clone().unwrap_or_else(|| "Dockerfile".into()),
        ),
        None => context_tar(&a)?,
    };
    if !a.quiet && remote.is_none() {
        println!(
            "Sending build context to Docker daemon  {}",
            crate::format::human_size4(context.len() as f64)
        );
    }
    let mut path = format!("/build?dockerfile={}", enc(&dockerfile));
    if let Some(r) = &remote {
        path.push_str(&format!("&remote={}", enc(r)));
    }
    for t in &a.tags {
        path.push_str(&format!("&t={}", enc(t)));
    }
    let mut args = Map::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => args.insert(k.to_string(), json!(v)),
            // `--build-arg NAME` takes the value from this environment, if any.
            None => args.insert(b.clone(), std::env::var(b).map_or(Value::Null, Value::from)),
        };
    }
    if !args.is_empty() {
        path.push_str(&format!(
            "&buildargs={}",
            enc(&Value::Object(args).to_string())
        ));
    }
    let labels: Map<String, Value> = a
        .labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (l.clone(), json!("")),
        })
        .collect();
    if !labels.is_empty() {
        path.push_str(&format!(
            "&labels={}",
            enc(&Value::Object(labels).to_string())
        ));
    }
    if !a.cache_from.is_empty() {
        path.push_str(&format!(
            "&cachefrom={}",
            enc(&json!(a.cache_from).to_string())
        ));
    }
    if let Some(p) = &a.platform {
        path.push_str(&format!("&platform={}", enc(p)));
    }
    if let Some(t) = &a.target {
        path.push_str(&format!("&target={}", enc(t)));
    }
    if let Some(n) = &a.network {
        path.push_str(&format!("&networkmode={}", enc(n)));
    }
    for h in &a.add_hosts {
        path.push_str(&format!("&extrahosts={}", enc(h)));
    }
    for (flag, on) in [
        ("nocache", a.no_cache),
        ("pull", a.pull),
        ("q", a.quiet),
        ("forcerm", a.force_rm),
    ] {
        if on {
            path.push_str(&format!("&{flag}=1"));
        }
    }
    path.push_str(&format!("&rm={}", u8::from(a.rm)));
    let mut resp = c
        .send(
            "POST",
            &path,
            remote.is_none().then_some(context.as_slice()),
            &[("Content-Type", "application/x-tar")],
        )?
        .error_for_status()?;
    let mut out = std::io::stdout().lock();
    let mut image_id = None;
    crate::registry::each_message(&mut resp, |m| {
        if let Some(id) = m["aux"]["ID"].as_str() {
            image_id = Some(id.to_string());
        }
        if let Some(s) = m["stream"].as_str() {
            let _ = out.write_all(s.as_bytes());
            let _ = out.flush();
        }
    })?;
    if let (Some(file), Some(id)) = (&a.iidfile, &image_id) {
        std::fs::write(file, id).map_err(|e| CliError::new(format!("write {file}: {e}")))?;
    }
    Ok(0)
}

/// The context as a tar, and the Dockerfile's path in it.
fn context_tar(a: &BuildArgs) -> Result<(Vec<u8>, String), CliError> {
    let stdin_dockerfile = a.file.as_deref() == Some("-");
    if a.context == "-" {
        if stdin_dockerfile {
            return Err(CliError::new(
                "invalid argument: can't use stdin for both build context and dockerfile",
            ));
        }
        if std::io::stdin().is_terminal() {
            return Err(CliError::new(
                "requested build context from stdin, but stdin is a terminal",
            ));
        }
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| CliError::new(format!("read stdin: {e}")))?;
        if looks_like_archive(&data) {
            return Ok((data, a.file.clone().unwrap_or_else(|| "Dockerfile".into())));
        }
        // A lone Dockerfile: the context is just it.
        let mut tar = tar::Builder::new(Vec::new());
        append_bytes(&mut tar, "Dockerfile", &data)?;
        return Ok((finish(tar)?, "Dockerfile".into()));
    }
    let root = PathBuf::from(&a.context);
    if !root.is_dir() {
        return Err(CliError::new(format!(
            "unable to prepare context: path {:?} not found",
            a.context
        )));
    }
    let ignore = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text).map_err(CliError::new)?,
        Err(_) => Ignore::parse("").map_err(CliError::new)?,
    };
    // The Dockerfile: in the context (sent even if ignored), or added from elsewhere.
    let (inside, extra): (Option<String>, Option<Vec<u8>>) = match a.file.as_deref() {
        None => (Some("Dockerfile".into()), None),
        Some("-") => {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .map_err(|e| CliError::new(format!("read stdin: {e}")))?;
            (None, Some(data))
        }
        Some(f) => {
            let p = Path::new(f);
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir().unwrap_or_default().join(p)
            };
            let root_abs = root.canonicalize().unwrap_or(root.clone());
            match abs
                .canonicalize()
                .ok()
                .and_then(|c| c.strip_prefix(&root_abs).ok().map(Path::to_path_buf))
            {
                Some(rel) => (Some(rel.display().to_string()), None),
                None => {
                    let data = std::fs::read(&abs).map_err(|e| {
                        CliError::new(format!("unable to prepare context: {f}: {e}"))
                    })?;
                    (None, Some(data))
                }
            }
        }
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    add_dir(&mut tar, &root, "", &ignore, inside.as_deref())?;
    let dockerfile = match (inside, extra) {
        (Some(rel), None) => {
            if !root.join(&rel).is_file() {
                return Err(CliError::new(format!(
                    "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                    root.join(&rel).display()
                )));
            }
            rel
        }
        (_, Some(data)) => {
            let name = format!(".dockerfile.{:x}", std::process::id());
            append_bytes(&mut tar, &name, &data)?;
            name
        }
        (None, None) => unreachable!("one of the two is set"),
    };
    Ok((finish(tar)?, dockerfile))
}

fn add_dir(
    tar: &mut tar::Builder<Vec<u8>>,
    root: &Path,
    rel: &str,
    ignore: &Ignore,
    dockerfile: Option<&str>,
) -> Result<(), CliError> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| CliError::new(format!("read {}: {e}", dir.display())))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let always = path == ".dockerignore" || Some(path.as_str()) == dockerfile;
        let meta = std::fs::symlink_metadata(e.path())
            .map_err(|err| CliError::new(format!("{}: {err}", e.path().display())))?;
        if ignore.excludes(&path) && !always {
            // Exceptions may bring back what is under an ignored directory.
            if meta.is_dir() {
                add_dir(tar, root, &path, ignore, dockerfile)?;
            }
            continue;
        }
        tar.append_path_with_name(e.path(), &path)
            .map_err(|err| CliError::new(format!("add {path} to the context: {err}")))?;
        if meta.is_dir() {
            add_dir(tar, root, &path, ignore, dockerfile)?;
        }
    }
    Ok(())
}

fn append_bytes(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> Result<(), CliError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    tar.append_data(&mut h, name, data)
        .map_err(|e| CliError::new(format!("add {name} to the context: {e}")))
}

fn finish(tar: tar::Builder<Vec<u8>>) -> Result<Vec<u8>, CliError> {
    tar.into_inner()
        .map_err(|e| CliError::new(format!("write the context: {e}")))
}

/// A tar (plain or compressed) rather than a Dockerfile.
fn looks_like_archive(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
        || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || data.starts_with(b"BZh")
        || data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || (data.len() >= 262 && &data[257..262] == b"ustar")
}
