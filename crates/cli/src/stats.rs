//! `stats`: the docker CLI's live table of CPU, memory, network, block I/O and pids, from
//! the daemon's samples.

use std::io::Write;

use serde_json::{Value, json};

use crate::client::{Client, enc_path};
use crate::{CliError, CmdResult, format};

/// The flags `stats` shares with `compose stats`.
#[derive(clap::Args, Clone)]
pub struct StatsFlags {
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
}

impl StatsFlags {
    /// Whether stopped containers are shown too.
    pub fn all(&self) -> bool {
        self.all
    }
}

/// `stats` flags.
#[derive(clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    flags: StatsFlags,
    /// Show what the daemon kept of one container's use (Berth: the last 15 minutes
    /// per second, the last 24 hours per minute)
    #[arg(long = "history")]
    history: bool,
    /// With --history: from this time (Unix seconds, RFC 3339, or a duration like 10m)
    #[arg(long = "since")]
    since: Option<String>,
    /// With --history: 1s or 1m
    #[arg(long = "interval", default_value = "1s")]
    interval: String,
    /// Containers (default: the running ones)
    containers: Vec<String>,
}

impl StatsArgs {
    /// Plain `stats` of the containers named, with these flags.
    pub fn of(flags: StatsFlags, containers: Vec<String>) -> StatsArgs {
        StatsArgs {
            flags,
            history: false,
            since: None,
            interval: "1s".into(),
            containers,
        }
    }
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
    let list = c.get(&format!("/containers/json?all={}", u8::from(a.flags.all)))?;
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

/// `stats --history CONTAINER`: one row per point the daemon kept, rates per second.
fn history(c: &Client, a: &StatsArgs) -> CmdResult {
    let [name] = a.containers.as_slice() else {
        return Err(CliError::new("stats --history takes exactly one container"));
    };
    let mut path = format!(
        "/containers/{}/stats/history?interval={}",
        enc_path(name),
        crate::client::enc(&a.interval)
    );
    if let Some(since) = &a.since {
        path.push_str(&format!(
            "&since={}",
            crate::client::enc(&crate::containers::log_time(since)?)
        ));
    }
    let points = c.get(&path)?;
    let num = |p: &Value, k: &str| p[k].as_f64().unwrap_or(0.0);
    let rows: Vec<Value> = points
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let t = std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(p["time"].as_u64().unwrap_or(0));
            let when = berth_types::time::rfc3339(t);
            json!({
                "Time": format!("{}Z", &when[..19]),
                "CPUPerc": format!("{:.2}%", num(p, "cpu_percent")),
                "MemUsage": format!("{} / {}", format::binary_size(num(p, "memory_bytes")),
                    format::binary_size(num(p, "memory_limit"))),
                "NetIO": format!("{}/s / {}/s", format::human_size(num(p, "net_rx_rate")),
                    format::human_size(num(p, "net_tx_rate"))),
                "BlockIO": format!("{}/s / {}/s", format::human_size(num(p, "blk_read_rate")),
                    format::human_size(num(p, "blk_write_rate"))),
                "PIDs": p["pids"].as_u64().unwrap_or(0).to_string(),
            })
        })
        .collect();
    let headers = json!({"Time": "TIME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
        "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"});
    let default =
        "table {{.Time}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    let mut out = std::io::stdout().lock();
    let template = a.flags.format.as_deref();
    format::print_list(&mut out, template, default, &headers, &rows).map_err(CliError::new)?;
    Ok(0)
}

/// `stats`.
pub fn stats(c: &Client, a: StatsArgs) -> CmdResult {
    if a.history {
        return history(c, &a);
    }
    let headers = json!({"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
        "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
        "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"});
    let default = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    loop {
        let names = targets(c, &a)?;
        let mut rows = Vec::new();
        for s in samples(c, &names) {
            match s {
                Ok(s) => rows.push(row(&s, a.flags.no_trunc)),
                Err(e) if !a.containers.is_empty() => return Err(CliError::new(e)),
                // Gone since it was listed.
                Err(_) => {}
            }
        }
        let mut out = std::io::stdout().lock();
        if !a.flags.no_stream {
            // Redraw in place, as docker does.
            let _ = write!(out, "\x1b[2J\x1b[H");
        }
        let template = a.flags.format.as_deref();
        format::print_list(&mut out, template, default, &headers, &rows).map_err(CliError::new)?;
        let _ = out.flush();
        if a.flags.no_stream {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
