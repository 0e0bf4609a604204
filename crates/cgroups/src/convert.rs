//! Value conversions between OCI (cgroup v1 units) and cgroup v2 files, and
//! parsers for the list formats cgroups use. Pure functions, unit-tested.

/// OCI `cpu.shares` (v1, 2..=262144) to v2 `cpu.weight` (1..=10000), with
/// runc's linear mapping so containers get the same weight under both.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// OCI `blockIO.weight` (v1, 10..=1000) to v2 `io.weight` (1..=10000), as
/// runc converts it.
pub fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (weight.saturating_sub(10) * 9999) / 990
}

/// OCI `memory.swap` is memory+swap (v1 memsw); v2 `memory.swap.max` is swap
/// alone. Returns the v2 value to write, or `None` to leave it alone.
/// `Err` carries the problem text for the swap field.
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>, String> {
    let limit = limit.unwrap_or(0);
    match swap.unwrap_or(0) {
        // Unlimited memory without an explicit swap: unlimited swap too.
        0 if limit == -1 => Ok(Some("max".to_string())),
        0 => Ok(None),
        -1 => Ok(Some("max".to_string())),
        swap if swap < -1 => Err(format!("({swap}) must be -1 or positive")),
        swap if limit <= 0 => Err(format!(
            "({swap}) needs linux.resources.memory.limit to be set to a positive value"
        )),
        swap if swap < limit => Err(format!(
            "({swap}) must be >= linux.resources.memory.limit ({limit})"
        )),
        swap => Ok(Some((swap - limit).to_string())),
    }
}

/// v1/v2 numeric limit text: -1 means unlimited. v1 files accept "-1", v2
/// files want "max".
pub fn limit_text_v2(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

/// Parse a cpuset list ("0-3,7") into the numbers it names; `None` if the
/// syntax is wrong. Empty text is an empty list.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u16>> {
    let text = text.trim();
    let mut out = Vec::new();
    if text.is_empty() {
        return Some(out);
    }
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
            None => {
                let n = part.trim().parse::<u16>().ok()?;
                (n, n)
            }
        };
        if first > last {
            return None;
        }
        out.extend(first..=last);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Parse an OCI hugepage size ("2MB", "1GB", "64KB") into kibibytes, the
/// unit of `/sys/kernel/mm/hugepages/hugepages-<N>kB`.
pub fn hugepage_size_kb(page_size: &str) -> Option<u64> {
    let digits_end = page_size
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(page_size.len());
    let (number, unit) = page_size.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let factor = match unit {
        "KB" | "kB" => 1,
        "MB" => 1024,
        "GB" => 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(factor).filter(|n| *n > 0)
}

/// The kernel's name for a hugepage size in cgroup files ("2MB", "1GB").
pub fn hugepage_file_name(size_kb: u64) -> String {
    if size_kb.is_multiple_of(1024 * 1024) {
        format!("{}GB", size_kb / (1024 * 1024))
    } else if size_kb.is_multiple_of(1024) {
        format!("{}MB", size_kb / 1024)
    } else {
        format!("{size_kb}KB")
    }
}

/// One `rdma.max` line: "mlx4_0 hca_handle=2 hca_object=max".
pub fn rdma_line(device: &str, limit: &oci_spec::runtime::LinuxRdma) -> String {
    let value = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
    format!(
        "{device} hca_handle={} hca_object={}",
        value(limit.hca_handles()),
        value(limit.hca_objects())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262144), 10000);
    }

    #[test]
    fn blkio_weight_to_io_weight_matches_runc() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_to_v2(None, None), Ok(None));
        assert_eq!(swap_to_v2(None, Some(-1)), Ok(Some("max".into())));
        assert_eq!(swap_to_v2(Some(-1), Some(100)), Ok(Some("max".into())));
        assert_eq!(swap_to_v2(Some(300), Some(100)), Ok(Some("200".into())));
        assert_eq!(swap_to_v2(Some(100), Some(100)), Ok(Some("0".into())));
        let err = swap_to_v2(Some(100), Some(200)).unwrap_err();
        assert_eq!(err, "(100) must be >= linux.resources.memory.limit (200)");
        assert!(swap_to_v2(Some(100), None).is_err());
        assert!(swap_to_v2(Some(-2), Some(100)).is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list("1\n"), Some(vec![1]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
        assert_eq!(parse_cpu_list("1,,2"), None);
    }

    #[test]
    fn hugepage_sizes() {
        assert_eq!(hugepage_size_kb("2MB"), Some(2048));
        assert_eq!(hugepage_size_kb("1GB"), Some(1024 * 1024));
        assert_eq!(hugepage_size_kb("64KB"), Some(64));
        assert_eq!(hugepage_size_kb("2M"), None);
        assert_eq!(hugepage_size_kb("MB"), None);
        assert_eq!(hugepage_file_name(2048), "2MB");
        assert_eq!(hugepage_file_name(1024 * 1024), "1GB");
        assert_eq!(hugepage_file_name(64), "64KB");
    }
}
