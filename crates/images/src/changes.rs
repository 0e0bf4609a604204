//! `--change` lines of `docker import` / `docker commit`: the Dockerfile instructions that
//! only set image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER,
//! VOLUME, WORKDIR), applied to a config object in Docker's field names.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// Applies each line to `config` (the image config's `config` object).
pub fn apply(config: &mut Map<String, Value>, lines: &[String]) -> Result<()> {
    for line in lines {
        apply_one(config, line.trim())?;
    }
    Ok(())
}

fn apply_one(config: &mut Map<String, Value>, line: &str) -> Result<()> {
    let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.insert("Cmd".into(), command(rest));
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), command(rest));
        }
        "ENV" => {
            let env = list(config, "Env");
            for (k, v) in key_values(rest, "ENV")? {
                env.retain(|e| {
                    e.as_str()
                        .and_then(|e| e.split_once('='))
                        .is_none_or(|(ek, _)| ek != k)
                });
                env.push(Value::String(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let labels = object(config, "Labels");
            for (k, v) in key_values(rest, "LABEL")? {
                labels.insert(k, Value::String(v));
            }
        }
        "EXPOSE" => {
            let ports = object(config, "ExposedPorts");
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, json!({}));
            }
        }
        "VOLUME" => {
            let vols = object(config, "Volumes");
            let paths: Vec<String> = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => v,
                Err(_) => rest.split_whitespace().map(str::to_string).collect(),
            };
            for p in paths {
                vols.insert(p, json!({}));
            }
        }
        "USER" => {
            config.insert("User".into(), Value::String(rest.into()));
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), Value::String(rest.into()));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), Value::String(rest.into()));
        }
        "ONBUILD" => {
            list(config, "OnBuild").push(Value::String(rest.into()));
        }
        other => {
            return Err(Error::InvalidInput(format!(
                "{other} is not a valid change command: use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR"
            )));
        }
    }
    Ok(())
}

/// JSON array form as is; shell form wrapped in `/bin/sh -c`.
fn command(rest: &str) -> Value {
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(v) => json!(v),
        Err(_) => json!(["/bin/sh", "-c", rest]),
    }
}

fn list<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let v = config.entry(key).or_insert_with(|| json!([]));
    if !v.is_array() {
        *v = json!([]);
    }
    v.as_array_mut().expect("made an array above")
}

fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = config.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("made an object above")
}

/// `k=v k2="v 2"` pairs, or the legacy `k v` form with one pair.
fn key_values(rest: &str, instr: &str) -> Result<Vec<(String, String)>> {
    let words = shell_words(rest);
    if words.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{instr} needs at least one argument"
        )));
    }
    if !words[0].contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| Error::InvalidInput(format!("{instr} {rest}: use {instr} key=value")))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Error::InvalidInput(format!("{instr} {w}: use key=value")))
        })
        .collect()
}

/// Splits on whitespace outside quotes; quotes are removed, backslash escapes kept simple.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(lines: &[&str]) -> Value {
        let mut c = Map::new();
        apply(
            &mut c,
            &lines.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        Value::Object(c)
    }

    #[test]
    fn instructions() {
        let c = applied(&[
            r#"CMD ["sh"]"#,
            "ENTRYPOINT /bin/app --flag",
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "LABEL maintainer=me",
            "EXPOSE 80 53/udp",
            "WORKDIR /srv",
            "USER nobody",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ]);
        assert_eq!(c["Cmd"], json!(["sh"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/app --flag"]));
        assert_eq!(c["Env"], json!(["B=two words", "A=3"]));
        assert_eq!(c["Labels"]["maintainer"], "me");
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["WorkingDir"], "/srv");
        assert_eq!(c["User"], "nobody");
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        assert_eq!(c["StopSignal"], "SIGINT");
    }

    #[test]
    fn unknown_instruction_is_named() {
        let mut c = Map::new();
        let err = apply(&mut c, &["RUN make".to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("RUN is not a valid change command"),
            "{err}"
        );
    }
}
