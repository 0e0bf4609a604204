//! `pull`, `push`, `login`, `logout`: the registry commands, with credentials kept where
//! the docker CLI keeps them (`~/.docker/config.json`, `auths`), so both tools share one
//! login, and progress drawn as the docker CLI draws it.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use base64::Engine as _;
use clap::Args;
use serde_json::{Value, json};

use crate::client::{Client, Response, enc, enc_path};
use crate::{CliError, CmdResult};

/// `pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image verification (accepted for compatibility)
    #[arg(long = "disable-content-trust", default_value_t = true)]
    pub disable_content_trust: bool,
    /// NAME[:TAG|@DIGEST]
    pub image: String,
}

/// `push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image signing (accepted for compatibility)
    #[arg(long = "disable-content-trust", default_value_t = true)]
    pub disable_content_trust: bool,
    /// NAME[:TAG]
    pub image: String,
}

/// `login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// SERVER (Docker Hub when omitted)
    pub server: Option<String>,
}

/// `logout`.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// SERVER (Docker Hub when omitted)
    pub server: Option<String>,
}

const HUB: &str = "https://index.docker.io/v1/";

/// The registry part of a reference, as docker splits it.
fn domain_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// The config.json key for a registry domain or login server.
fn auth_key(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if s.is_empty()
        || s == "docker.io"
        || s.starts_with("index.docker.io")
        || s == "registry-1.docker.io"
    {
        HUB.into()
    } else {
        s.split('/').next().unwrap_or(s).to_string()
    }
}

fn config_path() -> PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".docker")
        });
    dir.join("config.json")
}

fn read_config() -> Result<Value, CliError> {
    let path = config_path();
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| CliError::new(format!("{}: invalid JSON: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(CliError::new(format!("read {}: {e}", path.display()))),
    }
}

/// Writes config.json whole through a temp file, so a crash never leaves half of it.
fn write_config(config: &Value) -> Result<(), CliError> {
    let path = config_path();
    let fail = |e: std::io::Error| CliError::new(format!("write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(config).expect("json values serialize");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(fail)?;
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, &path).map_err(fail)
}

/// The `X-Registry-Auth` header for a reference: the stored login for its registry, or
/// nothing (anonymous).
fn auth_header(reference: &str) -> Result<Option<String>, CliError> {
    let key = auth_key(domain_of(reference));
    let config = read_config()?;
    let Some(entry) = config["auths"].get(&key) else {
        return Ok(None);
    };
    let mut auth = json!({"serveraddress": key});
    if let Some(a) = entry["auth"].as_str() {
        auth["auth"] = json!(a);
    }
    if let Some(t) = entry["identitytoken"].as_str() {
        auth["identitytoken"] = json!(t);
    }
    Ok(Some(
        base64::engine::general_purpose::URL_SAFE.encode(auth.to_string()),
    ))
}

/// `pull`.
pub fn pull(c: &Client, a: PullArgs) -> CmdResult {
    let (repo, tag) = if a.all_tags {
        (a.image.clone(), String::new())
    } else if let Some((repo, digest)) = a.image.split_once('@') {
        (repo.to_string(), digest.to_string())
    } else {
        let last = a.image.rsplit('/').next().unwrap_or(&a.image);
        if !last.contains(':') && !a.quiet {
            println!("Using default tag: latest");
        }
        crate::images::split_reference(&a.image)
    };
    let mut path = format!("/images/create?fromImage={}", enc(&repo));
    if !tag.is_empty() {
        path.push_str(&format!("&tag={}", enc(&tag)));
    }
    if let Some(p) = &a.platform {
        path.push_str(&format!("&platform={}", enc(p)));
    }
    pull_path(c, &path, &a.image, a.quiet)?;
    if !a.quiet || a.all_tags {
        let shown = if tag.is_empty() {
            repo
        } else if tag.contains(':') {
            format!("{repo}@{tag}")
        } else {
            format!("{repo}:{tag}")
        };
        println!("{}", full_name(&shown));
    } else {
        println!("{}", full_name(&a.image));
    }
    Ok(0)
}

/// `docker.io/library/busybox:latest`, as the docker CLI prints after a pull.
fn full_name(reference: &str) -> String {
    if domain_of(reference) != "docker.io" {
        return reference.to_string();
    }
    let path = reference.strip_prefix("docker.io/").unwrap_or(reference);
    if path.contains('/') {
        format!("docker.io/{path}")
    } else {
        format!("docker.io/library/{path}")
    }
}

fn pull_path(c: &Client, path: &str, reference: &str, quiet: bool) -> Result<(), CliError> {
    show_progress(pull_response(c, path, reference)?, quiet)
}

fn pull_response(c: &Client, path: &str, reference: &str) -> Result<Response, CliError> {
    let auth = auth_header(reference)?;
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("X-Registry-Auth", a)])
        .unwrap_or_default();
    Ok(c.send("POST", path, None, &headers)?.error_for_status()?)
}

/// Pulls an image for `run`/`create` when it is missing, with progress on stderr (stdout
/// is the container's), as docker shows it.
pub fn pull_for_run(c: &Client, reference: &str) -> Result<(), CliError> {
    let (repo, tag) = match reference.split_once('@') {
        Some((r, d)) => (r.to_string(), d.to_string()),
        None => crate::images::split_reference(reference),
    };
    let path = format!("/images/create?fromImage={}&tag={}", enc(&repo), enc(&tag));
    let resp = pull_response(c, &path, reference)?;
    let tty = std::io::stderr().is_terminal();
    progress_to(resp, false, &mut std::io::stderr().lock(), tty)
}

/// `push`.
pub fn push(c: &Client, a: PushArgs) -> CmdResult {
    let (repo, tag) = if a.all_tags {
        (a.image.clone(), String::new())
    } else {
        let last = a.image.rsplit('/').next().unwrap_or(&a.image);
        if !last.contains(':') && !a.quiet {
            println!("Using default tag: latest");
        }
        crate::images::split_reference(&a.image)
    };
    let mut path = format!("/images/{}/push", enc_path(&repo));
    if !tag.is_empty() {
        path.push_str(&format!("?tag={}", enc(&tag)));
    }
    // The daemon wants some header even for anonymous pushes ("{}").
    let auth = auth_header(&repo)?.unwrap_or_else(|| "e30=".into());
    let resp = c
        .send("POST", &path, None, &[("X-Registry-Auth", &auth)])?
        .error_for_status()?;
    show_progress(resp, a.quiet)?;
    if a.quiet {
        println!("{}", a.image);
    }
    Ok(0)
}

/// `login`.
pub fn login(c: &Client, a: LoginArgs) -> CmdResult {
    let server = a.server.clone().unwrap_or_else(|| HUB.into());
    let key = auth_key(&server);
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let username = match a.username.clone() {
        Some(u) => u,
        None if a.password_stdin => {
            return Err(CliError::new(
                "Must provide --username with --password-stdin",
            ));
        }
        None => prompt("Username: ", true)?,
    };
    let password = match (a.password.clone(), a.password_stdin) {
        (Some(_), true) => {
            return Err(CliError::new(
                "--password and --password-stdin are mutually exclusive",
            ));
        }
        (Some(p), false) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| CliError::new(format!("read the password: {e}")))?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt("Password: ", false)?,
    };
    if username.is_empty() || password.is_empty() {
        return Err(CliError::new(
            "Error: Non-null Username and Password Required",
        ));
    }
    let body = json!({"username": username, "password": password, "serveraddress": key});
    c.post("/auth", Some(&body))?;
    let mut config = read_config()?;
    if !config["auths"].is_object() {
        config["auths"] = json!({});
    }
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    config["auths"][&key] = json!({"auth": encoded});
    write_config(&config)?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        config_path().display()
    );
    println!("Login Succeeded");
    Ok(0)
}

/// `logout`.
pub fn logout(_c: &Client, a: LogoutArgs) -> CmdResult {
    let key = auth_key(a.server.as_deref().unwrap_or(HUB));
    let mut config = read_config()?;
    let removed = config["auths"]
        .as_object_mut()
        .and_then(|m| m.remove(&key))
        .is_some();
    if !removed {
        println!("Not logged in to {key}");
        return Ok(0);
    }
    println!("Removing login credentials for {key}");
    write_config(&config)?;
    Ok(0)
}

/// Reads one line from the terminal, without echo for passwords.
fn prompt(label: &str, echo: bool) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    print!("{label}");
    let _ = std::io::stdout().flush();
    let saved = (!echo && stdin.is_terminal())
        .then(|| rustix::termios::tcgetattr(&stdin).ok())
        .flatten();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
        println!();
    }
    read.map_err(|e| CliError::new(format!("read {label}: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Prints a progress stream as the docker CLI does: on a terminal one line per layer,
/// redrawn in place; otherwise each state change on its own line, without bars. The
/// stream's `error` message becomes the command's error.
pub fn show_progress(resp: Response, quiet: bool) -> Result<(), CliError> {
    let tty = std::io::stdout().is_terminal();
    progress_to(resp, quiet, &mut std::io::stdout().lock(), tty)
}

fn progress_to(
    mut resp: Response,
    quiet: bool,
    out: &mut impl Write,
    tty: bool,
) -> Result<(), CliError> {
    let tty = tty && !quiet;
    let mut lines: HashMap<String, usize> = HashMap::new();
    each_message(&mut resp, |m| {
        if !quiet {
            draw(out, &m, tty, &mut lines);
        }
    })
}

/// Hands each JSON message of a streamed answer to `f` as it arrives; the stream's
/// `error` message becomes the error.
pub(crate) fn each_message(resp: &mut Response, mut f: impl FnMut(Value)) -> Result<(), CliError> {
    let mut pending = Vec::new();
    loop {
        let chunk = resp.read_chunk()?;
        let end = chunk.is_empty();
        pending.extend_from_slice(&chunk);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let Ok(m) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(e) = m["error"].as_str() {
                let code = m["errorDetail"]["code"]
                    .as_i64()
                    .filter(|c| *c > 0)
                    .unwrap_or(1);
                return Err(CliError {
                    message: e.to_string(),
                    code: code as i32,
                });
            }
            f(m);
        }
        if end {
            return Ok(());
        }
    }
}

fn draw(out: &mut impl Write, m: &Value, tty: bool, lines: &mut HashMap<String, usize>) {
    let id = m["id"].as_str().unwrap_or("");
    let bar = m["progress"].as_str().unwrap_or("");
    let has_detail = m.get("progressDetail").is_some();
    let mut diff = 0;
    if !id.is_empty() && (has_detail || !bar.is_empty()) {
        let n = lines.len();
        let line = *lines.entry(id.to_string()).or_insert_with(|| {
            if tty {
                let _ = writeln!(out);
            }
            n
        });
        diff = lines.len() - line;
        if tty && diff > 0 {
            let _ = write!(out, "\x1b[{diff}A");
        }
    } else {
        lines.clear();
    }
    if let Some(s) = m["stream"].as_str() {
        let _ = write!(out, "{s}");
    } else if m.get("status").is_some() && (tty || bar.is_empty()) {
        let end = if tty && has_detail { "\r" } else { "\n" };
        if tty && has_detail {
            let _ = write!(out, "\x1b[2K\r");
        }
        let status = m["status"].as_str().unwrap_or("");
        let prefix = if id.is_empty() {
            String::new()
        } else {
            format!("{id}: ")
        };
        if tty && !bar.is_empty() {
            let _ = write!(out, "{prefix}{status} {bar}{end}");
        } else {
            let _ = write!(out, "{prefix}{status}{end}");
        }
    }
    if tty && diff > 0 {
        let _ = write!(out, "\x1b[{diff}B");
    }
    let _ = out.flush();
}
