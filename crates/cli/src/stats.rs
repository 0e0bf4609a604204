//! `stats` (the docker CLI's live table of CPU, memory, network, block I/O and pids, from
//! the daemon's samples) and `system df` (disk use of images, containers and volumes).

use std::io::Write;

use serde_json::{Value, json};

use crate::client::{Client, enc_path};
use crate::{CliError, CmdResult, format};

/// `stats` flags.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    format: Option<String>,
    /// Containers (default: the running ones)
    containers: Vec<String>,
}

/// Docker's CPU percentage: the container's share of the host's CPU time between the two
/// readings, times the number of CPUs.
fn cpu_percent(s: &Value) -> f64 {
    let cpu = |k: &str, p: &str| s[k]["cpu_usage"][p].as_f64().unwrap_or(0.0);
    let sys = |k: &str| s[k]["system_cpu_usage"].as_f64().unwrap_or(0.0);
    let delta = cpu("cpu_stats", "total_usage") - cpu("precpu_stats", "total_usage");
    let system = sys("cpu_stats") - sys("precpu_stats");
    let cpus = s["cpu_stats"]["online_cpus"].as_f64().unwrap_or(1.0);
    if delta > 0.0 && system > 0.0 {
        delta / system * cpus * 100.0
    } else {
        0.0
    }
}

/// Memory in use without the page cache the kernel can drop, as the docker CLI counts it.
fn memory_usage(s: &Value) -> f64 {
    let m = &s["memory_stats"];
    let usage = m["usage"].as_f64().unwrap_or(0.0);
    let inactive = ["total_inactive_file", "inactive_file"]
        .iter()
        .find_map(|k| m["stats"][k].as_f64())
        .unwrap_or(0.0);
    if inactive < usage {
        usage - inactive
    } else {
        usage
    }
}

fn block_io(s: &Value) -> (f64, f64) {
    let mut read = 0.0;
    let mut write = 0.0;
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let v = e["value"].as_f64().unwrap_or(0.0);
        match e["op"].as_str().unwrap_or("").to_ascii_lowercase().as_str() {
            "read" => read += v,
            "write" => write += v,
            _ => {}
        }
    }
    (read, write)
}

fn row(s: &Value, no_trunc: bool) -> Value {
    let id = s["id"].as_str().unwrap_or("");
    let running = s["read"] != "0001-01-01T00:00:00Z";
    let mem = memory_usage(s);
    let limit = s["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
    let (rx, tx) =
        s["networks"]
            .as_object()
            .into_iter()
            .flatten()
            .fold((0.0, 0.0), |(r, t), (_, n)| {
                (
                    r + n["rx_bytes"].as_f64().unwrap_or(0.0),
                    t + n["tx_bytes"].as_f64().unwrap_or(0.0),
                )
            });
    let (br, bw) = block_io(s);
    let dash = |v: String| if running { v } else { "--".to_string() };
    json!({
        "ID": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Container": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Name": s["name"].as_str().unwrap_or("").trim_start_matches('/'),
        "CPUPerc": dash(format!("{:.2}%", cpu_percent(s))),
        "MemUsage": dash(format!("{} / {}", format::binary_size(mem), format::binary_size(limit))),
        "MemPerc": dash(format!("{:.2}%", if limit > 0.0 { mem / limit * 100.0 } else { 0.0 })),
        "NetIO": dash(format!("{} / {}", format::human_size(rx), format::human_size(tx))),
        "BlockIO": dash(format!("{} / {}", format::human_size(br), format::human_size(bw))),
        "PIDs": dash(s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string()),
    })
}

/// The containers to show: those named, else the running ones (all with `-a`).
fn targets(c: &Client, a: &StatsArgs) -> Result<Vec<String>, CliError> {
    if !a.containers.is_empty() {
        return Ok(a.containers.clone());
    }
    let list = c.get(&format!("/containers/json?all={}", u8::from(a.all)))?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ct| ct["Id"].as_str().map(String::from))
        .collect())
}

/// One sample per container, taken in parallel (each takes a moment for CPU use).
fn samples(c: &Client, names: &[String]) -> Vec<Result<Value, String>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                scope.spawn(move || {
                    c.get(&format!("/containers/{}/stats?stream=false", enc_path(n)))
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("stats thread panicked".into()))
            })
            .collect()
    })
}

/// `stats`.
pub fn stats(c: &Client, a: StatsArgs) -> CmdResult {
    let headers = json!({"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
        "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
        "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"});
    let default = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    loop {
        let names = targets(c, &a)?;
        let mut rows = Vec::new();
        for s in samples(c, &names) {
            match s {
                Ok(s) => rows.push(row(&s, a.no_trunc)),
                Err(e) if !a.containers.is_empty() => return Err(CliError::new(e)),
                // Gone since it was listed.
                Err(_) => {}
            }
        }
        let mut out = std::io::stdout().lock();
        if !a.no_stream {
            // Redraw in place, as docker does.
            let _ = write!(out, "\x1b[2J\x1b[H");
        }
        format::print_list(&mut out, a.format.as_deref(), default, &headers, &rows)
            .map_err(CliError::new)?;
        let _ = out.flush();
        if a.no_stream {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `system df` flags.
#[derive(clap::Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    format: Option<String>,
}

/// "12B (50%)" as docker shows reclaimable space.
fn reclaimable(part: f64, total: f64) -> String {
    if total > 0.0 {
        format!(
            "{} ({}%)",
            format::human_size4(part),
            (part * 100.0 / total) as u64
        )
    } else {
        format::human_size4(part)
    }
}

/// `system df`: disk use of images, containers, volumes (and the build cache, none yet).
pub fn df(c: &Client, a: DfArgs) -> CmdResult {
    let v = c.get("/system/df")?;
    let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let (images, containers, volumes) = (list("Images"), list("Containers"), list("Volumes"));
    let num = |x: &Value, k: &str| x[k].as_f64().unwrap_or(0.0);
    let image_size: f64 = images
        .iter()
        .map(|i| num(i, "Size"))
        .fold(0.0, |a, b| a + b);
    let image_free: f64 = images
        .iter()
        .filter(|i| num(i, "Containers") == 0.0)
        .map(|i| num(i, "Size"))
        .fold(0.0, |a, b| a + b);
    let rw: f64 = containers
        .iter()
        .map(|c| num(c, "SizeRw"))
        .fold(0.0, |a, b| a + b);
    let rw_free: f64 = containers
        .iter()
        .filter(|c| c["State"] != "running" && c["State"] != "paused")
        .map(|c| num(c, "SizeRw"))
        .fold(0.0, |a, b| a + b);
    let vol = |v: &Value, k: &str| v["UsageData"][k].as_f64().unwrap_or(0.0);
    let vol_size: f64 = volumes
        .iter()
        .map(|x| vol(x, "Size"))
        .fold(0.0, |a, b| a + b);
    let vol_free: f64 = volumes
        .iter()
        .filter(|x| vol(x, "RefCount") == 0.0)
        .map(|x| vol(x, "Size"))
        .fold(0.0, |a, b| a + b);
    let mut out = std::io::stdout().lock();
    if a.verbose {
        verbose_df(&mut out, &images, &containers, &volumes)?;
        let _ = out.flush();
        return Ok(0);
    }
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(),
            "Active": images.iter().filter(|i| num(i, "Containers") > 0.0).count().to_string(),
            "Size": format::human_size4(image_size), "Reclaimable": reclaimable(image_free, image_size)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(),
            "Active": containers.iter().filter(|c| c["State"] == "running" || c["State"] == "paused").count().to_string(),
            "Size": format::human_size4(rw), "Reclaimable": reclaimable(rw_free, rw)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(),
            "Active": volumes.iter().filter(|x| vol(x, "RefCount") > 0.0).count().to_string(),
            "Size": format::human_size4(vol_size), "Reclaimable": reclaimable(vol_free, vol_size)}),
        json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
    ];
    let headers = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE",
        "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
    format::print_list(
        &mut out,
        a.format.as_deref(),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        &headers,
        &rows,
    )
    .map_err(CliError::new)?;
    let _ = out.flush();
    Ok(0)
}

/// `system df -v`: docker's four sections (images, containers, volumes, build cache).
fn verbose_df(
    out: &mut dyn Write,
    images: &[Value],
    containers: &[Value],
    volumes: &[Value],
) -> Result<(), CliError> {
    let num = |x: &Value, k: &str| x[k].as_f64().unwrap_or(0.0);
    let _ = writeln!(out, "Images space usage:\n");
    let mut rows = Vec::new();
    for img in images {
        for mut r in crate::images::image_rows(img, false) {
            let (size, shared) = (num(img, "Size"), num(img, "SharedSize").max(0.0));
            r["SharedSize"] = json!(format::human_size(shared));
            r["UniqueSize"] = json!(format::human_size4(size - shared));
            r["Containers"] = json!((num(img, "Containers") as u64).to_string());
            rows.push(r);
        }
    }
    let ih = json!({"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
        "Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"});
    format::print_list(out, None, "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}", &ih, &rows)
        .map_err(CliError::new)?;
    let _ = writeln!(out, "\nContainers space usage:\n");
    let rows: Vec<Value> = containers
        .iter()
        .map(|ct| {
            let mut r = crate::containers::ps_row(ct, false);
            let local = ct["Mounts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["Type"] == "volume")
                .count();
            r["LocalVolumes"] = json!(local.to_string());
            r["Size"] = json!(format::human_size(num(ct, "SizeRw")));
            r
        })
        .collect();
    let ch = json!({"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
        "Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"});
    format::print_list(out, None, "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}", &ch, &rows)
        .map_err(CliError::new)?;
    let _ = writeln!(out, "\nLocal Volumes space usage:\n");
    let vol = |v: &Value, k: &str| v["UsageData"][k].as_f64().unwrap_or(0.0);
    let rows: Vec<Value> = volumes
        .iter()
        .map(|x| {
            json!({"Name": x["Name"], "Links": (vol(x, "RefCount") as u64).to_string(),
            "Size": format::human_size(vol(x, "Size"))})
        })
        .collect();
    let vh = json!({"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"});
    format::print_list(
        out,
        None,
        "table {{.Name}}\t{{.Links}}\t{{.Size}}",
        &vh,
        &rows,
    )
    .map_err(CliError::new)?;
    let _ = writeln!(out, "\nBuild cache usage: 0B\n");
    let bh = json!({"ID": "CACHE ID", "Type": "CACHE TYPE", "Size": "SIZE", "Created": "CREATED",
        "Used": "LAST USED", "Usage": "USAGE", "Shared": "SHARED"});
    format::print_list(
        out,
        None,
        "table {{.ID}}\t{{.Type}}\t{{.Size}}\t{{.Created}}\t{{.Used}}\t{{.Usage}}\t{{.Shared}}",
        &bh,
        &[],
    )
    .map_err(CliError::new)?;
    Ok(())
}
