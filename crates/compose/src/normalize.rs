//! One file's services in the canonical long form `docker compose config` prints:
//! lists of `KEY=VALUE` as mappings, short port and volume syntax as long syntax,
//! relative paths made absolute against the project directory, `depends_on` lists as
//! mappings with their condition, commands as argument lists.

use std::path::Path;

use serde_json::{Map, Value, json};

type Result<T> = std::result::Result<T, String>;

/// A scalar as the string compose keeps (numbers and booleans as written).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `["A=1", "B"]` or `{A: 1, B: null}` as a mapping of strings (null kept for `B`
/// when `keep_null`, else "").
pub fn string_map(v: &Value, keep_null: bool) -> Value {
    let mut out = Map::new();
    let null = || if keep_null { Value::Null } else { json!("") };
    match v {
        Value::Array(items) => {
            for item in items {
                let Some(s) = scalar(item) else { continue };
                match s.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), json!(v)),
                    None => out.insert(s, null()),
                };
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                out.insert(k.clone(), scalar(v).map_or_else(null, Value::String));
            }
        }
        _ => {}
    }
    Value::Object(out)
}

/// Splits a command string into words as a POSIX shell would (quotes, backslashes),
/// without expanding anything.
pub fn shell_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("unterminated quote in {s:?}")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn command(v: &Value) -> Result<Value> {
    Ok(match v {
        Value::String(s) => json!(shell_words(s)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| json!(scalar(x).unwrap_or_default()))
                .collect(),
        ),
        other => other.clone(),
    })
}

/// An absolute path for `p` relative to `dir` (`~` is the home directory).
pub fn absolute(dir: &Path, p: &str) -> String {
    if let Some(rest) = p.strip_prefix("~/") {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        return format!("{home}/{rest}");
    }
    let joined = if p.starts_with('/') {
        Path::new(p).to_path_buf()
    } else {
        dir.join(p)
    };
    // Lexical clean-up of `.` and `..`, as filepath.Abs does.
    let mut parts: Vec<&str> = Vec::new();
    let text = joined.to_string_lossy().into_owned();
    for seg in text.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `"127.0.0.1:8080-8081:80-81/udp"` and friends as long-syntax ports.
fn ports(v: &Value, path: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for p in v.as_array().into_iter().flatten() {
        if let Some(m) = p.as_object() {
            let mut m = m.clone();
            m.entry("protocol").or_insert(json!("tcp"));
            m.entry("mode").or_insert(json!("ingress"));
            if let Some(pub_) = m.get("published").and_then(scalar) {
                m.insert("published".into(), json!(pub_));
            }
            out.push(Value::Object(m));
            continue;
        }
        let spec = scalar(p).ok_or_else(|| format!("{path}: invalid port {p}"))?;
        out.extend(short_port(&spec).map_err(|e| format!("{path}: {e}"))?);
    }
    Ok(out)
}

fn range(s: &str) -> Result<(u32, u32)> {
    let bad = || format!("invalid port {s:?}");
    match s.split_once('-') {
        Some((a, b)) => Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)),
        None => {
            let n = s.parse().map_err(|_| bad())?;
            Ok((n, n))
        }
    }
}

fn short_port(spec: &str) -> Result<Vec<Value>> {
    let (rest, protocol) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    // An IPv6 host address is bracketed: [::1]:8080:80.
    let (host_ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r
            .split_once("]:")
            .ok_or_else(|| format!("invalid port {spec:?}"))?;
        (Some(ip.to_string()), after.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => (None, rest.to_string()),
        }
    };
    let (published, target) = match rest.rsplit_once(':') {
        Some((p, t)) => (p.to_string(), t.to_string()),
        None => (String::new(), rest),
    };
    let (t0, t1) = range(&target)?;
    let published_range = if published.is_empty() {
        None
    } else {
        Some(range(&published)?)
    };
    let mut out = Vec::new();
    for (i, t) in (t0..=t1).enumerate() {
        let mut m = json!({"mode": "ingress", "target": t, "protocol": protocol});
        if let Some((p0, p1)) = published_range {
            let p = if p1 - p0 == t1 - t0 {
                (p0 + i as u32).to_string()
            } else {
                format!("{p0}-{p1}")
            };
            m["published"] = json!(p);
        }
        if let Some(ip) = &host_ip
            && !ip.is_empty()
        {
            m["host_ip"] = json!(ip);
        }
        out.push(m);
    }
    Ok(out)
}

/// Short-syntax volumes (`./data:/data:ro`, `name:/path`, `/path`) as long syntax.
fn volumes(v: &Value, dir: &Path, path: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for item in v.as_array().into_iter().flatten() {
        if let Some(m) = item.as_object() {
            let mut m = m.clone();
            if m.get("type").and_then(Value::as_str) == Some("bind")
                && let Some(src) = m.get("source").and_then(Value::as_str)
            {
                m.insert("source".into(), json!(absolute(dir, src)));
            }
            out.push(Value::Object(m));
            continue;
        }
        let spec = item
            .as_str()
            .ok_or_else(|| format!("{path}: invalid volume {item}"))?;
        let parts: Vec<&str> = spec.split(':').collect();
        let (src, target, mode) = match parts.as_slice() {
            [t] => ("", *t, ""),
            [s, t] => (*s, *t, ""),
            [s, t, m] => (*s, *t, *m),
            _ => return Err(format!("{path}: invalid volume specification {spec:?}")),
        };
        let opts: Vec<&str> = mode.split(',').filter(|o| !o.is_empty()).collect();
        let mut m = Map::new();
        let is_path = src.starts_with('.') || src.starts_with('/') || src.starts_with('~');
        if src.is_empty() {
            m.insert("type".into(), json!("volume"));
        } else if is_path {
            m.insert("type".into(), json!("bind"));
            m.insert("source".into(), json!(absolute(dir, src)));
        } else {
            m.insert("type".into(), json!("volume"));
            m.insert("source".into(), json!(src));
        }
        m.insert("target".into(), json!(target));
        if opts.contains(&"ro") {
            m.insert("read_only".into(), json!(true));
        }
        if is_path {
            let mut bind = json!({"create_host_path": true});
            if let Some(sel) = opts.iter().find(|o| **o == "z" || **o == "Z") {
                bind["selinux"] = json!(sel);
            }
            m.insert("bind".into(), bind);
        } else {
            let mut vol = json!({});
            if opts.contains(&"nocopy") {
                vol["nocopy"] = json!(true);
            }
            m.insert("volume".into(), vol);
        }
        out.push(Value::Object(m));
    }
    Ok(out)
}

fn depends_on(v: &Value) -> Value {
    let mut out = Map::new();
    match v {
        Value::Array(a) => {
            for s in a.iter().filter_map(Value::as_str) {
                out.insert(
                    s.into(),
                    json!({"condition": "service_started", "required": true}),
                );
            }
        }
        Value::Object(m) => {
            for (k, d) in m {
                let mut d = d.as_object().cloned().unwrap_or_default();
                d.entry("condition").or_insert(json!("service_started"));
                d.entry("required").or_insert(json!(true));
                out.insert(k.clone(), Value::Object(d));
            }
        }
        _ => {}
    }
    Value::Object(out)
}

/// A string or a list of scalars as a list of strings.
pub(crate) fn list_of_strings(v: &Value) -> Value {
    match v {
        Value::String(s) => json!([s]),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| json!(scalar(x).unwrap_or_default()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Normalises one service of a file whose relative paths are relative to `dir`;
/// `env_file`s are read into `environment` with `lookup` for their interpolation.
pub fn service(
    name: &str,
    s: &Value,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Value> {
    let path = format!("services.{name}");
    let mut s = s.as_object().cloned().unwrap_or_default();
    if let Some(b) = s.get("build").cloned() {
        let mut build = match b {
            Value::String(ctx) => json!({"context": ctx}),
            other => other,
        };
        let ctx = build["context"].as_str().unwrap_or(".").to_string();
        // A context may also be a URL (git, http): those stay as given.
        if !ctx.contains("://") && !ctx.starts_with("git@") {
            build["context"] = json!(absolute(dir, &ctx));
        }
        if build["dockerfile"].is_null() && build["dockerfile_inline"].is_null() {
            build["dockerfile"] = json!("Dockerfile");
        }
        if !build["args"].is_null() {
            build["args"] = string_map(&build["args"], true);
        }
        if !build["labels"].is_null() {
            build["labels"] = string_map(&build["labels"], false);
        }
        s.insert("build".into(), build);
    }
    let mut environment = Map::new();
    if let Some(files) = s.remove("env_file") {
        for f in list_of_strings(&files).as_array().into_iter().flatten() {
            let (file, required) = match f {
                Value::Object(m) => (
                    m.get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    m.get("required").and_then(Value::as_bool).unwrap_or(true),
                ),
                other => (other.as_str().unwrap_or("").to_string(), true),
            };
            let full = absolute(dir, &file);
            let text = match std::fs::read_to_string(&full) {
                Ok(t) => t,
                Err(_) if !required => continue,
                Err(e) => return Err(format!("{path}.env_file: {full}: {e}")),
            };
            let vars = crate::env::parse(&text, lookup).map_err(|e| format!("{full}: {e}"))?;
            for (k, v) in vars {
                environment.insert(k, v.map_or(Value::Null, Value::String));
            }
        }
    }
    if let Some(env) = s.get("environment") {
        for (k, v) in string_map(env, true).as_object().into_iter().flatten() {
            environment.insert(k.clone(), v.clone());
        }
    }
    if !environment.is_empty() || s.contains_key("environment") {
        // A bare `KEY` takes the value from the shell's environment, as compose does.
        for (k, v) in environment.iter_mut() {
            if v.is_null()
                && let Some(val) = lookup(k)
            {
                *v = json!(val);
            }
        }
        s.insert("environment".into(), Value::Object(environment));
    }
    for key in ["labels", "sysctls", "annotations"] {
        if let Some(v) = s.get(key).cloned() {
            s.insert(key.into(), string_map(&v, false));
        }
    }
    // `label_file`s are read (KEY=VALUE lines) under the `labels` given inline.
    if let Some(files) = s.remove("label_file") {
        let mut labels = Map::new();
        let files = list_of_strings(&files);
        let Some(files) = files.as_array() else {
            return Err(format!("{path}.label_file: give a file or a list of files"));
        };
        for file in files {
            let full = absolute(dir, file.as_str().unwrap_or(""));
            let text = std::fs::read_to_string(&full)
                .map_err(|e| format!("{path}.label_file: {full}: {e}"))?;
            let pairs = crate::env::parse(&text, &|_| None).map_err(|e| format!("{full}: {e}"))?;
            for (k, v) in pairs {
                labels.insert(k, json!(v.unwrap_or_default()));
            }
        }
        for (k, v) in s
            .get("labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            labels.insert(k.clone(), v.clone());
        }
        s.insert("labels".into(), Value::Object(labels));
    }
    for key in ["command", "entrypoint"] {
        if let Some(v) = s.get(key).cloned() {
            s.insert(
                key.into(),
                command(&v).map_err(|e| format!("{path}.{key}: {e}"))?,
            );
        }
    }
    // Hooks and watch's `sync+exec` take commands as `command:` does: a string is split
    // into words, not given to a shell.
    for key in ["post_start", "pre_stop"] {
        for (i, hook) in s
            .get_mut(key)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(c) = hook.get("command").cloned() {
                hook["command"] =
                    command(&c).map_err(|e| format!("{path}.{key}[{i}].command: {e}"))?;
            }
        }
    }
    if let Some(rules) = s
        .get_mut("develop")
        .and_then(|d| d.get_mut("watch"))
        .and_then(Value::as_array_mut)
    {
        for (i, rule) in rules.iter_mut().enumerate() {
            if let Some(c) = rule.get("exec").and_then(|e| e.get("command")).cloned() {
                rule["exec"]["command"] = command(&c)
                    .map_err(|e| format!("{path}.develop.watch[{i}].exec.command: {e}"))?;
            }
        }
    }
    if let Some(test) = s.get("healthcheck").and_then(|h| h.get("test")).cloned()
        && let Value::String(t) = test
    {
        s.get_mut("healthcheck").expect("present")["test"] = json!(["CMD-SHELL", t]);
    }
    if let Some(p) = s.get("ports").cloned() {
        s.insert(
            "ports".into(),
            Value::Array(ports(&p, &format!("{path}.ports"))?),
        );
    }
    if let Some(v) = s.get("volumes").cloned() {
        s.insert(
            "volumes".into(),
            Value::Array(volumes(&v, dir, &format!("{path}.volumes"))?),
        );
    }
    if let Some(d) = s.get("depends_on").cloned() {
        s.insert("depends_on".into(), depends_on(&d));
    }
    if let Some(Value::Array(nets)) = s.get("networks").cloned() {
        let map: Map<String, Value> = nets
            .iter()
            .filter_map(Value::as_str)
            .map(|n| (n.to_string(), Value::Null))
            .collect();
        s.insert("networks".into(), Value::Object(map));
    }
    for key in [
        "expose",
        "dns",
        "dns_search",
        "tmpfs",
        "cap_add",
        "cap_drop",
        "security_opt",
    ] {
        if let Some(v) = s.get(key).cloned() {
            s.insert(key.into(), list_of_strings(&v));
        }
    }
    Ok(Value::Object(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_syntax_becomes_long_syntax() {
        let dir = Path::new("/proj");
        let s = json!({
            "build": "./app",
            "command": "sh -c 'echo \"hi there\"'",
            "environment": ["A=1", "B"],
            "labels": {"n": 1},
            "ports": ["8080:80", "127.0.0.1:5000-5001:5000-5001/udp", 9000, {"target": 53, "published": 53}],
            "volumes": ["./data:/data:ro", "cache:/cache:nocopy", "/anon"],
            "depends_on": ["db"],
            "networks": ["front"],
            "healthcheck": {"test": "wget -q localhost"},
            "dns": "8.8.8.8",
            "post_start": [{"command": "sh -c 'exit 3'"}],
            "develop": {"watch": [{"action": "sync+exec", "path": ".", "target": "/a",
                "exec": {"command": "kill -HUP 1"}}]}
        });
        let n = service("web", &s, dir, &|k| (k == "B").then(|| "from-shell".into())).unwrap();
        assert_eq!(
            n["build"],
            json!({"context": "/proj/app", "dockerfile": "Dockerfile"})
        );
        assert_eq!(n["post_start"][0]["command"], json!(["sh", "-c", "exit 3"]));
        assert_eq!(
            n["develop"]["watch"][0]["exec"]["command"],
            json!(["kill", "-HUP", "1"])
        );
        assert_eq!(n["command"], json!(["sh", "-c", "echo \"hi there\""]));
        assert_eq!(n["environment"], json!({"A": "1", "B": "from-shell"}));
        assert_eq!(n["labels"], json!({"n": "1"}));
        assert_eq!(
            n["ports"][0],
            json!({"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"})
        );
        assert_eq!(n["ports"][2]["host_ip"], "127.0.0.1");
        assert_eq!(n["ports"][2]["published"], "5001");
        assert_eq!(n["ports"][2]["protocol"], "udp");
        assert_eq!(
            n["ports"][3],
            json!({"mode": "ingress", "target": 9000, "protocol": "tcp"})
        );
        assert_eq!(n["ports"][4]["published"], "53");
        assert_eq!(
            n["volumes"][0],
            json!({"type": "bind", "source": "/proj/data", "target": "/data", "read_only": true, "bind": {"create_host_path": true}})
        );
        assert_eq!(
            n["volumes"][1],
            json!({"type": "volume", "source": "cache", "target": "/cache", "volume": {"nocopy": true}})
        );
        assert_eq!(
            n["volumes"][2],
            json!({"type": "volume", "target": "/anon", "volume": {}})
        );
        assert_eq!(
            n["depends_on"],
            json!({"db": {"condition": "service_started", "required": true}})
        );
        assert_eq!(n["networks"], json!({"front": null}));
        assert_eq!(
            n["healthcheck"]["test"],
            json!(["CMD-SHELL", "wget -q localhost"])
        );
        assert_eq!(n["dns"], json!(["8.8.8.8"]));
    }

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(absolute(Path::new("/a/b"), "../c/./d"), "/a/c/d");
        assert_eq!(absolute(Path::new("/a"), "/x/y/"), "/x/y");
        assert_eq!(
            shell_words("a 'b c' \"d\\\"e\" f\\ g").unwrap(),
            ["a", "b c", "d\"e", "f g"]
        );
    }
}
