//! `.env` and `env_file` files: `KEY=VALUE` lines, `export` prefixes, comments, single
//! quotes (literal), double quotes (escapes and interpolation), unquoted values (trailing
//! ` #comment` dropped, interpolated), and `KEY` alone (taken from the environment).

use std::collections::BTreeMap;

use crate::interpolate::interpolate;

/// Parses the text of an env file. `outer` supplies variables for interpolation and for
/// bare `KEY` lines; earlier lines of the file come first. Errors name the line.
pub fn parse(
    text: &str,
    outer: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut vars: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            vars.insert(line.to_string(), outer(line));
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("line {}: invalid variable name {key:?}", n + 1));
        }
        let lookup = |name: &str| -> Option<String> {
            vars.get(name).cloned().flatten().or_else(|| outer(name))
        };
        let value = value.trim_start();
        let parsed = if let Some(rest) = value.strip_prefix('\'') {
            rest.rfind('\'')
                .map(|end| rest[..end].to_string())
                .ok_or_else(|| format!("line {}: unterminated quote", n + 1))?
        } else if let Some(rest) = value.strip_prefix('"') {
            let end = closing_double_quote(rest)
                .ok_or_else(|| format!("line {}: unterminated quote", n + 1))?;
            let unescaped = unescape(&rest[..end]);
            interpolate(&unescaped, &lookup)
                .map_err(|_| format!("line {}: invalid interpolation", n + 1))?
        } else {
            let bare = match value.find(" #") {
                Some(i) => &value[..i],
                None => value,
            };
            interpolate(bare.trim_end(), &lookup)
                .map_err(|_| format!("line {}: invalid interpolation", n + 1))?
        };
        vars.insert(key.to_string(), Some(parsed));
    }
    Ok(vars)
}

fn closing_double_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines() {
        let outer = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let text = "# comment\n\nA=1\nexport B = two words # note\nC='$A literal'\nD=\"x\\ny ${A}\"\nE=${B}-$HOME\nHOME\nF=\n";
        let v = parse(text, &outer).unwrap();
        let get = |k: &str| v[k].clone();
        assert_eq!(get("A").as_deref(), Some("1"));
        assert_eq!(get("B").as_deref(), Some("two words"));
        assert_eq!(get("C").as_deref(), Some("$A literal"));
        assert_eq!(get("D").as_deref(), Some("x\ny 1"));
        assert_eq!(get("E").as_deref(), Some("two words-/root"));
        assert_eq!(get("HOME").as_deref(), Some("/root"));
        assert_eq!(get("F").as_deref(), Some(""));
        assert!(parse("A='open\n", &outer).unwrap_err().contains("line 1"));
    }
}
