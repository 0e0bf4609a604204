//! # berth-compose
//!
//! The Compose model: what `docker compose config` computes from compose files.
//!
//! **Owns:** finding the files (`compose.yaml`, `docker-compose.yml`, their override
//! files, `-f`, `COMPOSE_FILE`), `.env` and `--env-file`, variable interpolation,
//! checking keys as `docker compose` does, the Compose Specification's normal forms,
//! `extends`, merging several files, profiles, the project name and the default
//! network, and printing the result as YAML.
//! **Does not:** talk to an engine; `berth compose` (the CLI) turns a [`Project`] into
//! API calls.

pub mod env;
pub mod interpolate;
mod merge;
pub mod normalize;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// A compose file that cannot be used; the message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

type Result<T> = std::result::Result<T, Error>;

/// What `-f`, `-p`, `--env-file`, `--profile`, `--project-directory` and the shell's
/// environment say.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Files in order (empty: found in `working_dir` or its parents).
    pub files: Vec<PathBuf>,
    /// Where to look for files (the current directory).
    pub working_dir: PathBuf,
    /// `--project-directory` (default: the first file's directory).
    pub project_dir: Option<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file` (default: `.env` in the project directory, if present).
    pub env_files: Vec<PathBuf>,
    /// `--profile`.
    pub profiles: Vec<String>,
    /// The shell's environment.
    pub environment: BTreeMap<String, String>,
}

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project name (labels, resource names).
    pub name: String,
    /// Where relative paths point.
    pub dir: PathBuf,
    /// The files it came from.
    pub files: Vec<PathBuf>,
    /// Enabled services, normalised.
    pub services: BTreeMap<String, Value>,
    /// Services left out by profiles.
    pub disabled: BTreeMap<String, Value>,
    /// Top-level networks (with their engine names).
    pub networks: Map<String, Value>,
    /// Top-level volumes (with their engine names).
    pub volumes: Map<String, Value>,
    /// Top-level configs.
    pub configs: Map<String, Value>,
    /// Top-level secrets.
    pub secrets: Map<String, Value>,
    /// The variables interpolation saw (shell over `.env`).
    pub variables: BTreeMap<String, String>,
}

const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The compose file in `dir` or the nearest parent, with its override file.
fn discover(dir: &Path) -> Result<Vec<PathBuf>> {
    for d in dir.ancestors() {
        if let Some(f) = DEFAULT_FILES
            .iter()
            .map(|f| d.join(f))
            .find(|p| p.is_file())
        {
            let mut files = vec![f.clone()];
            let stem = if f
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("docker-"))
            {
                "docker-compose.override"
            } else {
                "compose.override"
            };
            for ext in ["yaml", "yml"] {
                let o = d.join(format!("{stem}.{ext}"));
                if o.is_file() {
                    files.push(o);
                    break;
                }
            }
            return Ok(files);
        }
    }
    Err(Error(format!(
        "no configuration file provided: not found (looked for {} in {} and its parents)",
        DEFAULT_FILES.join(", "),
        dir.display()
    )))
}

/// Parses YAML as go-yaml v3 reads it (what docker compose uses): `0755` is octal,
/// `yes`/`no` are strings.
fn parse_yaml(text: &str, file: &Path) -> Result<Value> {
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    options.strict_booleans = true;
    options.with_snippet = false;
    let v: Value = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        Error(format!(
            "{}: yaml: {}",
            file.display(),
            first_line(&e.to_string())
        ))
    })?;
    Ok(if v.is_null() { json!({}) } else { v })
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

/// Interpolates every string value of `v`, naming the key on failure.
fn interpolate_tree(
    v: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    match v {
        Value::String(s) => {
            *s = interpolate::interpolate(s, lookup).map_err(|p| match p {
                interpolate::Problem::Format => Error(format!(
                    "invalid interpolation format for {path}: {s:?}; you may need to escape any $ with another $"
                )),
                interpolate::Problem::Required { name, message } => Error(format!(
                    "required variable {name} is missing a value: {message}"
                )),
            })?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, &format!("{path}.[{i}]"), lookup)?;
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate_tree(item, &p, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Docker's rule for project names: lowercase letters, digits, dashes and underscores,
/// starting with a letter or digit.
pub fn normalize_project_name(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect::<String>()
        .trim_start_matches(['-', '_'])
        .to_string()
}

struct Loader<'a> {
    project_dir: PathBuf,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Loader<'_> {
    /// One file: parsed, interpolated, checked, its services normalised and extended.
    fn file(&self, path: &Path, seen: &mut Vec<PathBuf>) -> Result<Value> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error(format!("open {}: {e}", path.display())))?;
        let mut doc = parse_yaml(&text, path)?;
        interpolate_tree(&mut doc, "", self.lookup)?;
        schema::validate(&doc).map_err(|e| Error(format!("validating {}: {e}", path.display())))?;
        let services: Map<String, Value> = doc["services"].as_object().cloned().unwrap_or_default();
        let mut normal = Map::new();
        for (name, s) in &services {
            let n = normalize::service(name, s, &self.project_dir, self.lookup).map_err(Error)?;
            normal.insert(name.clone(), n);
        }
        let mut resolved = Map::new();
        for name in services.keys() {
            let s = self.extended(path, name, &normal, seen)?;
            resolved.insert(name.clone(), s);
        }
        doc["services"] = Value::Object(resolved);
        Ok(doc)
    }

    /// A service with its `extends` chain applied.
    fn extended(
        &self,
        file: &Path,
        name: &str,
        services: &Map<String, Value>,
        seen: &mut Vec<PathBuf>,
    ) -> Result<Value> {
        let mut s = services[name].clone();
        let Some(ext) = s.as_object_mut().and_then(|m| m.remove("extends")) else {
            return Ok(s);
        };
        let (base_name, base_file) = match &ext {
            Value::String(n) => (n.clone(), None),
            Value::Object(m) => (
                m.get("service")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                m.get("file").and_then(Value::as_str).map(str::to_string),
            ),
            _ => {
                return Err(Error(format!(
                    "services.{name}.extends must be a service name or a mapping"
                )));
            }
        };
        let key = file.join("#").join(&base_name);
        if seen.contains(&key) {
            return Err(Error(format!(
                "services.{name}.extends: circular reference to {base_name}"
            )));
        }
        seen.push(key);
        let base = match base_file {
            None => {
                if !services.contains_key(&base_name) {
                    return Err(Error(format!(
                        "services.{name}.extends: cannot extend service {base_name:?}: not found in {}",
                        file.display()
                    )));
                }
                self.extended(file, &base_name, services, seen)?
            }
            Some(f) => {
                let dir = file.parent().unwrap_or(Path::new("/"));
                let other = PathBuf::from(normalize::absolute(dir, &f));
                let doc = self.file(&other, seen)?;
                doc["services"].get(&base_name).cloned().ok_or_else(|| {
                    Error(format!(
                        "services.{name}.extends: cannot extend service {base_name:?}: not found in {}",
                        other.display()
                    ))
                })?
            }
        };
        seen.pop();
        // What only makes sense for the base itself is not inherited.
        let mut base = base;
        if let Some(m) = base.as_object_mut() {
            for k in ["links", "volumes_from", "depends_on", "container_name"] {
                m.remove(k);
            }
        }
        Ok(merge::service(&base, &s))
    }
}

/// Loads a project as `docker compose` would.
pub fn load(opts: &Options) -> Result<Project> {
    let files: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files
            .iter()
            .map(|f| absolute_path(&opts.working_dir, f))
            .collect()
    } else if let Some(list) = opts
        .environment
        .get("COMPOSE_FILE")
        .filter(|s| !s.is_empty())
    {
        list.split(':')
            .map(|f| absolute_path(&opts.working_dir, Path::new(f)))
            .collect()
    } else {
        discover(&opts.working_dir)?
    };
    let project_dir = match &opts.project_dir {
        Some(d) => absolute_path(&opts.working_dir, d),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| opts.working_dir.clone()),
    };
    let shell = &opts.environment;
    let env_files: Vec<PathBuf> = opts
        .env_files
        .iter()
        .map(|f| absolute_path(&opts.working_dir, f))
        .collect();
    let variables = variables(&project_dir, &env_files, shell)?;
    let lookup = |k: &str| variables.get(k).cloned();
    let loader = Loader {
        project_dir: project_dir.clone(),
        lookup: &lookup,
    };
    let mut merged = json!({});
    for f in &files {
        let doc = loader.file(f, &mut Vec::new())?;
        merged = merge_files(&merged, &doc);
    }
    include(&mut merged, &project_dir, shell, &mut files.clone())?;
    let name = opts
        .project_name
        .clone()
        .or_else(|| variables.get("COMPOSE_PROJECT_NAME").cloned())
        .or_else(|| merged["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            project_dir
                .file_name()
                .map_or("default".into(), |n| n.to_string_lossy().into_owned())
        });
    let name = normalize_project_name(&name);
    if name.is_empty() {
        return Err(Error("project name must not be empty: use -p".into()));
    }
    let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if let Some(p) = variables.get("COMPOSE_PROFILES") {
        active.extend(p.split(',').filter(|s| !s.is_empty()).map(str::to_string));
    }
    let mut services = BTreeMap::new();
    let mut disabled = BTreeMap::new();
    for (n, s) in merged["services"].as_object().cloned().unwrap_or_default() {
        let profiles: Vec<&str> = s["profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if profiles.is_empty()
            || active.contains("*")
            || profiles.iter().any(|p| active.contains(*p))
        {
            services.insert(n, s);
        } else {
            disabled.insert(n, s);
        }
    }
    let mut project = Project {
        name,
        dir: project_dir,
        files,
        services,
        disabled,
        networks: merged["networks"].as_object().cloned().unwrap_or_default(),
        volumes: merged["volumes"].as_object().cloned().unwrap_or_default(),
        configs: merged["configs"].as_object().cloned().unwrap_or_default(),
        secrets: merged["secrets"].as_object().cloned().unwrap_or_default(),
        variables,
    };
    project.settle()?;
    Ok(project)
}

/// The variables interpolation sees: the env files (`.env` in `dir` when none are
/// given), the shell's environment over them.
fn variables(
    dir: &Path,
    env_files: &[PathBuf],
    shell: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let default = dir.join(".env");
    let files: Vec<PathBuf> = if env_files.is_empty() {
        default.is_file().then_some(default).into_iter().collect()
    } else {
        env_files.to_vec()
    };
    let mut dotenv: BTreeMap<String, String> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error(format!("couldn't read env file {}: {e}", f.display())))?;
        let outer = |k: &str| shell.get(k).cloned().or_else(|| dotenv.get(k).cloned());
        let vars = env::parse(&text, &outer).map_err(|e| Error(format!("{}: {e}", f.display())))?;
        for (k, v) in vars {
            dotenv.insert(k, v.unwrap_or_default());
        }
    }
    dotenv.extend(shell.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(dotenv)
}

/// Strings from a string or a list of them (normalize's rule).
fn one_or_many(v: Option<&Value>) -> Vec<String> {
    v.map(normalize::list_of_strings)
        .and_then(|l| l.as_array().cloned())
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The resources an `include` may add.
const INCLUDED: [&str; 5] = ["services", "networks", "volumes", "configs", "secrets"];

/// `include:`: each entry's files are loaded as a project of their own (relative paths
/// and `.env` from their directory or `project_directory`, `env_file` for their
/// variables), includes of their own first, and their resources added to `doc`; a
/// resource defined on both sides is an error, as in docker compose.
fn include(
    doc: &mut Value,
    dir: &Path,
    shell: &BTreeMap<String, String>,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
    let Some(entries) = doc.as_object_mut().and_then(|m| m.remove("include")) else {
        return Ok(());
    };
    for entry in entries.as_array().into_iter().flatten() {
        let (paths, project_dir, env_files) = match entry {
            Value::String(p) => (vec![p.clone()], None, Vec::new()),
            Value::Object(m) => (
                one_or_many(m.get("path")),
                m.get("project_directory").and_then(Value::as_str),
                one_or_many(m.get("env_file")),
            ),
            other => return Err(Error(format!("include: invalid entry {other}"))),
        };
        if paths.is_empty() {
            return Err(Error("include: an entry needs a path".into()));
        }
        let files: Vec<PathBuf> = paths
            .iter()
            .map(|p| absolute_path(dir, Path::new(p)))
            .collect();
        if let Some(f) = files.iter().find(|f| stack.contains(f)) {
            return Err(Error(format!(
                "include cycle: {} includes itself",
                f.display()
            )));
        }
        let sub_dir = match project_dir {
            Some(d) => absolute_path(dir, Path::new(d)),
            None => files[0]
                .parent()
                .map_or_else(|| dir.to_path_buf(), Path::to_path_buf),
        };
        let env_files: Vec<PathBuf> = env_files
            .iter()
            .map(|f| absolute_path(dir, Path::new(f)))
            .collect();
        let vars = variables(&sub_dir, &env_files, shell)?;
        let lookup = |k: &str| vars.get(k).cloned();
        let loader = Loader {
            project_dir: sub_dir.clone(),
            lookup: &lookup,
        };
        let mut sub = json!({});
        for f in &files {
            sub = merge_files(&sub, &loader.file(f, &mut Vec::new())?);
        }
        let depth = stack.len();
        stack.extend(files.iter().cloned());
        include(&mut sub, &sub_dir, shell, stack)?;
        stack.truncate(depth);
        // Their secret and config files are theirs: relative to their directory.
        for kind in ["secrets", "configs"] {
            for (_, v) in sub[kind].as_object_mut().into_iter().flatten() {
                if let Some(f) = v["file"].as_str() {
                    v["file"] = json!(normalize::absolute(&sub_dir, f));
                }
            }
        }
        for kind in INCLUDED {
            for (name, v) in sub[kind].as_object().into_iter().flatten() {
                if doc[kind].get(name).is_some() {
                    return Err(Error(format!(
                        "{kind}.{name} from {} conflicts with one already defined",
                        files[0].display()
                    )));
                }
                if !doc[kind].is_object() {
                    doc[kind] = json!({});
                }
                doc[kind][name] = v.clone();
            }
        }
    }
    Ok(())
}

fn absolute_path(dir: &Path, p: &Path) -> PathBuf {
    PathBuf::from(normalize::absolute(dir, &p.to_string_lossy()))
}

/// Files merged: services by the service rules, other sections key by key.
fn merge_files(base: &Value, over: &Value) -> Value {
    let mut out = base.as_object().cloned().unwrap_or_default();
    for (k, v) in over.as_object().into_iter().flatten() {
        let merged = if k == "services" {
            let mut s = out
                .get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (name, svc) in v.as_object().into_iter().flatten() {
                let m = match s.get(name) {
                    Some(b) => merge::service(b, svc),
                    None => svc.clone(),
                };
                s.insert(name.clone(), m);
            }
            Value::Object(s)
        } else {
            match out.get(k) {
                Some(b) => merge::deep(b, v),
                None => v.clone(),
            }
        };
        out.insert(k.clone(), merged);
    }
    Value::Object(out)
}

impl Project {
    /// Defaults and checks across services: the default network, engine names of
    /// networks and volumes, and references to undefined ones.
    fn settle(&mut self) -> Result<()> {
        let mut wants_default = false;
        for s in self.services.values_mut() {
            let has_mode = s["network_mode"].is_string();
            if !has_mode && s["networks"].as_object().is_none_or(|m| m.is_empty()) {
                s["networks"] = json!({"default": null});
            }
            wants_default |= s["networks"].get("default").is_some();
        }
        if wants_default && !self.networks.contains_key("default") {
            self.networks.insert("default".into(), json!({}));
        }
        for (key, section) in [
            ("networks", &mut self.networks),
            ("volumes", &mut self.volumes),
        ] {
            let _ = key;
            for (k, v) in section.iter_mut() {
                if v.is_null() {
                    *v = json!({});
                }
                if v["name"].is_null() {
                    let external = v["external"].as_bool() == Some(true);
                    v["name"] = json!(if external {
                        k.clone()
                    } else {
                        format!("{}_{k}", self.name)
                    });
                }
            }
        }
        for (sname, s) in &self.services {
            for n in s["networks"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if !self.networks.contains_key(n) {
                    return Err(Error(format!(
                        "service {sname:?} refers to undefined network {n}: invalid compose project"
                    )));
                }
            }
            for v in s["volumes"].as_array().into_iter().flatten() {
                if v["type"] == "volume"
                    && let Some(src) = v["source"].as_str()
                    && !self.volumes.contains_key(src)
                {
                    return Err(Error(format!(
                        "service {sname:?} refers to undefined volume {src}: invalid compose project"
                    )));
                }
            }
            for dep in s["depends_on"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if !self.services.contains_key(dep) && !self.disabled.contains_key(dep) {
                    return Err(Error(format!(
                        "service {sname:?} depends on undefined service {dep:?}: invalid compose project"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The model as JSON (`config --format json`).
    pub fn to_json(&self) -> Value {
        let mut v = json!({"name": self.name, "services": self.services});
        for (k, section) in [
            ("networks", &self.networks),
            ("volumes", &self.volumes),
            ("configs", &self.configs),
            ("secrets", &self.secrets),
        ] {
            if !section.is_empty() {
                v[k] = Value::Object(section.clone());
            }
        }
        v
    }

    /// The model as `docker compose config` prints it: name, services, then networks,
    /// volumes, configs, secrets.
    pub fn to_yaml(&self) -> String {
        let json = self.to_json();
        let mut out = String::new();
        for key in [
            "name", "services", "networks", "volumes", "configs", "secrets",
        ] {
            if let Some(v) = json.get(key) {
                let one = json!({key: v});
                out.push_str(&serde_saphyr::to_string(&one).unwrap_or_default());
            }
        }
        out
    }

    /// Service names in an order that starts dependencies first (`depends_on`),
    /// grouped in waves whose members do not depend on each other.
    pub fn start_order(&self) -> Result<Vec<Vec<String>>> {
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut waves = Vec::new();
        while done.len() < self.services.len() {
            let wave: Vec<String> = self
                .services
                .iter()
                .filter(|(n, _)| !done.contains(*n))
                .filter(|(_, s)| {
                    s["depends_on"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .all(|(d, _)| done.contains(d) || !self.services.contains_key(d))
                })
                .map(|(n, _)| n.clone())
                .collect();
            if wave.is_empty() {
                let left: Vec<&String> = self
                    .services
                    .keys()
                    .filter(|n| !done.contains(*n))
                    .collect();
                return Err(Error(format!("dependency cycle between services {left:?}")));
            }
            done.extend(wave.iter().cloned());
            waves.push(wave);
        }
        Ok(waves)
    }
}
