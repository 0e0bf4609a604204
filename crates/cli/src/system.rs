//! `system df` (disk use of images, containers and volumes) and `system prune` (stopped
//! containers, unused networks, dangling or unused images, unused volumes).

use std::io::Write;

use serde_json::{Value, json};

use crate::client::Client;
use crate::{CliError, CmdResult, format};

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

/// `system prune` flags.
#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Prune anonymous volumes
    #[arg(long = "volumes")]
    volumes: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `system prune`, in docker's order and words.
pub fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container",
    );
    if a.volumes {
        warning.push_str("\n  - all anonymous volumes not used by at least one container");
    }
    warning.push_str(if a.all {
        "\n  - all images without at least one container associated to them"
    } else {
        "\n  - all dangling images"
    });
    warning.push_str("\n  - unused build cache\n");
    if !a.force && !crate::confirm(&warning) {
        return Ok(0);
    }
    let mut reclaimed = 0.0;
    let post = |base: &str, extra: &[String]| -> Result<Value, CliError> {
        let mut flags = a.filter.clone();
        flags.extend(extra.iter().cloned());
        let path = crate::images::with_filters(base, &flags)?;
        Ok(c.post(&path, None)?)
    };
    let v = post("/containers/prune", &[])?;
    reclaimed += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    crate::images::print_pruned(&v, "ContainersDeleted", "Containers", false);
    let v = post("/networks/prune", &[])?;
    crate::images::print_pruned(&v, "NetworksDeleted", "Networks", false);
    if a.volumes {
        let v = post("/volumes/prune", &[])?;
        reclaimed += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
        crate::images::print_pruned(&v, "VolumesDeleted", "Volumes", false);
    }
    let dangling = if a.all {
        "dangling=false"
    } else {
        "dangling=true"
    };
    let v = post("/images/prune", &[dangling.to_string()])?;
    reclaimed += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    crate::images::print_image_report(&v);
    let v = c.post("/build/prune", None)?;
    reclaimed += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    println!("Total reclaimed space: {}", format::human_size4(reclaimed));
    Ok(0)
}
