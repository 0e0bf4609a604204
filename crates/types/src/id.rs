//! Random identifiers, as Docker makes them for containers, execs, networks and endpoints.

/// `bytes` random bytes from the kernel, as lowercase hex (64 digits for 32 bytes).
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
