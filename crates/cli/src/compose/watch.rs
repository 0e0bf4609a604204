//! `watch` and `up --watch`: the services' `develop.watch` rules applied as files change,
//! as docker compose applies them. `sync` copies changed files into the service's
//! running containers and removes deleted ones there, `sync+restart` restarts the
//! containers after, `sync+exec` runs a command in them after, `rebuild` builds the
//! image and recreates the service. Changes come from inotify (every directory under a
//! watched path), and are handled once nothing has changed for a quiet period, so an
//! editor's burst of writes is one batch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_compose::Project;
use berth_dockerfile::Ignore;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use serde_json::{Value, json};

use super::passthrough::exec_in;
use super::{containers, name_of, parse_as, selected};
use crate::client::{Client, enc_path};
use crate::{CliError, CmdResult};

/// How long nothing must change before a batch is handled (docker compose's figure).
const QUIET_PERIOD: Duration = Duration::from_millis(500);

/// Files editors and tools write that never trigger anything, as docker compose skips
/// them.
const ALWAYS_IGNORED: &str = ".git\n**/.git\n**/*~\n**/.*.swp\n**/.*.swx\n**/4913\n**/.DS_Store\n";

/// `watch` flags.
#[derive(clap::Args)]
pub struct WatchArgs {
    /// Do not build & start services before watching
    #[arg(long = "no-up")]
    no_up: bool,
    /// Hide build output (accepted)
    #[arg(long = "quiet")]
    quiet: bool,
    /// Prune dangling images on rebuild (accepted)
    #[arg(long = "prune", default_value_t = true, action = clap::ArgAction::Set)]
    prune: bool,
    /// Services
    services: Vec<String>,
}

/// What a rule does with a change.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Sync,
    SyncRestart,
    SyncExec(Value),
    Rebuild,
}

/// One `develop.watch` entry of a service.
struct Rule {
    service: String,
    action: Action,
    /// The watched path on the host (absolute).
    path: PathBuf,
    /// Where `path` lands in the container (sync actions).
    target: String,
    /// The rule's `ignore` patterns (relative to `path`) and the always-ignored files.
    ignore: Ignore,
    /// The build context's `.dockerignore`, with the context, when `path` is inside it.
    context_ignore: Option<(PathBuf, Ignore)>,
}

impl Rule {
    /// Whether a changed path concerns this rule.
    fn wants(&self, changed: &Path) -> bool {
        let Ok(rel) = changed.strip_prefix(&self.path) else {
            return false;
        };
        let rel = rel.to_string_lossy();
        if !rel.is_empty() && self.ignore.excludes(&rel) {
            return false;
        }
        // The context's `.dockerignore` speaks only for paths inside the context.
        match &self.context_ignore {
            Some((ctx, ig)) => match changed.strip_prefix(ctx) {
                Ok(r) if !r.as_os_str().is_empty() => !ig.excludes(&r.to_string_lossy()),
                _ => true,
            },
            None => true,
        }
    }

    /// The container path a changed host path maps to.
    fn container_path(&self, changed: &Path) -> String {
        let rel = changed.strip_prefix(&self.path).unwrap_or(Path::new(""));
        let target = self.target.trim_end_matches('/');
        if rel.as_os_str().is_empty() {
            target.to_string()
        } else {
            format!("{target}/{}", rel.display())
        }
    }
}

/// The rules of the services named, checked before anything starts.
fn rules(p: &Project, services: &[String]) -> Result<Vec<Rule>, CliError> {
    let mut out = Vec::new();
    for svc in services {
        let s = &p.services[svc];
        for (i, w) in s["develop"]["watch"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = || format!("services.{svc}.develop.watch[{i}]");
            let path = w["path"]
                .as_str()
                .ok_or_else(|| CliError::new(format!("{}: path is required", at())))?;
            let path = PathBuf::from(berth_compose::normalize::absolute(&p.dir, path));
            let action = match w["action"].as_str().unwrap_or("") {
                "sync" => Action::Sync,
                "sync+restart" => Action::SyncRestart,
                "sync+exec" => Action::SyncExec(w["exec"].clone()),
                "rebuild" => Action::Rebuild,
                other => {
                    return Err(CliError::new(format!(
                        "{}: unknown action {other:?}: use sync, sync+restart, sync+exec or rebuild",
                        at()
                    )));
                }
            };
            let target = w["target"].as_str().unwrap_or("").to_string();
            if action != Action::Rebuild && !target.starts_with('/') {
                return Err(CliError::new(format!(
                    "{}: target is required for {} and must be an absolute path",
                    at(),
                    w["action"].as_str().unwrap_or("")
                )));
            }
            if action == Action::Rebuild && s["build"].is_null() {
                return Err(CliError::new(format!(
                    "{}: service {svc} has no build section to rebuild from",
                    at()
                )));
            }
            if let Action::SyncExec(e) = &action
                && e["command"].is_null()
            {
                return Err(CliError::new(format!(
                    "{}: sync+exec needs exec.command",
                    at()
                )));
            }
            let mut patterns = ALWAYS_IGNORED.to_string();
            for ig in w["ignore"].as_array().into_iter().flatten() {
                patterns.push_str(ig.as_str().unwrap_or(""));
                patterns.push('\n');
            }
            let ignore = Ignore::parse(&patterns).map_err(CliError::new)?;
            out.push(Rule {
                service: svc.clone(),
                action,
                path,
                target,
                ignore,
                context_ignore: context_ignore(s),
            });
        }
    }
    if out.is_empty() {
        return Err(CliError::new(
            "none of the selected services is configured for watch, consider setting a 'develop' section",
        ));
    }
    Ok(out)
}

/// The `.dockerignore` of a service's local build context, if it has one.
fn context_ignore(s: &Value) -> Option<(PathBuf, Ignore)> {
    let ctx = PathBuf::from(s["build"]["context"].as_str()?);
    let text = std::fs::read_to_string(ctx.join(".dockerignore")).ok()?;
    Ignore::parse(&text).ok().map(|i| (ctx, i))
}

/// Every directory at or under `path` (the parent of a file), watched for changes.
struct Watcher {
    fd: OwnedFd,
    dirs: HashMap<i32, PathBuf>,
    /// Said once: the kernel's limit on watches was reached.
    warned: bool,
}

impl Watcher {
    fn new() -> Result<Watcher, CliError> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| CliError::new(format!("inotify: {e}")))?;
        Ok(Watcher {
            fd,
            dirs: HashMap::new(),
            warned: false,
        })
    }

    /// Watches `path`'s directory and those under it that `skip` does not rule out
    /// (`.git`, `node_modules` when ignored: no watch is spent on them).
    fn watch_tree(&mut self, path: &Path, skip: &dyn Fn(&Path) -> bool) {
        let dir = if path.is_dir() {
            path
        } else {
            match path.parent() {
                Some(d) => d,
                None => return,
            }
        };
        let flags = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MODIFY
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::ATTRIB;
        match inotify::add_watch(&self.fd, dir, flags) {
            Ok(wd) => {
                self.dirs.insert(wd, dir.to_path_buf());
            }
            Err(e) if !self.warned => {
                self.warned = true;
                let hint = if e == rustix::io::Errno::NOSPC {
                    " (raise fs.inotify.max_user_watches)"
                } else {
                    ""
                };
                eprintln!(
                    "watch: cannot watch {} and maybe more: {e}{hint}",
                    dir.display()
                );
            }
            Err(_) => {}
        }
        if !path.is_dir() {
            return;
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = entry.path();
            // Not through symlinks: a link to `/` must not watch the whole host.
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !skip(&p) {
                self.watch_tree(&p, skip);
            }
        }
    }

    /// Waits up to `timeout` for changes; returns the paths that changed (new
    /// directories are watched from then on).
    fn changes(
        &mut self,
        timeout: Duration,
        skip: &dyn Fn(&Path) -> bool,
    ) -> Result<Vec<PathBuf>, CliError> {
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let mut fds = [rustix::event::PollFd::new(
            &self.fd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
            Ok(_) => {}
            Err(e) => return Err(CliError::new(format!("inotify: {e}"))),
        }
        let mut out = Vec::new();
        let mut new_dirs = Vec::new();
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 8192];
        let mut reader = inotify::Reader::new(self.fd.as_fd(), &mut buf);
        loop {
            let ev = match reader.next() {
                Ok(ev) => ev,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(e) => return Err(CliError::new(format!("inotify: {e}"))),
            };
            if ev.events().contains(ReadFlags::QUEUE_OVERFLOW) {
                eprintln!("watch: too many changes at once: some were missed; save again to sync");
            }
            let (Some(dir), Some(name)) = (self.dirs.get(&ev.wd()), ev.file_name()) else {
                continue;
            };
            let path = dir.join(name.to_string_lossy().as_ref());
            if ev.events().contains(ReadFlags::ISDIR)
                && ev
                    .events()
                    .intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO)
            {
                new_dirs.push(path.clone());
            }
            out.push(path);
        }
        for d in new_dirs.into_iter().filter(|d| !skip(d)) {
            self.watch_tree(&d, skip);
        }
        Ok(out)
    }
}

/// `watch`: `up` (unless `--no-up`), then the rules until interrupted.
pub fn watch(c: &Client, p: &Project, a: &WatchArgs) -> CmdResult {
    let services = selected(p, &a.services)?;
    let rules = rules(p, &services)?;
    if !a.no_up {
        let mut argv = vec!["-d".to_string(), "--build".to_string()];
        argv.extend(services.iter().cloned());
        super::up::up(c, p, &parse_as("up", argv)?)?;
    }
    run(c, p, &rules)
}

/// The rules `up --watch` follows: those of the services it starts, checked before
/// anything starts.
pub(crate) struct Rules(Vec<Rule>);

pub(crate) fn rules_for_up(p: &Project, services: &[String]) -> Result<Rules, CliError> {
    let with_rules: Vec<String> = services
        .iter()
        .filter(|s| p.services[s.as_str()]["develop"]["watch"].is_array())
        .cloned()
        .collect();
    rules(p, &with_rules).map(Rules)
}

/// `up --watch`: follows the rules in the background.
pub(crate) fn spawn(c: &Client, p: &Project, rules: Rules) -> std::thread::JoinHandle<()> {
    let (c, p) = (c.clone(), p.clone());
    std::thread::spawn(move || {
        if let Err(e) = run(&c, &p, &rules.0) {
            eprintln!("watch: {}", e.message);
        }
    })
}

fn run(c: &Client, p: &Project, rules: &[Rule]) -> CmdResult {
    let mut w = Watcher::new()?;
    // A directory no rule wants (ignored) is not watched at all.
    let skip = |dir: &Path| !rules.iter().any(|r| r.wants(dir));
    for r in rules {
        w.watch_tree(&r.path, &skip);
    }
    eprintln!("Watch enabled");
    let mut pending: BTreeSet<PathBuf> = BTreeSet::new();
    let mut last_change = Instant::now();
    loop {
        let changed = w.changes(QUIET_PERIOD, &skip)?;
        if !changed.is_empty() {
            pending.extend(changed);
            last_change = Instant::now();
            continue;
        }
        if pending.is_empty() || last_change.elapsed() < QUIET_PERIOD {
            continue;
        }
        let batch = std::mem::take(&mut pending);
        if let Err(e) = apply(c, p, rules, &batch) {
            // A failed sync or build is reported; watching goes on, as in docker compose.
            eprintln!("{}", e.message);
        }
    }
}

/// Handles one batch: rebuilds first (a rebuilt service needs no sync), then syncs.
fn apply(
    c: &Client,
    p: &Project,
    rules: &[Rule],
    batch: &BTreeSet<PathBuf>,
) -> Result<(), CliError> {
    let mut rebuild: BTreeSet<&str> = BTreeSet::new();
    let mut syncs: BTreeMap<usize, Vec<&Path>> = BTreeMap::new();
    for path in batch {
        for (i, r) in rules.iter().enumerate() {
            if !r.wants(path) {
                continue;
            }
            if r.action == Action::Rebuild {
                rebuild.insert(&r.service);
            } else {
                syncs.entry(i).or_default().push(path);
            }
        }
    }
    if !rebuild.is_empty() {
        let names: Vec<&str> = rebuild.iter().copied().collect();
        eprintln!("Rebuilding service(s) {names:?} after changes were detected...");
        let mut argv = vec![
            "-d".to_string(),
            "--build".into(),
            "--no-deps".into(),
            "--force-recreate".into(),
        ];
        argv.extend(names.iter().map(|s| s.to_string()));
        super::up::up(c, p, &parse_as("up", argv)?)?;
        eprintln!("service(s) {names:?} successfully built");
    }
    for (i, paths) in syncs {
        let r = &rules[i];
        if rebuild.contains(r.service.as_str()) {
            continue;
        }
        eprintln!(
            "Syncing service {:?} after {} changes were detected",
            r.service,
            paths.len()
        );
        for ct in containers(c, &p.name, std::slice::from_ref(&r.service), false, false)? {
            let name = name_of(&ct);
            sync(c, &name, r, &paths)?;
            match &r.action {
                Action::SyncRestart => {
                    c.post(&format!("/containers/{}/restart", enc_path(&name)), None)?;
                    eprintln!("service {:?} restarted", r.service);
                }
                Action::SyncExec(e) => exec_in(c, &name, e)?,
                Action::Sync | Action::Rebuild => {}
            }
        }
    }
    Ok(())
}

/// Copies what exists of `paths` into the container (one tar, placed from `/`) and
/// removes what no longer exists there.
fn sync(c: &Client, container: &str, r: &Rule, paths: &[&Path]) -> Result<(), CliError> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let mut gone = Vec::new();
    let mut any = false;
    for path in paths {
        let dest = r.container_path(path);
        let name = dest.trim_start_matches('/');
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                b.append_dir_all(name, path)
                    .map_err(|e| CliError::new(format!("sync {}: {e}", path.display())))?;
                any = true;
            }
            Ok(_) => {
                b.append_path_with_name(path, name)
                    .map_err(|e| CliError::new(format!("sync {}: {e}", path.display())))?;
                any = true;
            }
            Err(_) => gone.push(dest),
        }
    }
    if any {
        let tar = b
            .into_inner()
            .map_err(|e| CliError::new(format!("sync: {e}")))?;
        c.send(
            "PUT",
            &format!("/containers/{}/archive?path=/", enc_path(container)),
            Some(&tar),
            &[("Content-Type", "application/x-tar")],
        )?
        .error_for_status()?;
    }
    if !gone.is_empty() {
        let mut cmd = vec!["rm".to_string(), "-rf".into(), "--".into()];
        cmd.extend(gone);
        exec_in(c, container, &json!({"command": cmd}))?;
    }
    Ok(())
}
