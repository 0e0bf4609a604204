//! Variable interpolation in compose files: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`,
//! `${VAR+replacement}`, nested in defaults, and `$$` for a literal `$`.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// `${` without a valid name or closing brace.
    Format,
    /// `${VAR:?message}` with VAR unset (or empty).
    Required {
        /// The variable.
        name: String,
        /// The message the file gave.
        message: String,
    },
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Interpolates `s` with `lookup` (None: unset).
pub fn interpolate(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Problem> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let close = matching_brace(&chars, i + 2).ok_or(Problem::Format)?;
                let body: String = chars[i + 2..close].iter().collect();
                out.push_str(&braced(&body, lookup)?);
                i = close + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&lookup(&name).unwrap_or_default());
                i = j;
            }
            // A lone `$` (at the end, before a space...) stays as it is.
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The index of the `}` closing a `${` whose body starts at `from`.
fn matching_brace(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of `${body}`.
fn braced(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Problem> {
    let name_len = body
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map_or(body.len(), |(i, _)| i);
    let (name, rest) = body.split_at(name_len);
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(Problem::Format);
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let word = |w: &str| interpolate(w, lookup);
    let (op, arg) = if let Some(a) = rest.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = rest.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = rest.strip_prefix(":+") {
        (":+", a)
    } else if let Some(a) = rest.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = rest.strip_prefix('?') {
        ("?", a)
    } else if let Some(a) = rest.strip_prefix('+') {
        ("+", a)
    } else if rest.is_empty() {
        ("", "")
    } else {
        return Err(Problem::Format);
    };
    let required = |ok: bool| -> Result<String, Problem> {
        if ok {
            Ok(value.clone().unwrap_or_default())
        } else {
            Err(Problem::Required {
                name: name.to_string(),
                message: word(arg)?,
            })
        }
    };
    match op {
        "" => Ok(value.unwrap_or_default()),
        ":-" if non_empty => Ok(value.unwrap_or_default()),
        ":-" => word(arg),
        "-" if set => Ok(value.unwrap_or_default()),
        "-" => word(arg),
        ":?" => required(non_empty),
        "?" => required(set),
        ":+" if non_empty => word(arg),
        "+" if set => word(arg),
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TAG" => Some("1.2".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("8080".into()),
            _ => None,
        }
    }

    fn i(s: &str) -> Result<String, Problem> {
        interpolate(s, &env)
    }

    #[test]
    fn every_form_of_the_spec() {
        assert_eq!(i("app:${TAG}").unwrap(), "app:1.2");
        assert_eq!(i("app:$TAG-x").unwrap(), "app:1.2-x");
        assert_eq!(i("${NOPE:-latest}").unwrap(), "latest");
        assert_eq!(i("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(i("${EMPTY-d}").unwrap(), "");
        assert_eq!(i("${NOPE-d}").unwrap(), "d");
        assert_eq!(i("${TAG:+set}").unwrap(), "set");
        assert_eq!(i("${NOPE:+set}").unwrap(), "");
        assert_eq!(i("${EMPTY+set}").unwrap(), "set");
        assert_eq!(i("${NOPE:-${PORT}}").unwrap(), "8080");
        assert_eq!(i("${NOPE:-${ALSO:-deep}}").unwrap(), "deep");
        assert_eq!(i("$$HOME and $$").unwrap(), "$HOME and $");
        assert_eq!(i("cost: 5$").unwrap(), "cost: 5$");
        assert_eq!(i("$NOPE").unwrap(), "");
        assert_eq!(
            i("${NOPE:?set NOPE first}").unwrap_err(),
            Problem::Required {
                name: "NOPE".into(),
                message: "set NOPE first".into()
            }
        );
        assert!(i("${EMPTY:?x}").is_err());
        assert_eq!(i("${EMPTY?x}").unwrap(), "");
        assert_eq!(i("${}").unwrap_err(), Problem::Format);
        assert_eq!(i("${TAG").unwrap_err(), Problem::Format);
        assert_eq!(i("${1X}").unwrap_err(), Problem::Format);
    }
}
