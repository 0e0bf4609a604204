//! Sizes as Docker prints them (Go's `units.HumanSize` and `BytesSize`) and its progress bar.

/// Docker's decimal human size with 3 significant digits ("2.13MB", "0B").
pub fn human_size(bytes: f64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 3)
}

/// Docker's decimal human size with 4 significant digits ("6.004MB"), as `system df`
/// shows sizes.
pub fn human_size4(bytes: f64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 4)
}

/// Docker's binary size with 4 significant digits ("240KiB", "23.54GiB"), as `stats`
/// shows memory.
pub fn binary_size(bytes: f64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"], 4)
}

/// `bytes` in the largest unit under `base`, with `digits` significant digits and no
/// trailing zeros (Go's `%.Ng`).
fn scaled(bytes: f64, base: f64, units: &[&str], digits: usize) -> String {
    let mut size = bytes;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    let s = format!(
        "{:.*}",
        digits.saturating_sub(digits_before_point(size)),
        size
    );
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

fn digits_before_point(x: f64) -> usize {
    if x < 1.0 {
        1
    } else {
        (x.log10().floor() as usize) + 1
    }
}

/// The docker daemon's bar: `[=====>      ]  1.23MB/4.56MB` (always 51 wide).
pub fn progress_bar(current: u64, total: u64) -> String {
    const WIDTH: usize = 50;
    let numbers = format!(
        "{:>8}/{}",
        human_size4(current as f64),
        human_size4(total as f64)
    );
    if total == 0 {
        return numbers;
    }
    let filled = ((current.min(total) as f64 / total as f64) * WIDTH as f64) as usize;
    format!(
        "[{}>{}] {numbers}",
        "=".repeat(filled),
        " ".repeat(WIDTH - filled)
    )
}
