//! `berth-probe`: a tiny program that the integration tests copy into test containers to
//! report what a process sees from inside (things busybox cannot show). Not for users.

use std::io::Write;

fn errno_of(ret: i64) -> i32 {
    if ret < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = std::io::stdout();
    match args.get(1).map(String::as_str) {
        // clone3 with a NULL argument: EFAULT/EINVAL from the kernel, ENOSYS under a profile
        // that hides it (so glibc falls back to clone), EPERM under a bad one.
        Some("clone3") => {
            // SAFETY: clone3 with a NULL args pointer and size 0 fails before doing anything.
            let r = unsafe { libc::syscall(libc::SYS_clone3, 0usize, 0usize) };
            let _ = writeln!(out, "clone3 errno {}", errno_of(r));
        }
        // Tries to open a path for writing and says what happened.
        Some("open-write") => {
            let path = args.get(2).cloned().unwrap_or_default();
            match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(_) => {
                    let _ = writeln!(out, "opened {path} for writing");
                }
                Err(e) => {
                    let _ = writeln!(out, "open {path}: errno {}", e.raw_os_error().unwrap_or(0));
                }
            }
        }
        // Lists open descriptors and what they point to.
        Some("fds") => {
            for entry in std::fs::read_dir("/proc/self/fd")
                .into_iter()
                .flatten()
                .flatten()
            {
                let target = std::fs::read_link(entry.path()).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{} {}",
                    entry.file_name().to_string_lossy(),
                    target.display()
                );
            }
        }
        _ => {
            eprintln!("usage: berth-probe clone3|open-write PATH|fds");
            std::process::exit(2);
        }
    }
}
