//! Dockerfile text → instructions, with buildkit's parser rules: the `# escape=` and
//! `# syntax=` directives, comments, line continuations (and the empty ones it warns
//! about), builder flags (`--from=...`), each instruction's argument form (JSON array or
//! shell form, `KEY=VALUE` lists, ONBUILD's nested instruction), and heredocs.

use crate::shell::Lex;

/// A parse error, with the line it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One argument of an instruction: a value, or (ONBUILD) a nested instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A word or string.
    Value(String),
    /// ONBUILD's instruction.
    Instruction(Box<Instruction>),
}

/// A heredoc attached to an instruction (`RUN <<EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word.
    pub name: String,
    /// The file descriptor (`3<<EOF`), 0 when none.
    pub fd: u32,
    /// Whether `$VARS` in the content are expanded (the word was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are removed.
    pub chomp: bool,
    /// The lines up to the terminator.
    pub content: String,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instruction {
    /// The keyword as written (`RUN`, `from`).
    pub cmd: String,
    /// Builder flags (`--from=build`), in order.
    pub flags: Vec<String>,
    /// The arguments, in the shape of the instruction's form.
    pub args: Vec<Arg>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// Heredocs, in order.
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined).
    pub original: String,
    /// First and last physical line.
    pub start_line: usize,
    /// Last physical line.
    pub end_line: usize,
    /// Comments right above it.
    pub comments: Vec<String>,
}

impl Instruction {
    /// The keyword in lower case.
    pub fn keyword(&self) -> String {
        self.cmd.to_lowercase()
    }

    /// The plain values of the arguments.
    pub fn values(&self) -> Vec<&str> {
        self.args
            .iter()
            .filter_map(|a| match a {
                Arg::Value(v) => Some(v.as_str()),
                Arg::Instruction(_) => None,
            })
            .collect()
    }

    /// buildkit's s-expression dump, which its parser corpus compares.
    pub fn dump(&self) -> String {
        let mut s = self.cmd.to_lowercase();
        if !self.flags.is_empty() {
            let quoted: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", quoted.join(" ")));
        }
        for a in &self.args {
            s.push(' ');
            match a {
                Arg::Value(v) => s.push_str(&go_quote(v)),
                Arg::Instruction(i) => s.push_str(&format!("({})", i.dump())),
            }
        }
        s.trim().to_string()
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct Dockerfile {
    /// The instructions in order.
    pub instructions: Vec<Instruction>,
    /// The escape token in effect.
    pub escape: char,
    /// The `# syntax=` directive, if any.
    pub syntax: Option<String>,
    /// Warnings (empty continuation lines).
    pub warnings: Vec<String>,
}

impl Dockerfile {
    /// buildkit's dump of the whole file: one `(instruction)` per line.
    pub fn dump(&self) -> String {
        self.instructions
            .iter()
            .map(|i| format!("({})\n", i.dump()))
            .collect::<String>()
            .trim()
            .to_string()
    }
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsSpace` on the characters a Dockerfile line can hold.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Splits on runs of `[\t\v\f\r ]` (buildkit's `reWhitespace`), at most `n` parts.
fn split_ws(s: &str, n: usize) -> Vec<String> {
    let is_ws = |c: char| matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ');
    let mut parts = Vec::new();
    let mut rest = s;
    while parts.len() + 1 < n {
        match rest.find(is_ws) {
            Some(i) => {
                parts.push(rest[..i].to_string());
                rest = rest[i..].trim_start_matches(is_ws);
            }
            None => break,
        }
    }
    parts.push(rest.to_string());
    parts
}

/// The parser directives' state: only the first lines may hold them.
struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
    syntax: Option<String>,
}

impl Directives {
    /// Looks at a line (already trimmed on the left) for `# key=value`.
    fn parse_line(&mut self, line: &str) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let rest = rest.trim_start();
        let key: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let after = rest[key.len()..].trim_start();
        let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        let Some(value) = after
            .strip_prefix('=')
            .map(str::trim)
            .filter(|v| valid && !v.is_empty())
        else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                if value != "`" && value != "\\" {
                    return Err(format!(
                        "invalid escape token '{value}' does not match ` or \\"
                    ));
                }
                self.escape = value.chars().next().expect("checked");
            }
            "syntax" => self.syntax = Some(value.to_string()),
            _ => {}
        }
        Ok(true)
    }

    /// Removes a line continuation (the escape token, then only spaces or tabs); says
    /// whether the logical line ends here.
    fn trim_continuation(&self, line: &str) -> (String, bool) {
        let trimmed = line.trim_end_matches([' ', '\t']);
        let Some(before) = trimmed.strip_suffix(self.escape) else {
            return (line.to_string(), true);
        };
        if before.is_empty() {
            return (String::new(), false);
        }
        if before.ends_with(self.escape) {
            // An escaped escape token is not a continuation.
            return (line.to_string(), true);
        }
        (before.to_string(), false)
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut d = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
        syntax: None,
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = Dockerfile::default();
    let mut comments: Vec<String> = Vec::new();
    let mut i = 0;
    let err = |line: usize, message: String| ParseError { line, message };
    while i < lines.len() {
        let raw = lines[i];
        if is_comment(raw) {
            let c = raw.trim_start()[1..].trim().to_string();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c);
            }
        }
        let line = raw
            .trim_end_matches(['\r', '\n'])
            .trim_start_matches(is_space);
        if d.parse_line(line).map_err(|m| err(i + 1, m))? {
            comments.pop();
        }
        let line = if is_comment(line) { "" } else { line };
        i += 1;
        let start = i;
        let (first, mut end) = d.trim_continuation(line);
        if end && first.is_empty() {
            continue;
        }
        let mut logical = first;
        let mut empty_continuation = false;
        while !end && i < lines.len() {
            let raw = lines[i];
            let line = raw.trim_end_matches(['\r', '\n']);
            d.parse_line(line).map_err(|m| err(i + 1, m))?;
            i += 1;
            if is_comment(raw) {
                continue;
            }
            if line.trim_start_matches(is_space).is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, e) = d.trim_continuation(line);
            logical.push_str(&part);
            end = e;
        }
        if empty_continuation {
            out.warnings
                .push(format!("Empty continuation line found in: {logical}"));
        }
        let mut ins = instruction(&logical, &d).map_err(|m| err(start, m))?;
        ins.comments = std::mem::take(&mut comments);
        if ins.can_have_heredocs() && logical.contains("<<") {
            for mut doc in heredocs_in(&logical).map_err(|m| err(start, m))? {
                let mut content = String::new();
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let mut candidate = raw.trim_end_matches(['\r', '\n']);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err(err(start, "unterminated heredoc".into()));
                }
                doc.content = content;
                ins.heredocs.push(doc);
            }
        }
        ins.start_line = start;
        ins.end_line = i;
        out.instructions.push(ins);
    }
    if out.instructions.is_empty() {
        return Err(err(i, "file with no instructions".into()));
    }
    out.escape = d.escape;
    out.syntax = d.syntax;
    Ok(out)
}

impl Instruction {
    fn can_have_heredocs(&self) -> bool {
        let target = match (self.keyword().as_str(), self.args.first()) {
            ("onbuild", Some(Arg::Instruction(inner))) => inner.as_ref(),
            _ => self,
        };
        matches!(target.keyword().as_str(), "add" | "copy" | "run") && !target.json
    }
}

/// One logical line → an instruction.
fn instruction(line: &str, d: &Directives) -> Result<Instruction, String> {
    let parts = split_ws(line.trim_matches(is_space), 2);
    let cmd = parts[0].clone();
    let (rest, flags) = match parts.get(1) {
        Some(r) => builder_flags(r, d.escape),
        None => (String::new(), Vec::new()),
    };
    let rest = rest.trim_matches(is_space).to_string();
    let (args, json) = match cmd.to_lowercase().as_str() {
        "add" | "copy" | "volume" => maybe_json_list(&rest)?,
        "arg" => (
            words(&rest, d.escape).into_iter().map(Arg::Value).collect(),
            false,
        ),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(&rest)?,
        "env" => (name_values(&rest, "ENV", d.escape)?, false),
        "label" => (name_values(&rest, "LABEL", d.escape)?, false),
        "expose" | "from" => (whitespace_list(&rest), false),
        "healthcheck" => health(&rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => (string_arg(&rest), false),
        "onbuild" if rest.is_empty() => (Vec::new(), false),
        "onbuild" => (
            vec![Arg::Instruction(Box::new(instruction(&rest, d)?))],
            false,
        ),
        // Unknown instructions parse (the builder rejects them by name).
        _ => (vec![Arg::Value(String::new())], false),
    };
    Ok(Instruction {
        cmd,
        flags,
        args,
        json,
        original: line.to_string(),
        ..Instruction::default()
    })
}

fn values(v: Vec<String>) -> Vec<Arg> {
    v.into_iter().map(Arg::Value).collect()
}

fn string_arg(rest: &str) -> Vec<Arg> {
    if rest.is_empty() {
        Vec::new()
    } else {
        vec![Arg::Value(rest.to_string())]
    }
}

fn whitespace_list(rest: &str) -> Vec<Arg> {
    if rest.is_empty() {
        return Vec::new();
    }
    values(split_ws(rest, usize::MAX))
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// A JSON array of strings; `Ok(None)` when the text is not a JSON array at all.
fn json_array(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start_matches(is_space);
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NOT_STRING_ARRAY.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn maybe_json(rest: &str) -> Result<(Vec<Arg>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match json_array(rest)? {
        Some(items) => (values(items), true),
        None => (vec![Arg::Value(rest.to_string())], false),
    })
}

fn maybe_json_list(rest: &str) -> Result<(Vec<Arg>, bool), String> {
    Ok(match json_array(rest)? {
        Some(items) => (values(items), true),
        None => (whitespace_list(rest), false),
    })
}

fn health(rest: &str) -> Result<(Vec<Arg>, bool), String> {
    let sep = rest
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(rest.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let cmd = rest[sep..].trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (mut args, json) = maybe_json(cmd)?;
    args.insert(0, Arg::Value(rest[..sep].to_string()));
    Ok((args, json))
}

/// `ENV`/`LABEL`: `key value` (old form) or `k=v k2="v 2"` (quotes kept for later).
fn name_values(rest: &str, what: &str, escape: char) -> Result<Vec<Arg>, String> {
    let ws = words(rest, escape);
    let Some(first) = ws.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let parts = split_ws(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{what} must have two arguments"));
        }
        return Ok(values(vec![
            parts[0].clone(),
            parts[1].clone(),
            String::new(),
        ]));
    }
    let mut out = Vec::new();
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(&w)
            ));
        };
        out.extend(values(vec![k.to_string(), v.to_string(), "=".into()]));
    }
    Ok(out)
}

/// Splits on spaces outside quotes, keeping quotes and escapes (expansion comes later).
pub fn words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut out = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut i = 0;
    loop {
        let at_end = i >= chars.len();
        let ch = chars.get(i).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                out.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                i += 1;
                continue;
            }
            let mut ch = ch;
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                ch = chars[i];
            }
            word.push(ch);
            i += 1;
            continue;
        }
        // In quotes.
        let mut ch = ch;
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            ch = chars[i];
        }
        word.push(ch);
        i += 1;
    }
    out
}

/// Leading `--flag` words of an instruction's arguments; returns the rest and the flags.
fn builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let esc = escape as u32 as u8;
    let mut pos = 0;
    loop {
        let at_end = pos >= b.len();
        let ch = b.get(pos).copied().unwrap_or(0);
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if (ch as char).is_ascii_whitespace() {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (line[pos..].to_string(), flags);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                flags.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if (ch as char).is_ascii_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[pos..].to_string(), flags);
                }
                if blank_ok || !word.is_empty() {
                    flags.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if c == esc {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            word.push(c as char);
            pos += 1;
            continue;
        }
        let mut c = ch;
        if c == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if c == esc {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(c as char);
        pos += 1;
    }
    (String::new(), flags)
}

/// The heredocs a line opens (`<<EOF`, `<<-"EOF"`, `3<<EOF`), in order.
fn heredocs_in(line: &str) -> Result<Vec<Heredoc>, String> {
    let raw = Lex {
        escape: '\\',
        raw_quotes: true,
        raw_escapes: true,
        skip_unset_env: true,
    };
    let none: Vec<String> = Vec::new();
    let words = raw.process_words(line, &none).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(doc) = heredoc(&w)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// One `[n]<<[-]WORD` word.
pub fn heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.chars().take_while(char::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let none: Vec<String> = Vec::new();
    let mut lex = Lex {
        escape: '\\',
        raw_quotes: false,
        raw_escapes: false,
        skip_unset_env: true,
    };
    let words = lex.process_words(rest, &none).map_err(|e| e.to_string())?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &none).map_err(|e| e.to_string())?;
    if raw.len() != 1 {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Ok(Some(Heredoc {
        name: words[0].clone(),
        fd: word[..digits].parse().unwrap_or(0),
        expand: quotes(&words[0]) == quotes(&raw[0]),
        chomp,
        content: String::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            words("foo bar 'abc xyz'", '\\'),
            ["foo", "bar", "'abc xyz'"]
        );
        assert_eq!(words("foo\\ bar", '\\'), ["foo\\ bar"]);
        assert_eq!(
            words(r#"föo bàr "âbc xÿz""#, '\\'),
            ["föo", "bàr", "\"âbc xÿz\""]
        );
    }

    #[test]
    fn heredocs_are_read_to_their_terminator() {
        let df =
            parse("FROM busybox\nRUN <<EOF\necho hi\nEOF\nRUN <<-'X' cat\n\tkeep $HOME\n\tX\n")
                .unwrap();
        let run = &df.instructions[1];
        assert_eq!(run.heredocs[0].name, "EOF");
        assert_eq!(run.heredocs[0].content, "echo hi\n");
        assert!(run.heredocs[0].expand);
        let run = &df.instructions[2];
        assert_eq!(run.heredocs[0].content, "\tkeep $HOME\n");
        assert!(!run.heredocs[0].expand && run.heredocs[0].chomp);
        assert_eq!((run.start_line, run.end_line), (5, 7));
        assert!(parse("FROM x\nRUN <<EOF\nnever ends\n").is_err());
    }

    #[test]
    fn escape_directive_and_continuations() {
        let df = parse("# escape=`\nFROM x\nRUN a `\n  b\nRUN c \\\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].values(), ["a   b"]);
        assert_eq!(df.instructions[2].values(), ["c \\"]);
        assert!(parse("# escape=x\nFROM x").is_err());
    }
}
