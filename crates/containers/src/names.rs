//! Names for containers created without `--name`, in Docker's adjective_surname style.

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid",
    "modest", "nifty", "quirky", "serene", "sharp", "stoic", "tender", "vibrant", "wise",
    "zealous",
];
const SURNAMES: &[&str] = &[
    "babbage", "curie", "darwin", "euler", "faraday", "galileo", "hopper", "hypatia", "kepler",
    "lamarr", "lovelace", "meitner", "newton", "noether", "pasteur", "ritchie", "shannon",
    "thompson", "turing", "wozniak",
];

/// A name from `seed` (random bytes); the caller retries with other seeds on collision.
pub fn generate(seed: &[u8]) -> String {
    let a = ADJECTIVES[seed[0] as usize % ADJECTIVES.len()];
    let s = SURNAMES[seed[1] as usize % SURNAMES.len()];
    format!("{a}_{s}")
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional leading `/`.
pub fn valid(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    n.len() >= 2
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}
