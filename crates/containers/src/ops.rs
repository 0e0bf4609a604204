//! The rest of a container's lifecycle: restart, rename, pause and unpause, top, update
//! and prune.

use serde_json::{Value, json};

use crate::{CONTAINERS, ContainerService, Error, NAMES, Result, internal, names};

/// `HostConfig` keys `docker update` may change.
const UPDATABLE: &[&str] = &[
    "CpuShares",
    "Memory",
    "CgroupParent",
    "BlkioWeight",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "MemoryReservation",
    "MemorySwap",
    "MemorySwappiness",
    "NanoCpus",
    "PidsLimit",
    "RestartPolicy",
    "KernelMemory",
    "OomKillDisable",
];

impl ContainerService {
    /// `POST /containers/{id}/restart`: stop (if running), then start.
    pub fn restart(
        &self,
        name: &str,
        timeout: Option<u64>,
        before_start: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let rec = self.get(name)?;
        self.stop(&rec.id, timeout)?;
        self.start(&rec.id, before_start)?;
        self.emit(&rec, "restart");
        Ok(())
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.trim_start_matches('/');
        if new_name.is_empty() {
            return Err(Error::InvalidInput(
                "Neither old nor new names may be empty".into(),
            ));
        }
        if !names::valid(new_name) {
            return Err(Error::InvalidInput(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let rec = self.get(name)?;
        if rec.name == new_name {
            return Err(Error::InvalidInput(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        self.db.write(|tx| -> Result<()> {
            if let Some(other) = tx.get(&NAMES, new_name)? {
                return Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            let Some(mut current) = tx.get(&CONTAINERS, &rec.id)? else {
                return Err(Error::NotFound(name.into()));
            };
            tx.delete(&NAMES, &current.name)?;
            current.name = new_name.to_string();
            tx.put(&NAMES, new_name, &rec.id)?;
            tx.put(&CONTAINERS, &rec.id, &current)?;
            Ok(())
        })?;
        let mut renamed = rec.clone();
        renamed.name = new_name.to_string();
        self.events.emit(
            self.event(&renamed, "rename")
                .attr("oldName", format!("/{}", rec.name)),
        );
        Ok(())
    }

    /// `POST /containers/{id}/pause`: freezes every process of the container.
    pub fn pause(&self, name: &str) -> Result<()> {
        let rec = self.get(name)?;
        match rec.state.status.as_str() {
            "running" => {}
            "paused" => {
                return Err(Error::Conflict(format!(
                    "Container {} is already paused",
                    rec.id
                )));
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "Container {} is not running",
                    rec.id
                )));
            }
        }
        self.runtime_container(&rec.id)?.pause().map_err(internal)?;
        self.modify(&rec.id, |r| r.state.status = "paused".into())?;
        self.emit(&rec, "pause");
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub fn unpause(&self, name: &str) -> Result<()> {
        let rec = self.get(name)?;
        if rec.state.status != "paused" {
            return Err(Error::Conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        self.runtime_container(&rec.id)?
            .resume()
            .map_err(internal)?;
        self.modify(&rec.id, |r| r.state.status = "running".into())?;
        self.emit(&rec, "unpause");
        Ok(())
    }

    /// `GET /containers/{id}/top`: the host's `ps` with `ps_args`, keeping the rows of
    /// the container's processes, as dockerd does. Returns (titles, rows).
    pub fn top(&self, name: &str, ps_args: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let rec = self.get(name)?;
        if rec.state.status != "running" && rec.state.status != "paused" {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let pids = self.runtime_container(&rec.id)?.pids().map_err(internal)?;
        let args: Vec<&str> = if ps_args.is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| Error::Internal(format!("run ps: {e}")))?;
        if !out.status.success() {
            return Err(Error::InvalidInput(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let table = parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)?;
        self.emit(&rec, "top");
        Ok(table)
    }

    /// `POST /containers/{id}/update`: records the new limits and applies them to a
    /// running container's cgroup. Returns warnings.
    pub fn update(&self, name: &str, body: &Value) -> Result<Vec<String>> {
        let rec = self.get(name)?;
        let mut host = rec.host_config.clone();
        if !host.is_object() {
            host = json!({});
        }
        for key in UPDATABLE {
            if !body[*key].is_null() {
                host[*key] = body[*key].clone();
            }
        }
        let policy = host["RestartPolicy"]["Name"].as_str().unwrap_or("");
        if !policy.is_empty() && policy != "no" && host["AutoRemove"].as_bool() == Some(true) {
            return Err(Error::InvalidInput(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        if rec.state.status == "running" || rec.state.status == "paused" {
            let res: oci_spec::runtime::LinuxResources =
                serde_json::from_value(crate::resources::resources(&host)).map_err(|e| {
                    Error::InvalidInput(format!("Cannot update container {}: {e}", rec.id))
                })?;
            self.runtime_container(&rec.id)?.update(&res).map_err(|e| {
                Error::InvalidInput(format!("Cannot update container {}: {e}", rec.id))
            })?;
        }
        self.modify(&rec.id, |r| r.host_config = host)?;
        self.emit(&rec, "update");
        Ok(Vec::new())
    }

    /// `POST /containers/prune`: removes stopped containers that `keep` does not protect;
    /// returns the removed ids and the bytes their writable layers held.
    pub fn prune(&self, keep: &dyn Fn(&Value) -> bool) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut space = 0;
        for rec in self.all()? {
            if rec.state.status == "running" || rec.state.status == "paused" {
                continue;
            }
            if keep(&crate::view::summary(&rec, &Default::default(), &[], &[])) {
                continue;
            }
            let size = berth_volumes::dir_size(&self.data_dir(&rec.id).join("diff"));
            match self.remove(&rec.id, false) {
                Ok(()) => {
                    removed.push(rec.id);
                    space += size;
                }
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((removed, space))
    }
}

/// Splits `ps` output into titles and the rows whose PID column is one of `pids`; the
/// last column (the command) keeps its spaces.
fn parse_ps(text: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::InvalidInput("Couldn't find PID field in ps output".into()))?;
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        rows.push(row);
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_filtered_by_pid_and_keep_the_command_whole() {
        let text = "UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 12:00 ? 00:00:00 sleep 100\nroot 11 1 0 12:00 ? 00:00:00 other thing\n";
        let (titles, rows) = parse_ps(text, &[10]).unwrap();
        assert_eq!(titles.len(), 8);
        assert_eq!(
            rows,
            vec![vec![
                "root",
                "10",
                "1",
                "0",
                "12:00",
                "?",
                "00:00:00",
                "sleep 100"
            ]]
        );
        assert!(parse_ps("USER CMD\nroot x\n", &[1]).is_err());
    }
}
