//! `.dockerignore` with Docker's pattern rules: `*` and `?` within a path component, `**`
//! across components, `[...]` classes, `\` escapes, `!` exceptions, the last matching
//! pattern deciding, and a pattern that matches a directory matching what is under it.

/// The patterns of one `.dockerignore`.
pub struct Ignore {
    patterns: Vec<Pattern>,
}

struct Pattern {
    exclusion: bool,
    regex: regex::Regex,
}

impl Ignore {
    /// Reads the file's text; comments and blank lines are skipped.
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, p) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let p = clean(p);
            if p.is_empty() {
                continue;
            }
            let regex = regex::Regex::new(&to_regex(&p))
                .map_err(|e| format!(".dockerignore: invalid pattern {line:?}: {e}"))?;
            patterns.push(Pattern { exclusion, regex });
        }
        Ok(Ignore { patterns })
    }

    /// Whether the context path `rel` (`a/b/c`, no leading `/`) is left out.
    pub fn excludes(&self, rel: &str) -> bool {
        let parts: Vec<&str> = rel.split('/').collect();
        let mut excluded = false;
        for p in &self.patterns {
            let mut hit = p.regex.is_match(rel);
            if !hit {
                hit = (1..parts.len()).any(|i| p.regex.is_match(&parts[..i].join("/")));
            }
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }
}

/// `filepath.Clean` without a leading `/` (patterns are relative to the context).
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

fn to_regex(p: &str) -> String {
    let mut re = String::from("^");
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            '[' | ']' | '^' | '-' => re.push(c),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let i =
            Ignore::parse("# comment\n*.log\n!keep.log\nbuild/\n**/tmp\nsecret?.txt\n").unwrap();
        assert!(i.excludes("a.log"));
        assert!(!i.excludes("keep.log"));
        assert!(!i.excludes("dir/a.log"), "* does not cross directories");
        assert!(i.excludes("build"));
        assert!(
            i.excludes("build/out/x.o"),
            "a directory takes what is under it"
        );
        assert!(i.excludes("tmp") && i.excludes("a/b/tmp") && i.excludes("a/tmp/f"));
        assert!(i.excludes("secret1.txt") && !i.excludes("secret12.txt"));
        assert!(!i.excludes("src/main.rs"));
        // Order matters: a later exclusion wins over an earlier exception.
        let i = Ignore::parse("!a.txt\n*.txt").unwrap();
        assert!(i.excludes("a.txt"));
        let i = Ignore::parse("docs\n!docs/README.md").unwrap();
        assert!(i.excludes("docs/other.md") && !i.excludes("docs/README.md"));
    }
}
