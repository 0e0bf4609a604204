//! Image commands: `images`, `import`, `tag`, `rmi`, `history`.

use std::io::Read;

use serde_json::{Value, json};

use crate::client::{Client, enc, enc_path};
use crate::format;
use crate::{CliError, CmdResult};

/// `images` flags.
#[derive(clap::Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Show digests
    #[arg(long = "digests")]
    digests: bool,
    /// Only images of this repository[:tag]
    reference: Option<String>,
}

/// `import` flags.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long = "message")]
    message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    platform: Option<String>,
    /// The archive: a file or - for stdin
    source: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

/// `tag` arguments.
#[derive(clap::Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

/// `rmi` flags.
#[derive(clap::Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    no_prune: bool,
    /// Images
    #[arg(required = true)]
    images: Vec<String>,
}

/// Docker's `--filter key=value` flags as the API's filter JSON.
pub fn filters_json(flags: &[String]) -> Result<String, CliError> {
    let mut map = serde_json::Map::new();
    for f in flags {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            CliError::new(format!("bad format of filter (expected name=value): {f}"))
        })?;
        let entry = map.entry(k.to_string()).or_insert_with(|| json!({}));
        entry[v] = json!(true);
    }
    Ok(if map.is_empty() {
        String::new()
    } else {
        Value::Object(map).to_string()
    })
}

/// `base` with `?filters=` from `--filter` flags (nothing added when there are none).
pub fn with_filters(base: &str, flags: &[String]) -> Result<String, CliError> {
    let f = filters_json(flags)?;
    Ok(if f.is_empty() {
        base.to_string()
    } else {
        format!("{base}?filters={}", enc(&f))
    })
}

/// Prints a prune's "Deleted <what>:" list (from `key` of the answer) as docker does,
/// and the reclaimed space when `space` is set.
pub fn print_pruned(answer: &Value, key: &str, what: &str, space: bool) {
    let deleted: Vec<&str> = answer[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str())
        .collect();
    if !deleted.is_empty() {
        println!("Deleted {what}:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    if space {
        println!(
            "Total reclaimed space: {}",
            format::human_size4(answer["SpaceReclaimed"].as_f64().unwrap_or(0.0))
        );
    }
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

/// Splits `repo:tag` at the tag's colon (a registry port is not a tag).
pub fn split_reference(r: &str) -> (String, String) {
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (r.to_string(), "latest".to_string()),
    }
}

/// `images`.
pub fn list(c: &Client, a: ImagesArgs) -> CmdResult {
    let mut flags = a.filter.clone();
    if let Some(r) = &a.reference {
        flags.push(format!("reference={r}"));
    }
    let filters = filters_json(&flags)?;
    let mut path = format!("/images/json?all={}", u8::from(a.all));
    if !filters.is_empty() {
        path.push_str(&format!("&filters={}", enc(&filters)));
    }
    let images = c.get(&path)?;
    let rows: Vec<Value> = images
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|img| image_rows(img, a.no_trunc))
        .collect();
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let default = if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let headers = json!({
        "Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
        "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE",
    });
    format::print_list(&mut out, a.format.as_deref(), default, &headers, &rows)
        .map_err(CliError::new)?;
    Ok(0)
}

/// The `images` table rows of one image: one per repository tag (`<none>` when untagged).
pub(crate) fn image_rows(img: &Value, no_trunc: bool) -> Vec<Value> {
    let id = img["Id"].as_str().unwrap_or("");
    let created = img["Created"].as_i64().unwrap_or(0);
    let tags: Vec<String> = img["RepoTags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let pairs: Vec<(String, String)> = if tags.is_empty() {
        vec![("<none>".into(), "<none>".into())]
    } else {
        tags.iter().map(|t| split_reference(t)).collect()
    };
    pairs
        .into_iter()
        .map(|(repo, tag)| {
            json!({
                "Repository": repo,
                "Tag": tag,
                "ID": short_id(id, no_trunc),
                "Digest": "<none>",
                "CreatedSince": format::since(created),
                "CreatedAt": format_local_time(created),
                "Size": format::human_size(img["Size"].as_f64().unwrap_or(0.0)),
                "Containers": "N/A",
                "VirtualSize": format::human_size(img["Size"].as_f64().unwrap_or(0.0)),
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
            })
        })
        .collect()
}

/// Go's time.String-like local rendering docker uses for CreatedAt ("2024-01-02 15:04:05 +0000 UTC").
pub fn format_local_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `import`.
pub fn import(c: &Client, a: ImportArgs) -> CmdResult {
    let mut data = Vec::new();
    let read = if a.source == "-" {
        std::io::stdin().read_to_end(&mut data)
    } else {
        std::fs::File::open(&a.source).and_then(|mut f| f.read_to_end(&mut data))
    };
    read.map_err(|e| CliError::new(format!("open {}: {e}", a.source)))?;
    let mut path = "/images/create?fromSrc=-".to_string();
    if let Some(r) = &a.reference {
        let (repo, tag) = split_reference(r);
        path.push_str(&format!("&repo={}&tag={}", enc(&repo), enc(&tag)));
    }
    for ch in &a.change {
        path.push_str(&format!("&changes={}", enc(ch)));
    }
    if let Some(m) = &a.message {
        path.push_str(&format!("&message={}", enc(m)));
    }
    if let Some(p) = &a.platform {
        path.push_str(&format!("&platform={}", enc(p)));
    }
    let resp = c
        .send(
            "POST",
            &path,
            Some(&data),
            &[("Content-Type", "application/x-tar")],
        )?
        .error_for_status()?;
    let body = resp.into_bytes()?;
    for line in String::from_utf8_lossy(&body).lines() {
        let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        if let Some(e) = v["error"].as_str() {
            return Err(CliError::new(e.to_string()));
        }
        if let Some(s) = v["status"].as_str() {
            println!("{s}");
        }
    }
    Ok(0)
}

/// `tag`.
pub fn tag(c: &Client, a: TagArgs) -> CmdResult {
    let (repo, tag) = split_reference(&a.target);
    c.post(
        &format!(
            "/images/{}/tag?repo={}&tag={}",
            enc_path(&a.source),
            enc(&repo),
            enc(&tag)
        ),
        None,
    )?;
    Ok(0)
}

/// `rmi`.
pub fn rmi(c: &Client, a: RmiArgs) -> CmdResult {
    let mut code = 0;
    for img in &a.images {
        let path = format!(
            "/images/{}?force={}&noprune={}",
            enc_path(img),
            u8::from(a.force),
            u8::from(a.no_prune)
        );
        match c.json("DELETE", &path, None) {
            Ok(v) => {
                for item in v.as_array().cloned().unwrap_or_default() {
                    if let Some(u) = item["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `image prune` flags.
#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// Prints the `untagged:`/`deleted:` lines of an image prune as docker does.
pub fn print_image_report(v: &Value) {
    let items: Vec<String> = v["ImagesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e["Untagged"]
                .as_str()
                .map(|u| format!("untagged: {u}"))
                .or_else(|| e["Deleted"].as_str().map(|d| format!("deleted: {d}")))
        })
        .collect();
    if !items.is_empty() {
        println!("Deleted Images:");
        for i in items {
            println!("{i}");
        }
        println!();
    }
}

/// `image prune`.
pub fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !crate::confirm(warning) {
        return Ok(0);
    }
    let mut flags = a.filter.clone();
    flags.push(
        if a.all {
            "dangling=false"
        } else {
            "dangling=true"
        }
        .to_string(),
    );
    let v = c.post(&with_filters("/images/prune", &flags)?, None)?;
    print_image_report(&v);
    println!(
        "Total reclaimed space: {}",
        format::human_size4(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}

/// `history` flags.
#[derive(clap::Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    format: Option<String>,
    /// IMAGE
    image: String,
}

/// `history`.
pub fn history(c: &Client, a: HistoryArgs) -> CmdResult {
    let entries = c.get(&format!("/images/{}/history", enc_path(&a.image)))?;
    let rows: Vec<Value> = entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| history_row(h, a.human, a.no_trunc))
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let headers = json!({
        "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
    });
    let default = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
    format::print_list(
        &mut std::io::stdout().lock(),
        a.format.as_deref(),
        default,
        &headers,
        &rows,
    )
    .map_err(CliError::new)?;
    Ok(0)
}

fn history_row(h: &Value, human: bool, no_trunc: bool) -> Value {
    let id = h["Id"].as_str().unwrap_or("");
    let id = if no_trunc || id == "<missing>" {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    };
    let created = h["Created"].as_i64().unwrap_or(0);
    let size = h["Size"].as_u64().unwrap_or(0);
    let created_by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
    // Docker's Ellipsis: 44 characters and "…" past 45.
    let created_by = if !no_trunc && created_by.chars().count() > 45 {
        created_by.chars().take(44).collect::<String>() + "…"
    } else {
        created_by
    };
    json!({
        "ID": id,
        "CreatedSince": if human { format::since(created) } else { berth_types::time::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(created.max(0) as u64)) },
        "CreatedAt": berth_types::time::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(created.max(0) as u64)),
        "CreatedBy": created_by,
        "Size": if human { format::human_size(size as f64) } else { size.to_string() },
        "Comment": h["Comment"].as_str().unwrap_or(""),
    })
}
