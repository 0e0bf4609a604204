//! Docker's detach key notation, shared by the daemon (which scans attach input for the
//! sequence) and the CLI (which notices it first, as the docker CLI does).

/// Parses comma-separated single characters or `ctrl-X` (X in a-z, @, [, \, ], ^, _).
/// Example: `ctrl-p,ctrl-q` is `[0x10, 0x11]`.
pub fn parse(spec: &str) -> Result<Vec<u8>, String> {
    let bad = || {
        format!(
            "Invalid detach keys ({spec}) provided: use comma-separated characters or ctrl-<value> (a-z, @, [, \\, ], ^, _)"
        )
    };
    let mut keys = Vec::new();
    for part in spec.split(',') {
        let key = match part.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => match c.as_bytes()[0].to_ascii_lowercase() {
                b @ b'a'..=b'z' => b - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(bad()),
            },
            _ if part.len() == 1 => part.as_bytes()[0],
            _ => return Err(bad()),
        };
        keys.push(key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(super::parse("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(super::parse("a,ctrl-@,ctrl-_").unwrap(), vec![b'a', 0, 31]);
        assert!(super::parse("ctrl-1").is_err());
        assert!(super::parse("ab").is_err());
    }
}
