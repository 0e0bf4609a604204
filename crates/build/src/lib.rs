//! # berth-build
//!
//! `docker build` with the classic builder's semantics, which the docker CLI without
//! buildx, docker-compose v1 and docker-py speak (`POST /build`): every step makes an
//! image; RUN runs in a container made from the previous step's image and its changes
//! become a layer; COPY and ADD put context files in such a container; the other
//! instructions change only the config. Each step's result is cached under its parent,
//! its expanded instruction and (COPY/ADD) the checksum of what it copies, in the metadata
//! store, so the cache survives restarts.
//!
//! Multi-stage: only the stages the target needs are built (FROM and COPY --from name
//! them), in order.
//!
//! **Owns:** the build steps, the cache, the context's sources. **Does not:** parse
//! Dockerfiles (`berth-dockerfile`), receive the context (the API extracts it), or pull
//! (the daemon passes a function).

mod cache;
mod context;
pub mod error;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_containers::{ContainerService, LogOptions};
use berth_dockerfile::{Instruction, Lex};
use berth_images::{CommitOptions, ImageStore};
use berth_metadata::Db;
use serde_json::{Map, Value, json};

pub use context::FileHasher;
pub use error::{Error, Result};

use context::{Attrs, Placement};

/// How a build was asked for (`POST /build`'s parameters).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path in the context.
    pub dockerfile: String,
    /// `-t`: tags for the result.
    pub tags: Vec<String>,
    /// `--build-arg`: name → value (`None`: the client had no value to send).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--label`: labels set on the result.
    pub labels: BTreeMap<String, String>,
    /// `--target`: the stage to stop at.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`: always pull FROM images.
    pub pull: bool,
    /// `-q`: only the image id.
    pub quiet: bool,
    /// `--rm` (default): remove RUN containers that succeeded.
    pub remove: bool,
    /// `--force-rm`: remove them even when they failed.
    pub force_remove: bool,
    /// `--network` for RUN.
    pub network: Option<String>,
    /// `--add-host` for RUN.
    pub extra_hosts: Vec<String>,
    /// `--platform`: the platform FROM images are taken for (the host's when unset).
    pub platform: Option<String>,
    /// `--cache-from`: when set, only these images (and the images they were built from)
    /// may be cache hits.
    pub cache_from: Vec<String>,
    /// Digests of the context's files (relative path → [`FileHasher`] hex), taken while the
    /// context was extracted; files not listed are read when COPY needs them.
    pub context_digests: HashMap<PathBuf, String>,
    /// Set when the client has gone: the build stops at the next step, and a running
    /// RUN is killed, as dockerd cancels a build whose request is gone.
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Pulls an image (for a platform, `os/arch[/variant]`, or the host's) for FROM,
/// reporting progress as build output; the daemon provides it.
pub type PullFn = dyn Fn(&str, Option<&str>, &mut dyn FnMut(Value)) -> std::result::Result<(), String>
    + Send
    + Sync;

/// Downloads a URL into a file (ADD <url>); the daemon provides it.
pub type FetchFn = dyn Fn(&str, &Path) -> std::result::Result<(), String> + Send + Sync;

/// The builder over Berth's services.
#[derive(Clone)]
pub struct Builder {
    containers: ContainerService,
    images: ImageStore,
    db: Arc<Db>,
    pull: Arc<PullFn>,
    fetch: Arc<FetchFn>,
}

/// Where build output goes: Docker's `{"stream": ...}` and `{"aux": ...}` messages.
pub type Output<'a> = &'a mut dyn FnMut(Value);

/// Whether the client of this build has gone.
fn cancelled(opts: &BuildOptions) -> bool {
    opts.cancel.load(std::sync::atomic::Ordering::Relaxed)
}

fn canceled() -> Error {
    Error::User("build canceled: the client went away".into())
}

/// SIGKILL's number (Linux, every architecture).
const SIGKILL: i32 = 9;

/// Build arguments any build may pass without declaring them.
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A stage built on its own thread: its index, its output, its image and used args.
type StageRun = (usize, Vec<Value>, Result<(String, HashSet<String>)>);

/// What every stage of one build shares.
struct Plan<'a> {
    root: &'a Path,
    stages: &'a [StageDef<'a>],
    meta_args: &'a [(String, Option<String>)],
    opts: &'a BuildOptions,
    lex: &'a Lex,
    total: usize,
}

/// One stage as written: its FROM and what follows.
struct StageDef<'a> {
    name: Option<String>,
    from: &'a Instruction,
    body: Vec<&'a Instruction>,
}

/// A stage being built.
struct Stage {
    /// The current image (None: `scratch` with nothing yet).
    image: Option<String>,
    /// The container config the next image gets.
    config: Value,
    /// ARGs declared in this stage, with their values.
    args: Vec<(String, Option<String>)>,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// The image's author (MAINTAINER), inherited from the base.
    author: String,
}

impl Builder {
    /// A builder; `pull` fetches FROM images that are missing (or all with `--pull`),
    /// `fetch` downloads ADD's URLs.
    pub fn new(
        containers: ContainerService,
        images: ImageStore,
        db: Arc<Db>,
        pull: Arc<PullFn>,
        fetch: Arc<FetchFn>,
    ) -> Self {
        Builder {
            containers,
            images,
            db,
            pull,
            fetch,
        }
    }

    /// Builds the Dockerfile of the extracted context `root`; returns the image id.
    pub fn build(&self, root: &Path, opts: &BuildOptions, out: Output<'_>) -> Result<String> {
        let quiet = opts.quiet;
        let mut filtered = |m: Value| {
            if !quiet || m.get("aux").is_some() {
                out(m)
            }
        };
        let id = self.build_inner(root, opts, &mut filtered)?;
        if quiet {
            out(json!({"stream": format!("{id}\n")}));
        }
        Ok(id)
    }

    fn build_inner(&self, root: &Path, opts: &BuildOptions, out: Output<'_>) -> Result<String> {
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            &opts.dockerfile
        };
        let path = root.join(context::clean(name));
        let text = std::fs::read_to_string(&path)
            .map_err(|_| Error::User(format!("Cannot locate specified Dockerfile: {name}")))?;
        let df = berth_dockerfile::parse(&text).map_err(|e| Error::User(e.to_string()))?;
        drop_ignored_build_files(root, name)?;
        let lex = Lex::new(df.escape);
        let (meta_args, stages) = split_stages(&df.instructions)?;
        let target = match &opts.target {
            Some(t) => stages
                .iter()
                .position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t)))
                .ok_or_else(|| {
                    Error::User(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            None => stages.len() - 1,
        };
        let needed = needed_stages(&stages, target, &lex, &meta_args, opts);
        let meta_steps: Vec<&Instruction> = df
            .instructions
            .iter()
            .take_while(|i| i.keyword() != "from")
            .collect();
        let total: usize = meta_steps.len()
            + needed
                .iter()
                .map(|i| 1 + stages[*i].body.len())
                .sum::<usize>();
        let mut step = 0;
        // ARGs before the first FROM are steps of their own, as the classic builder shows.
        for ins in &meta_steps {
            step += 1;
            out(stream(format!(
                "Step {step}/{total} : {}\n",
                ins.original.trim()
            )));
        }
        // Steps are numbered in file order, whatever order stages run in.
        let mut first_step = HashMap::new();
        for &i in &needed {
            first_step.insert(i, step + 1);
            step += 1 + stages[i].body.len();
        }
        let env = arg_env(&meta_args, opts);
        let deps: HashMap<usize, Vec<usize>> = needed
            .iter()
            .map(|&i| (i, stage_refs(&stages, i, &lex, &env)))
            .collect();
        let mut results: HashMap<usize, String> = HashMap::new();
        let mut used_args: HashSet<String> = HashSet::new();
        let plan = Plan {
            root,
            stages: &stages,
            meta_args: &meta_args,
            opts,
            lex: &lex,
            total,
        };
        // Stages whose dependencies are built run together, each on its own thread (the
        // classic builder ran them one by one); their output is shown in file order.
        while results.len() < needed.len() {
            let ready: Vec<usize> = needed
                .iter()
                .copied()
                .filter(|i| {
                    !results.contains_key(i) && deps[i].iter().all(|d| results.contains_key(d))
                })
                .collect();
            if ready.len() == 1 {
                let i = ready[0];
                let (id, used) = self.build_stage(&plan, i, first_step[&i], &results, out)?;
                used_args.extend(used);
                results.insert(i, id);
                continue;
            }
            let built: Vec<StageRun> = std::thread::scope(|scope| {
                let handles: Vec<_> = ready
                    .iter()
                    .map(|&i| {
                        let (plan, results, first) = (&plan, &results, first_step[&i]);
                        scope.spawn(move || {
                            let mut buffered = Vec::new();
                            let r = self
                                .build_stage(plan, i, first, results, &mut |m| buffered.push(m));
                            (i, buffered, r)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a stage's thread panicked"))
                    .collect()
            });
            for (i, messages, r) in built {
                messages.into_iter().for_each(&mut *out);
                let (id, used) = r?;
                used_args.extend(used);
                results.insert(i, id);
            }
        }
        let mut id = results[&target].clone();
        if !opts.labels.is_empty() {
            let (_, image) = self.images.image_config(&id)?;
            let mut config = image["config"].clone();
            for (k, v) in &opts.labels {
                set_map(&mut config, "Labels", k, json!(v));
            }
            id = self
                .images
                .derive(Some(&id), &config, "LABEL (from the command line)", "")?;
        }
        let unused: Vec<&String> = opts
            .build_args
            .keys()
            .filter(|k| !used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            out(stream(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            )));
        }
        out(json!({"aux": {"ID": id}}));
        out(stream(format!("Successfully built {}\n", short(&id))));
        for t in &opts.tags {
            self.images.tag(&id, t)?;
            out(stream(format!("Successfully tagged {}\n", familiar(t))));
        }
        Ok(id)
    }

    /// One stage, its steps numbered from `first`; returns its image and the build args
    /// it used.
    fn build_stage(
        &self,
        plan: &Plan<'_>,
        i: usize,
        first: usize,
        results: &HashMap<usize, String>,
        out: Output<'_>,
    ) -> Result<(String, HashSet<String>)> {
        let s = &plan.stages[i];
        let total = plan.total;
        let mut step = first;
        out(stream(format!(
            "Step {step}/{total} : {}\n",
            s.from.original.trim()
        )));
        let mut stage = self.from(
            s,
            plan.root,
            plan.stages,
            results,
            plan.meta_args,
            plan.opts,
            plan.lex,
            out,
        )?;
        let mut used = HashSet::new();
        for ins in &s.body {
            step += 1;
            out(stream(format!(
                "Step {step}/{total} : {}\n",
                ins.original.trim()
            )));
            self.step(
                ins,
                &mut stage,
                plan.root,
                plan.stages,
                results,
                plan.opts,
                plan.lex,
                plan.meta_args,
                &mut used,
                out,
            )?;
        }
        let id = match &stage.image {
            Some(id) => id.clone(),
            None => self.images.derive(None, &stage.config, "", &stage.author)?,
        };
        Ok((id, used))
    }

    /// FROM: the base image (a previous stage, an image, or scratch), then its ONBUILD
    /// triggers.
    #[allow(clippy::too_many_arguments)]
    fn from(
        &self,
        s: &StageDef<'_>,
        root: &Path,
        stages: &[StageDef<'_>],
        results: &HashMap<usize, String>,
        meta_args: &[(String, Option<String>)],
        opts: &BuildOptions,
        lex: &Lex,
        out: Output<'_>,
    ) -> Result<Stage> {
        let env = arg_env(meta_args, opts);
        let base = expand(lex, s.from.values().first().copied().unwrap_or(""), &env)?;
        if base.is_empty() {
            return Err(Error::User("FROM requires the name of a base image".into()));
        }
        let image = if base.eq_ignore_ascii_case("scratch") {
            None
        } else if let Some(i) = stage_index(stages, &base)
            && let Some(id) = results.get(&i)
        {
            Some(id.clone())
        } else {
            let platform = self.platform_for(s, opts, lex, &env)?;
            let local = self.images.resolve(&base).ok();
            let fits = local.as_ref().is_some_and(|r| match &platform {
                Some(p) => self.is_for_platform(&r.id, p),
                None => true,
            });
            if opts.pull || !fits {
                (self.pull)(&base, platform.as_deref(), out).map_err(Error::User)?;
            }
            Some(self.images.resolve(&base)?.id)
        };
        let (config, author) = match &image {
            Some(id) => {
                out(stream(format!(" ---> {}\n", short(id))));
                let image = self.images.image_config(id)?.1;
                let author = image["author"].as_str().unwrap_or("").to_string();
                (image["config"].clone(), author)
            }
            None => (json!({}), String::new()),
        };
        let config = if config.is_object() {
            config
        } else {
            json!({})
        };
        let triggers: Vec<String> = strings(&config["OnBuild"]);
        let mut stage = Stage {
            image,
            config,
            args: Vec::new(),
            cmd_set: false,
            author,
        };
        // Triggers run once, in the child build; the child's image does not inherit them.
        if let Some(c) = stage.config.as_object_mut() {
            c.remove("OnBuild");
        }
        if !triggers.is_empty() {
            out(stream(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            )));
        }
        let mut used = HashSet::new();
        for t in triggers {
            let parsed = berth_dockerfile::parse(&t)
                .map_err(|e| Error::User(format!("ONBUILD trigger {t:?}: {e}")))?;
            for ins in &parsed.instructions {
                self.step(
                    ins, &mut stage, root, stages, results, opts, lex, meta_args, &mut used, out,
                )?;
            }
        }
        Ok(stage)
    }

    /// FROM's `--platform`, or the build's; `None` when neither is given (any local image
    /// of that name will do, as with docker).
    fn platform_for(
        &self,
        s: &StageDef<'_>,
        opts: &BuildOptions,
        lex: &Lex,
        env: &Vec<String>,
    ) -> Result<Option<String>> {
        let flag = s
            .from
            .flags
            .iter()
            .find_map(|f| f.strip_prefix("--platform="))
            .map(|p| expand(lex, p, env))
            .transpose()?;
        Ok(flag
            .or_else(|| opts.platform.clone())
            .filter(|p| !p.is_empty()))
    }

    /// Whether the image's config says it is for `platform` (`os/arch[/variant]`).
    fn is_for_platform(&self, id: &str, platform: &str) -> bool {
        let Ok((_, image)) = self.images.image_config(id) else {
            return false;
        };
        let mut parts = platform.split('/');
        let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
        image["os"].as_str() == os
            && image["architecture"].as_str() == arch
            && variant.is_none_or(|v| image["variant"].as_str() == Some(v))
    }

    /// One instruction of a stage.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        ins: &Instruction,
        stage: &mut Stage,
        root: &Path,
        stages: &[StageDef<'_>],
        results: &HashMap<usize, String>,
        opts: &BuildOptions,
        lex: &Lex,
        meta_args: &[(String, Option<String>)],
        used_args: &mut HashSet<String>,
        out: Output<'_>,
    ) -> Result<()> {
        if cancelled(opts) {
            return Err(canceled());
        }
        let keyword = ins.keyword();
        let env = stage_env(stage, opts);
        match keyword.as_str() {
            "run" => return self.run(ins, stage, opts, used_args, out),
            "copy" | "add" => {
                return self.copy(
                    ins,
                    stage,
                    root,
                    stages,
                    results,
                    lex,
                    &env,
                    keyword == "add",
                    opts,
                    out,
                );
            }
            "arg" => {
                for w in ins.values() {
                    let (name, default) = match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(expand(lex, v, &env)?)),
                        None => (w.to_string(), None),
                    };
                    used_args.insert(name.clone());
                    let value = match opts.build_args.get(&name) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => default.or_else(|| {
                            meta_args
                                .iter()
                                .find(|(k, _)| *k == name)
                                .and_then(|(_, v)| v.clone())
                        }),
                    };
                    stage.args.retain(|(k, _)| *k != name);
                    stage.args.push((name, value));
                }
                // ARG changes no config: Docker makes no image for it either.
                out(stream(format!(
                    " ---> {}\n",
                    stage.image.as_deref().map(short).unwrap_or("")
                )));
                return Ok(());
            }
            _ => {}
        }
        let created_by = self.apply_config(ins, stage, lex, &env)?;
        self.config_step(stage, &created_by, opts, out)
    }

    /// Changes the stage's config for a config-only instruction; returns the history line.
    fn apply_config(
        &self,
        ins: &Instruction,
        stage: &mut Stage,
        lex: &Lex,
        env: &Vec<String>,
    ) -> Result<String> {
        let keyword = ins.keyword();
        let values = ins.values();
        let c = &mut stage.config;
        let nop = |text: String| format!("/bin/sh -c #(nop)  {text}");
        match keyword.as_str() {
            "env" | "label" => {
                if values.is_empty() {
                    return Err(Error::User(format!(
                        "{} requires at least one argument",
                        keyword.to_uppercase()
                    )));
                }
                let mut shown = Vec::new();
                for kv in values.chunks(3) {
                    let (k, v) = (
                        expand(lex, kv[0], env)?,
                        expand(lex, kv.get(1).copied().unwrap_or(""), env)?,
                    );
                    shown.push(format!("{k}={v}"));
                    if keyword == "env" {
                        let mut list = strings(&c["Env"]);
                        list.retain(|e| e.split('=').next() != Some(k.as_str()));
                        list.push(format!("{k}={v}"));
                        c["Env"] = json!(list);
                    } else {
                        set_map(c, "Labels", &k, json!(v));
                    }
                }
                Ok(nop(format!(
                    "{} {}",
                    keyword.to_uppercase(),
                    shown.join(" ")
                )))
            }
            "cmd" | "entrypoint" => {
                let argv = command_form(ins, c);
                if keyword == "cmd" {
                    c["Cmd"] = json!(argv);
                    stage.cmd_set = true;
                } else {
                    c["Entrypoint"] = json!(argv);
                    if !stage.cmd_set {
                        c["Cmd"] = Value::Null;
                    }
                }
                Ok(nop(format!(
                    "{} {}",
                    keyword.to_uppercase(),
                    go_list(&argv)
                )))
            }
            "expose" => {
                let mut ports = Vec::new();
                for v in &values {
                    for p in lex
                        .process_words(v, env)
                        .map_err(|e| Error::User(e.to_string()))?
                    {
                        let p = if p.contains('/') {
                            p
                        } else {
                            format!("{p}/tcp")
                        };
                        set_map(c, "ExposedPorts", &p, json!({}));
                        ports.push(p);
                    }
                }
                Ok(nop(format!("EXPOSE {}", ports.join(" "))))
            }
            "workdir" => {
                let dir = expand(lex, values.first().copied().unwrap_or(""), env)?;
                if dir.is_empty() {
                    return Err(Error::User("WORKDIR requires exactly one argument".into()));
                }
                let base = c["WorkingDir"].as_str().unwrap_or("/").to_string();
                let full = if dir.starts_with('/') {
                    dir
                } else {
                    format!("{}/{dir}", base.trim_end_matches('/'))
                };
                c["WorkingDir"] = json!(full);
                Ok(nop(format!("WORKDIR {full}")))
            }
            "user" => {
                let user = expand(lex, values.first().copied().unwrap_or(""), env)?;
                c["User"] = json!(user);
                Ok(nop(format!("USER {user}")))
            }
            "volume" => {
                let mut vols = Vec::new();
                for v in &values {
                    let v = expand(lex, v, env)?;
                    if v.is_empty() {
                        return Err(Error::User(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    set_map(c, "Volumes", &v, json!({}));
                    vols.push(v);
                }
                Ok(nop(format!("VOLUME {}", go_list(&vols))))
            }
            "stopsignal" => {
                let sig = expand(lex, values.first().copied().unwrap_or(""), env)?;
                c["StopSignal"] = json!(sig);
                Ok(nop(format!("STOPSIGNAL {sig}")))
            }
            "shell" => {
                if !ins.json {
                    return Err(Error::User(
                        "SHELL requires the arguments to be in JSON form".into(),
                    ));
                }
                let argv: Vec<String> = values.iter().map(|s| s.to_string()).collect();
                c["Shell"] = json!(argv);
                Ok(nop(format!("SHELL {}", go_list(&argv))))
            }
            "maintainer" => {
                let who = values.first().copied().unwrap_or("").to_string();
                stage.author = who.clone();
                Ok(nop(format!("MAINTAINER {who}")))
            }
            "onbuild" => {
                let trigger = ins
                    .original
                    .trim()
                    .split_once(char::is_whitespace)
                    .map(|(_, rest)| rest.trim().to_string())
                    .unwrap_or_default();
                let first = trigger
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_uppercase();
                if matches!(first.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(Error::User(format!(
                        "{first} isn't allowed as an ONBUILD trigger"
                    )));
                }
                let mut list = strings(&c["OnBuild"]);
                list.push(trigger.clone());
                c["OnBuild"] = json!(list);
                Ok(nop(format!("ONBUILD {trigger}")))
            }
            "healthcheck" => {
                c["Healthcheck"] = healthcheck(ins)?;
                Ok(nop(format!("HEALTHCHECK {}", values.join(" "))))
            }
            other => Err(Error::User(format!(
                "unknown instruction: {}",
                other.to_uppercase()
            ))),
        }
    }

    /// A config-only step: a cache hit, or a new image without a layer.
    fn config_step(
        &self,
        stage: &mut Stage,
        created_by: &str,
        opts: &BuildOptions,
        out: Output<'_>,
    ) -> Result<()> {
        let parent = stage.image.clone().unwrap_or_else(|| "scratch".into());
        let config = stage.config.to_string();
        let key = cache::key(&[&parent, "config", created_by, &config]);
        if let Some(id) = self.cached(&key, opts)? {
            out(stream(" ---> Using cache\n".into()));
            out(stream(format!(" ---> {}\n", short(&id))));
            stage.image = Some(id);
            return Ok(());
        }
        let id = self.images.derive(
            stage.image.as_deref(),
            &stage.config,
            created_by,
            &stage.author,
        )?;
        cache::store(&self.db, &key, &id)?;
        out(stream(format!(" ---> {}\n", short(&id))));
        stage.image = Some(id);
        Ok(())
    }

    fn cached(&self, key: &str, opts: &BuildOptions) -> Result<Option<String>> {
        if opts.no_cache {
            return Ok(None);
        }
        let hit = cache::lookup(&self.db, &self.images, key)?;
        if opts.cache_from.is_empty() {
            return Ok(hit);
        }
        Ok(hit.filter(|id| self.cache_sources(&opts.cache_from).contains(id)))
    }

    /// The images `--cache-from` allows: those named and their ancestors.
    fn cache_sources(&self, names: &[String]) -> HashSet<String> {
        let mut allowed = HashSet::new();
        for n in names {
            let mut next = self.images.resolve(n).ok();
            while let Some(rec) = next {
                if !allowed.insert(rec.id.clone()) {
                    break;
                }
                next = rec
                    .parent
                    .as_deref()
                    .and_then(|p| self.images.resolve(p).ok());
            }
        }
        allowed
    }

    /// The stage's image, made (empty) if the stage has none yet: containers need one.
    fn image_for_container(&self, stage: &mut Stage) -> Result<String> {
        if let Some(id) = &stage.image {
            return Ok(id.clone());
        }
        let id = self.images.derive(None, &stage.config, "", &stage.author)?;
        stage.image = Some(id.clone());
        Ok(id)
    }

    /// RUN: the command in a container of the current image; its changes become a layer.
    fn run(
        &self,
        ins: &Instruction,
        stage: &mut Stage,
        opts: &BuildOptions,
        used_args: &mut HashSet<String>,
        out: Output<'_>,
    ) -> Result<()> {
        if let Some(flag) = ins.flags.first() {
            return Err(Error::User(format!(
                "RUN {flag}: RUN's flags (--mount, --network, --security) need BuildKit, which Berth's builder does not implement"
            )));
        }
        let argv = if ins.json {
            ins.values().iter().map(|s| s.to_string()).collect()
        } else {
            let mut shell = strings(&stage.config["Shell"]);
            if shell.is_empty() {
                shell = vec!["/bin/sh".into(), "-c".into()];
            }
            shell.push(with_heredocs(ins));
            shell
        };
        if argv.is_empty() || argv.iter().all(String::is_empty) {
            return Err(Error::User("RUN requires at least one argument".into()));
        }
        // Build args reach RUN's environment (not the image's), after the image's ENV.
        let mut env = strings(&stage.config["Env"]);
        let mut arg_line = Vec::new();
        for (k, v) in stage.args.iter().chain(predefined(opts).iter()) {
            if let Some(v) = v
                && !env.iter().any(|e| e.split('=').next() == Some(k.as_str()))
            {
                env.push(format!("{k}={v}"));
                arg_line.push(format!("{k}={v}"));
                used_args.insert(k.clone());
            }
        }
        let created_by = if arg_line.is_empty() {
            argv.join(" ")
        } else {
            format!(
                "|{} {} {}",
                arg_line.len(),
                arg_line.join(" "),
                argv.join(" ")
            )
        };
        let parent = self.image_for_container(stage)?;
        let key = cache::key(&[&parent, "run", &created_by, &stage.config.to_string()]);
        if let Some(id) = self.cached(&key, opts)? {
            out(stream(" ---> Using cache\n".into()));
            out(stream(format!(" ---> {}\n", short(&id))));
            stage.image = Some(id);
            return Ok(());
        }
        let mut host = json!({});
        if let Some(n) = &opts.network {
            host["NetworkMode"] = json!(n);
        }
        if !opts.extra_hosts.is_empty() {
            host["ExtraHosts"] = json!(opts.extra_hosts);
        }
        let body = json!({
            "Image": parent,
            "Cmd": argv,
            "Entrypoint": [""],
            "Env": env,
            "WorkingDir": stage.config["WorkingDir"],
            "User": stage.config["User"],
            "AttachStdout": true,
            "AttachStderr": true,
            "HostConfig": host,
        });
        let cid = self.containers.create(None, &body)?;
        out(stream(format!(" ---> Running in {}\n", &cid[..12])));
        let ran = self.run_container(&cid, opts, out);
        let code = match ran {
            Ok(_) if cancelled(opts) => {
                let _ = self.containers.remove(&cid, true);
                return Err(canceled());
            }
            Ok(code) => code,
            Err(e) => {
                let _ = self.containers.remove(&cid, true);
                return Err(e);
            }
        };
        if code != 0 {
            if opts.force_remove {
                let _ = self.containers.remove(&cid, true);
            }
            return Err(Error::Step {
                message: format!(
                    "The command '{}' returned a non-zero code: {code}",
                    argv.join(" ")
                ),
                code,
            });
        }
        let commit = CommitOptions {
            created_by: created_by.clone(),
            author: stage.author.clone(),
            ..CommitOptions::default()
        };
        let id = self
            .containers
            .commit_with_config(&cid, &stage.config, &commit);
        if opts.remove || opts.force_remove {
            let _ = self.containers.remove(&cid, true);
            out(stream(format!(
                "Removing intermediate container {}\n",
                &cid[..12]
            )));
        }
        let id = id?;
        cache::store(&self.db, &key, &id)?;
        out(stream(format!(" ---> {}\n", short(&id))));
        stage.image = Some(id);
        Ok(())
    }

    /// Starts the container, streams its output as build output, returns its exit code.
    /// A canceled build kills it.
    fn run_container(&self, cid: &str, opts: &BuildOptions, out: Output<'_>) -> Result<i32> {
        self.containers.start(cid, &mut |_| {})?;
        // The watcher looks at the flag every 100 ms and leaves as soon as the step ends
        // (the sender dropped), so a step never waits out a sleep.
        let (finished, ended) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    ended.recv_timeout(std::time::Duration::from_millis(100))
                {
                    if cancelled(opts) {
                        let _ = self.containers.kill(cid, SIGKILL);
                        return;
                    }
                }
            });
            let code = self.stream_until_exit(cid, out);
            drop(finished);
            code
        })
    }

    /// Streams the running container's output as build output; its exit code.
    fn stream_until_exit(&self, cid: &str, out: Output<'_>) -> Result<i32> {
        let opts = LogOptions {
            stdout: true,
            stderr: true,
            ..LogOptions::default()
        };
        let mut pending: Vec<u8> = Vec::new();
        self.containers.follow_logs(cid, &opts, &mut |chunk| {
            pending.extend_from_slice(&chunk);
            // Docker's stream frames: 8-byte header (stream, 0, 0, 0, big-endian length).
            while pending.len() >= 8 {
                let len =
                    u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
                if pending.len() < 8 + len {
                    break;
                }
                let text = String::from_utf8_lossy(&pending[8..8 + len]).into_owned();
                let stderr = pending[0] == 2;
                pending.drain(..8 + len);
                // dockerd shows a step's stderr in red.
                out(stream(if stderr {
                    format!("\x1b[91m{text}\x1b[0m")
                } else {
                    text
                }));
            }
            true
        })?;
        Ok(self.containers.wait(cid, None)?)
    }

    /// COPY and ADD.
    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        ins: &Instruction,
        stage: &mut Stage,
        root: &Path,
        stages: &[StageDef<'_>],
        results: &HashMap<usize, String>,
        lex: &Lex,
        env: &Vec<String>,
        is_add: bool,
        opts: &BuildOptions,
        out: Output<'_>,
    ) -> Result<()> {
        let what = if is_add { "ADD" } else { "COPY" };
        let mut from = None;
        let mut chown = None;
        let mut chmod = None;
        for f in &ins.flags {
            let (k, v) = f
                .trim_start_matches("--")
                .split_once('=')
                .unwrap_or((f.trim_start_matches("--"), ""));
            match k {
                "from" if !is_add => from = Some(expand(lex, v, env)?),
                "chown" => chown = Some(expand(lex, v, env)?),
                "chmod" => {
                    chmod = Some(
                        u32::from_str_radix(v, 8)
                            .map_err(|_| Error::User(format!("invalid chmod parameter: {v}")))?,
                    )
                }
                "link" | "parents" => {}
                _ => return Err(Error::User(format!("unknown flag: --{k}"))),
            }
        }
        let words: Vec<String> = ins
            .values()
            .iter()
            .map(|w| expand(lex, w, env))
            .collect::<Result<_>>()?;
        if words.len() < 2 {
            return Err(Error::User(format!(
                "{what} requires at least two arguments, but only one was provided. Destination could not be determined."
            )));
        }
        let (srcs, dest) = words.split_at(words.len() - 1);
        let workdir = stage.config["WorkingDir"]
            .as_str()
            .unwrap_or("/")
            .to_string();
        // `.`, `dir/` and `dir/.` name a directory.
        let named_dir = dest[0].ends_with('/') || dest[0] == "." || dest[0].ends_with("/.");
        let dest = if dest[0].starts_with('/') {
            dest[0].clone()
        } else {
            format!("{}/{}", workdir.trim_end_matches('/'), dest[0])
        };
        let parent = self.image_for_container(stage)?;
        // What is copied from another stage or image is first put in a directory here.
        let staged = tempdir_in_context(root)?;
        let src_root = match &from {
            Some(name) => {
                let image = match stage_index(stages, name).and_then(|i| results.get(&i)) {
                    Some(id) => id.clone(),
                    None => {
                        let r = self.images.resolve(name);
                        match r {
                            Ok(r) => r.id,
                            Err(_) => {
                                (self.pull)(name, None, out).map_err(Error::User)?;
                                self.images.resolve(name)?.id
                            }
                        }
                    }
                };
                self.stage_from_image(&image, srcs, staged.path())?;
                staged.path().to_path_buf()
            }
            None => root.to_path_buf(),
        };
        let is_url = |s: &String| s.starts_with("http://") || s.starts_with("https://");
        let from_urls = srcs.iter().any(is_url);
        let (src_root, srcs) = if !ins.heredocs.is_empty() {
            // `COPY <<EOF /file`: each heredoc is a file of its own, named after it.
            let mut names = Vec::new();
            for src in srcs {
                let Some(doc) = berth_dockerfile::parser::heredoc(src)
                    .ok()
                    .flatten()
                    .and_then(|h| ins.heredocs.iter().find(|d| d.name == h.name))
                else {
                    return Err(Error::User(format!(
                        "{what}: heredocs and other sources cannot be mixed"
                    )));
                };
                let content = if doc.expand {
                    expand(lex, &doc.content, env)?
                } else {
                    doc.content.clone()
                };
                std::fs::write(staged.path().join(&doc.name), content)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                names.push(doc.name.clone());
            }
            (staged.path().to_path_buf(), names)
        } else if from_urls {
            if !is_add {
                return Err(Error::User("COPY: source can't be a URL (use ADD)".into()));
            }
            if !srcs.iter().all(is_url) || from.is_some() {
                return Err(Error::User(
                    "ADD: URLs and other sources cannot be mixed in one instruction".into(),
                ));
            }
            (
                staged.path().to_path_buf(),
                self.download(srcs, staged.path())?,
            )
        } else {
            (src_root, srcs.to_vec())
        };
        let srcs = srcs.as_slice();
        let mut found = Vec::new();
        for s in srcs {
            found.extend(
                context::find_sources(&src_root, s)
                    .map_err(|e| Error::User(format!("{what} failed: {e}")))?,
            );
        }
        // The key needs no container: the sources' content, the instruction as expanded
        // and the parent decide the result (owners and paths resolve in the parent).
        let sources: Vec<Placement> = found
            .iter()
            .map(|f| Placement {
                src: f.clone(),
                dest: f.display().to_string(),
            })
            .collect();
        // Digests taken at extraction describe the context only, not a --from staging.
        let none = HashMap::new();
        let known = if from.is_none() {
            &opts.context_digests
        } else {
            &none
        };
        let content = context::checksum(&src_root, &sources, known)?;
        let key = cache::key(&[
            &parent,
            what,
            &ins.flags.join(" "),
            &words.join("\n"),
            &workdir,
            &content,
            &stage.config.to_string(),
        ]);
        if let Some(id) = self.cached(&key, opts)? {
            out(stream(" ---> Using cache\n".into()));
            out(stream(format!(" ---> {}\n", short(&id))));
            stage.image = Some(id);
            return Ok(());
        }
        let cid = self.containers.create(
            None,
            &json!({"Image": parent, "Cmd": ["/nonexistent"], "Entrypoint": [""]}),
        )?;
        let result = (|| -> Result<String> {
            let attrs = self.owner(&cid, chown.as_deref(), chmod)?;
            let dest_is_dir = named_dir
                || found.len() > 1
                || self
                    .containers
                    .archive_stat(&cid, &dest)
                    .is_ok_and(|st| st["mode"].as_u64().is_some_and(|m| m & (1 << 31) != 0));
            if found.len() > 1 && !named_dir {
                return Err(Error::User(format!(
                    "When using {what} with more than one source file, the destination must be a directory and end with a /"
                )));
            }
            let mut placements = Vec::new();
            let mut archives = Vec::new();
            for src in &found {
                let full = src_root.join(src);
                let is_dir = full.is_dir();
                // A downloaded file stays as it is; a local archive is unpacked.
                if is_add && !from_urls && !is_dir && is_archive(&full) {
                    archives.push(full);
                    continue;
                }
                let name = src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = if is_dir || !dest_is_dir {
                    dest.clone()
                } else {
                    format!("{}/{name}", dest.trim_end_matches('/'))
                };
                placements.push(Placement {
                    src: src.clone(),
                    dest: target,
                });
            }
            // `content` covers every source, archives included.
            let created_by = format!(
                "/bin/sh -c #(nop) {what} {}:{content} in {dest} ",
                if found.len() == 1 && !src_root.join(&found[0]).is_dir() {
                    "file"
                } else {
                    "dir"
                },
            );
            let (reader, writer) = std::io::pipe().map_err(|e| Error::Internal(e.to_string()))?;
            let (src_root2, placements2, archives2, dest2) = (
                src_root.clone(),
                placements.clone(),
                archives.clone(),
                dest.clone(),
            );
            let producer = std::thread::spawn(move || -> Result<()> {
                let mut tar = tar::Builder::new(writer);
                context::append_placements(&mut tar, &src_root2, &placements2, attrs)?;
                for a in &archives2 {
                    let f = std::fs::File::open(a).map_err(|e| Error::User(e.to_string()))?;
                    let r = berth_images::decompress(f).map_err(|e| Error::User(e.to_string()))?;
                    context::append_archive_under(&mut tar, r, &context::clean(&dest2))?;
                }
                tar.into_inner()
                    .map_err(|e| Error::Internal(e.to_string()))?;
                Ok(())
            });
            let mut reader = reader;
            let put = self.containers.archive_put(&cid, "/", true, &mut reader);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            producer
                .join()
                .map_err(|_| Error::Internal("copy writer panicked".into()))??;
            put?;
            let commit = CommitOptions {
                created_by,
                author: stage.author.clone(),
                ..CommitOptions::default()
            };
            let id = self
                .containers
                .commit_with_config(&cid, &stage.config, &commit)?;
            cache::store(&self.db, &key, &id)?;
            Ok(id)
        })();
        let _ = self.containers.remove(&cid, true);
        let id = result?;
        out(stream(format!(" ---> {}\n", short(&id))));
        stage.image = Some(id);
        Ok(())
    }

    /// ADD's URLs downloaded into `dir`, each named after its path's last segment and
    /// readable by its owner only, as Docker leaves them; returns the names.
    fn download(&self, urls: &[String], dir: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for url in urls {
            // `scheme://host/dir/name?query` → `name`; a URL without a path → `download`.
            let path = url.split(['?', '#']).next().unwrap_or(url);
            let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
            let name = after_host
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("download")
                .to_string();
            let file = dir.join(&name);
            (self.fetch)(url, &file).map_err(|e| Error::User(format!("ADD {url}: {e}")))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::Internal(e.to_string()))?;
            names.push(name);
        }
        Ok(names)
    }

    /// Copies what `srcs` name out of `image` into `dir`, at the same paths.
    fn stage_from_image(&self, image: &str, srcs: &[String], dir: &Path) -> Result<()> {
        let cid = self.containers.create(
            None,
            &json!({"Image": image, "Cmd": ["/nonexistent"], "Entrypoint": [""]}),
        )?;
        let result = (|| -> Result<()> {
            for s in srcs {
                let rel = context::clean(s);
                // With a wildcard, the directory above the first wildcard is fetched whole.
                let mut fetch = PathBuf::new();
                for c in rel.components() {
                    if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
                        break;
                    }
                    fetch.push(c);
                }
                let parent = fetch.parent().map(Path::to_path_buf).unwrap_or_default();
                let target = dir.join(&parent);
                std::fs::create_dir_all(&target).map_err(|e| Error::Internal(e.to_string()))?;
                let mut tar = Vec::new();
                self.containers
                    .archive_get(&cid, &format!("/{}", fetch.display()), &mut tar)
                    .map_err(|e| Error::User(format!("COPY --from: {e}")))?;
                berth_snapshots::unpack::unpack(tar.as_slice(), &target)
                    .map_err(|e| Error::Internal(format!("COPY --from: {e}")))?;
            }
            Ok(())
        })();
        let _ = self.containers.remove(&cid, true);
        result
    }

    /// `--chown` and `--chmod` as ids and a mode; names are looked up in the image's
    /// /etc/passwd and /etc/group.
    fn owner(&self, cid: &str, chown: Option<&str>, chmod: Option<u32>) -> Result<Attrs> {
        let mut attrs = Attrs {
            mode: chmod,
            ..Attrs::default()
        };
        let Some(spec) = chown.filter(|s| !s.is_empty()) else {
            return Ok(attrs);
        };
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let lookup = |file: &str, name: &str| -> Result<(u32, u32)> {
            if let Ok(n) = name.parse::<u32>() {
                return Ok((n, n));
            }
            let mut tar = Vec::new();
            self.containers.archive_get(cid, file, &mut tar).map_err(|_| {
                Error::User(format!("unable to convert uid/gid chown string to host mapping: no such user: {name}"))
            })?;
            let mut a = tar::Archive::new(tar.as_slice());
            let mut text = String::new();
            if let Some(Ok(mut e)) = a
                .entries()
                .map_err(|e| Error::Internal(e.to_string()))?
                .next()
            {
                std::io::Read::read_to_string(&mut e, &mut text)
                    .map_err(|e| Error::Internal(e.to_string()))?;
            }
            text.lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.first() == Some(&name) && f.len() > 3)
                .map(|f| (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0)))
                .ok_or_else(|| Error::User(format!("unable to convert uid/gid chown string to host mapping: no such user or group: {name}")))
        };
        let (uid, primary) = lookup("/etc/passwd", user)?;
        attrs.uid = uid;
        attrs.gid = match group {
            Some(g) => lookup("/etc/group", g)?.0,
            None if user.parse::<u32>().is_ok() => uid,
            None => primary,
        };
        Ok(attrs)
    }
}

/// dockerd's rule: once the Dockerfile is read, `.dockerignore` and the Dockerfile leave
/// the context if `.dockerignore` names them (clients send both regardless).
fn drop_ignored_build_files(root: &Path, dockerfile: &str) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(root.join(".dockerignore")) else {
        return Ok(());
    };
    let ignore = berth_dockerfile::Ignore::parse(&text).map_err(Error::User)?;
    for name in [".dockerignore", dockerfile] {
        let rel = context::clean(name);
        if ignore.excludes(&rel.to_string_lossy()) {
            let _ = std::fs::remove_file(root.join(rel));
        }
    }
    Ok(())
}

/// A shell-form RUN's script with its heredocs: `RUN <<EOF` alone runs the heredoc as
/// the script (as buildkit does); otherwise the shell reads the heredocs itself
/// (`RUN cat <<EOF > /file`), so they are put back after the line.
fn with_heredocs(ins: &Instruction) -> String {
    let line = ins.values().first().copied().unwrap_or("").to_string();
    let Some(first) = ins.heredocs.first() else {
        return line;
    };
    let bare = line.split_whitespace().all(|w| {
        berth_dockerfile::parser::heredoc(w)
            .ok()
            .flatten()
            .is_some()
    });
    if bare && ins.heredocs.len() == 1 {
        return first.content.clone();
    }
    let mut script = line;
    for h in &ins.heredocs {
        script.push('\n');
        script.push_str(&h.content);
        script.push_str(&h.name);
    }
    script
}

fn stream(text: String) -> Value {
    json!({"stream": text})
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn familiar(tag: &str) -> String {
    match tag.rsplit_once(':') {
        Some((_, t)) if !t.contains('/') => tag.to_string(),
        _ => format!("{tag}:latest"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn set_map(c: &mut Value, key: &str, k: &str, v: Value) {
    if !c[key].is_object() {
        c[key] = json!({});
    }
    c[key][k] = v;
}

/// Go's `%q` of a string list, as Docker's history lines show commands.
fn go_list(v: &[String]) -> String {
    let q: Vec<String> = v
        .iter()
        .map(|s| berth_dockerfile::parser::go_quote(s))
        .collect();
    format!("[{}]", q.join(" "))
}

fn expand(lex: &Lex, word: &str, env: &Vec<String>) -> Result<String> {
    lex.process_word(word, env)
        .map_err(|e| Error::User(e.to_string()))
}

/// CMD/ENTRYPOINT/RUN's command: the JSON array, or the shell with the line.
fn command_form(ins: &Instruction, config: &Value) -> Vec<String> {
    if ins.json {
        return ins.values().iter().map(|s| s.to_string()).collect();
    }
    let line = ins.values().first().copied().unwrap_or("").to_string();
    let mut shell = strings(&config["Shell"]);
    if shell.is_empty() {
        shell = vec!["/bin/sh".into(), "-c".into()];
    }
    shell.push(line);
    shell
}

fn healthcheck(ins: &Instruction) -> Result<Value> {
    let values = ins.values();
    let kind = values.first().copied().unwrap_or("").to_uppercase();
    if kind == "NONE" {
        if values.len() > 1 {
            return Err(Error::User("HEALTHCHECK NONE takes no arguments".into()));
        }
        return Ok(json!({"Test": ["NONE"]}));
    }
    if kind != "CMD" {
        return Err(Error::User(format!(
            "Unknown type {kind:?} in HEALTHCHECK (try CMD)"
        )));
    }
    let rest: Vec<String> = values[1..].iter().map(|s| s.to_string()).collect();
    let test = if ins.json {
        let mut t = vec!["CMD".to_string()];
        t.extend(rest);
        t
    } else {
        vec!["CMD-SHELL".to_string(), rest.join(" ")]
    };
    let mut hc = Map::new();
    hc.insert("Test".into(), json!(test));
    for f in &ins.flags {
        let (k, v) = f
            .trim_start_matches("--")
            .split_once('=')
            .unwrap_or((f.as_str(), ""));
        let dur = |v: &str| {
            berth_types_duration(v)
                .ok_or_else(|| Error::User(format!("invalid duration for --{k}: {v}")))
        };
        match k {
            "interval" => hc.insert("Interval".into(), json!(dur(v)?)),
            "timeout" => hc.insert("Timeout".into(), json!(dur(v)?)),
            "start-period" => hc.insert("StartPeriod".into(), json!(dur(v)?)),
            "start-interval" => hc.insert("StartInterval".into(), json!(dur(v)?)),
            "retries" => hc.insert(
                "Retries".into(),
                json!(
                    v.parse::<u64>()
                        .map_err(|_| Error::User(format!("invalid --retries: {v}")))?
                ),
            ),
            _ => return Err(Error::User(format!("unknown flag: --{k}"))),
        };
    }
    Ok(Value::Object(hc))
}

/// A Go duration in nanoseconds.
fn berth_types_duration(v: &str) -> Option<i64> {
    berth_types::time::parse_go_duration(v).map(|secs| (secs * 1e9).round() as i64)
}

/// The ARGs before the first FROM, then the stages.
#[allow(clippy::type_complexity)]
fn split_stages(ins: &[Instruction]) -> Result<(Vec<(String, Option<String>)>, Vec<StageDef<'_>>)> {
    const KNOWN: &[&str] = &[
        "add",
        "arg",
        "cmd",
        "copy",
        "entrypoint",
        "env",
        "expose",
        "from",
        "healthcheck",
        "label",
        "maintainer",
        "onbuild",
        "run",
        "shell",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    ];
    if let Some(bad) = ins.iter().find(|i| !KNOWN.contains(&i.keyword().as_str())) {
        return Err(Error::User(format!(
            "dockerfile parse error on line {}: unknown instruction: {}",
            bad.start_line,
            bad.cmd.to_uppercase()
        )));
    }
    let mut meta = Vec::new();
    let mut stages: Vec<StageDef<'_>> = Vec::new();
    for i in ins {
        match (i.keyword().as_str(), stages.last_mut()) {
            ("from", _) => {
                let v = i.values();
                let name = match v.as_slice() {
                    [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                        Some(name.to_lowercase())
                    }
                    [_] => None,
                    _ => {
                        return Err(Error::User(format!(
                            "FROM requires either one or three arguments: {}",
                            i.original.trim()
                        )));
                    }
                };
                stages.push(StageDef {
                    name,
                    from: i,
                    body: Vec::new(),
                });
            }
            ("arg", None) => {
                for w in i.values() {
                    let (k, v) = match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.trim_matches('"').to_string())),
                        None => (w.to_string(), None),
                    };
                    meta.push((k, v));
                }
            }
            (_, None) => {
                return Err(Error::User(format!(
                    "no build stage in current context: {} comes before FROM",
                    i.cmd.to_uppercase()
                )));
            }
            (_, Some(s)) => s.body.push(i),
        }
    }
    if stages.is_empty() {
        return Err(Error::User(
            "no build stage in current context: the Dockerfile has no FROM".into(),
        ));
    }
    Ok((meta, stages))
}

fn stage_index(stages: &[StageDef<'_>], name: &str) -> Option<usize> {
    if let Ok(i) = name.parse::<usize>() {
        return (i < stages.len()).then_some(i);
    }
    stages
        .iter()
        .position(|s| s.name.as_deref() == Some(name.to_lowercase().as_str()))
}

/// The earlier stages stage `i` uses (its FROM, its COPY --from).
fn stage_refs(stages: &[StageDef<'_>], i: usize, lex: &Lex, env: &Vec<String>) -> Vec<usize> {
    let s = &stages[i];
    let mut refs = Vec::new();
    if let Some(base) = s.from.values().first() {
        refs.push(lex.process_word(base, env).unwrap_or_default());
    }
    for ins in &s.body {
        for f in &ins.flags {
            if let Some(v) = f.strip_prefix("--from=") {
                refs.push(lex.process_word(v, env).unwrap_or_default());
            }
        }
    }
    refs.iter()
        .filter_map(|r| stage_index(stages, r).filter(|j| *j < i))
        .collect()
}

/// The stages `target` depends on (FROM and COPY --from), with it, in file order.
fn needed_stages(
    stages: &[StageDef<'_>],
    target: usize,
    lex: &Lex,
    meta: &[(String, Option<String>)],
    opts: &BuildOptions,
) -> Vec<usize> {
    let env = arg_env(meta, opts);
    let mut needed = HashSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if needed.insert(i) {
            todo.extend(stage_refs(stages, i, lex, &env));
        }
    }
    let mut v: Vec<usize> = needed.into_iter().collect();
    v.sort();
    v
}

/// The values ARGs have for FROM lines: their defaults, overridden by `--build-arg`.
fn arg_env(meta: &[(String, Option<String>)], opts: &BuildOptions) -> Vec<String> {
    meta.iter()
        .filter_map(|(k, v)| {
            let value = match opts.build_args.get(k) {
                Some(Some(b)) => Some(b.clone()),
                _ => v.clone(),
            };
            value.map(|v| format!("{k}={v}"))
        })
        .collect()
}

/// Proxy arguments passed with `--build-arg`: usable without an ARG.
fn predefined(opts: &BuildOptions) -> Vec<(String, Option<String>)> {
    PREDEFINED_ARGS
        .iter()
        .filter_map(|k| opts.build_args.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// What `$VAR` means in a stage's instructions: its ARGs, then its ENV (which wins).
fn stage_env(stage: &Stage, opts: &BuildOptions) -> Vec<String> {
    let mut env: Vec<String> = predefined(opts)
        .into_iter()
        .chain(stage.args.iter().cloned())
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();
    env.extend(strings(&stage.config["Env"]));
    env
}

fn is_archive(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(mut r) = berth_images::decompress(f) else {
        return false;
    };
    let mut block = vec![0u8; 512];
    if std::io::Read::read_exact(&mut r, &mut block).is_err() {
        return false;
    }
    &block[257..262] == b"ustar"
}

/// A scratch directory next to the context (removed on drop).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir_in_context(root: &Path) -> Result<ScratchDir> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = root.with_file_name(format!(
        "{}.from-{n}",
        root.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(ScratchDir(dir))
}
