//! Giving back what setup used: a shim lives as long as its container, but the pages it
//! touched to create it (the runtime library's code, libseccomp, the parsed spec) are
//! never used again. Dropping them keeps a supervising shim near a megabyte.

/// Returns free heap to the system and drops this process's resident copies of clean,
/// read-only file pages (code and constants of the binary and its libraries); the
/// supervision loop faults back in the little it runs. A mapping is dropped only when it
/// is not writable and holds no anonymous or dirty page: relocated data (RELRO) has
/// private copies and is left alone, so nothing but page-cache copies is discarded.
pub fn shed() {
    // SAFETY: malloc_trim only releases free memory at the top of glibc's heaps.
    unsafe { libc::malloc_trim(0) };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for m in mappings(&smaps) {
        if m.writable || !m.file_backed || m.anonymous_kb > 0 || m.private_dirty_kb > 0 {
            continue;
        }
        // SAFETY: the range is a whole read-only file-backed mapping of this process
        // without anonymous or dirty pages (from /proc/self/smaps); MADV_DONTNEED only
        // discards resident copies of unmodified file pages, read again on next use.
        unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
    }
}

/// One mapping of /proc/self/smaps, with what `shed` needs to know.
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    file_backed: bool,
    anonymous_kb: u64,
    private_dirty_kb: u64,
}

fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            out.push(Mapping {
                start,
                end,
                writable: perms.contains('w'),
                file_backed: path.starts_with('/'),
                anonymous_kb: 0,
                private_dirty_kb: 0,
            });
            continue;
        }
        let kb = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        if let Some(m) = out.last_mut() {
            match first {
                "Anonymous:" => m.anonymous_kb = kb,
                "Private_Dirty:" => m.private_dirty_kb = kb,
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings_qualify() {
        let smaps = "\
5600-5700 r--p 00000000 08:01 1 /usr/bin/x
Rss: 8 kB
Private_Dirty: 0 kB
Anonymous: 0 kB
5700-5800 r--p 00001000 08:01 1 /usr/bin/x
Private_Dirty: 4 kB
Anonymous: 4 kB
5800-5900 rw-p 00000000 00:00 0 [heap]
Anonymous: 8 kB
";
        let m = mappings(smaps);
        assert_eq!(m.len(), 3);
        let dropped: Vec<usize> = m
            .iter()
            .filter(|m| {
                !m.writable && m.file_backed && m.anonymous_kb == 0 && m.private_dirty_kb == 0
            })
            .map(|m| m.start)
            .collect();
        assert_eq!(dropped, vec![0x5600]);
    }
}
