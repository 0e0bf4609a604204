//! Exec instances: extra processes in a running container, each supervised by its own
//! `berth-shim` in exec mode (so it outlives berthd like the container does).
//!
//! Records live in memory, as in Docker: they describe processes of the current daemon's
//! lifetime and go with their container.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::{ContainerService, Error, Result, internal, random_hex};

/// One exec instance.
#[derive(Debug, Clone)]
pub struct ExecRecord {
    /// 64 hex digits.
    pub id: String,
    /// The container it runs in.
    pub container_id: String,
    /// Docker's exec config as created (Cmd, Env, User, Tty, AttachStdin...).
    pub config: Value,
    /// Whether start was called.
    pub started: bool,
    /// Host pid once started.
    pub pid: i32,
    /// Exit code once it exited.
    pub exit_code: Option<i32>,
}

impl ExecRecord {
    /// Whether it runs now.
    pub fn running(&self) -> bool {
        self.started && self.exit_code.is_none()
    }
}

impl ContainerService {
    fn exec_dir(&self, container_id: &str, exec_id: &str) -> PathBuf {
        self.run_dir(container_id).join("execs").join(exec_id)
    }

    /// `POST /containers/{id}/exec`: records the exec; nothing runs yet.
    pub fn exec_create(&self, name: &str, body: &Value) -> Result<String> {
        let rec = self.get(name)?;
        match rec.state.status.as_str() {
            "running" => {}
            "paused" => {
                return Err(Error::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    rec.id
                )));
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "container {} is not running",
                    rec.id
                )));
            }
        }
        let body = &canonical_keys(body);
        if body["Cmd"].as_array().is_none_or(|a| a.is_empty()) {
            return Err(Error::InvalidInput("No exec command specified".into()));
        }
        let id = random_hex(32)?;
        let exec = ExecRecord {
            id: id.clone(),
            container_id: rec.id.clone(),
            config: canonical_keys(body),
            started: false,
            pid: 0,
            exit_code: None,
        };
        self.events
            .emit(self.exec_event(&rec, "exec_create", &exec));
        self.execs
            .lock()
            .expect("not poisoned")
            .insert(id.clone(), exec);
        Ok(id)
    }

    /// An exec record, its exit picked up from its shim.
    pub fn exec_get(&self, id: &str) -> Result<ExecRecord> {
        let mut execs = self.execs.lock().expect("not poisoned");
        let rec = execs
            .get_mut(id)
            .ok_or_else(|| Error::Missing(format!("No such exec instance: {id}")))?;
        if rec.running() {
            let exit = self.exec_dir(&rec.container_id, &rec.id).join("exit.json");
            if let Some(e) = std::fs::read(&exit)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                rec.exit_code = Some(e["ExitCode"].as_i64().unwrap_or(255) as i32);
            } else if !self.get(&rec.container_id).is_ok_and(|c| c.state.pid > 0) {
                // The container went away and took the process with it.
                rec.exit_code = Some(137);
            }
        }
        Ok(rec.clone())
    }

    /// `POST /exec/{id}/start`: runs the process under a new exec shim. `before_run` is
    /// called with the exec id once its attach socket listens and before the process
    /// exists, so attach clients see all of its output.
    /// `raw_output` is the start request's `Tty`: it, not the exec's terminal, decides
    /// whether output is framed (as in dockerd).
    pub fn exec_start(
        &self,
        id: &str,
        raw_output: bool,
        before_run: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let exec = {
            let mut execs = self.execs.lock().expect("not poisoned");
            let rec = execs
                .get_mut(id)
                .ok_or_else(|| Error::Missing(format!("No such exec instance: {id}")))?;
            if rec.started {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {id} is already running"
                )));
            }
            rec.started = true;
            rec.clone()
        };
        match self.run_exec(&exec, raw_output, before_run) {
            Ok(pid) => {
                if let Some(r) = self.execs.lock().expect("not poisoned").get_mut(id) {
                    r.pid = pid;
                }
                Ok(())
            }
            Err(e) => {
                // Docker's codes for a command that could not run: 127 not found, 126
                // anything else.
                let code = if e.to_string().contains("not found")
                    || e.to_string().contains("no such file")
                {
                    127
                } else {
                    126
                };
                if let Some(r) = self.execs.lock().expect("not poisoned").get_mut(id) {
                    r.exit_code = Some(code);
                }
                Err(e)
            }
        }
    }

    fn run_exec(
        &self,
        exec: &ExecRecord,
        raw_output: bool,
        before_run: &mut dyn FnMut(&str),
    ) -> Result<i32> {
        let container = self.get(&exec.container_id)?;
        if container.state.status != "running" {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                container.id
            )));
        }
        let run = self.run_dir(&container.id);
        let oci: Value = std::fs::read(run.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| Error::Internal("the container's config.json is unreadable".into()))?;
        let process =
            crate::spec::exec_process(&oci["process"], &self.rootfs(&container.id), &exec.config)?;
        let dir = self.exec_dir(&container.id, &exec.id);
        std::fs::create_dir_all(&dir).map_err(internal)?;
        let process_file = dir.join("process.json");
        std::fs::write(&process_file, process.to_string()).map_err(internal)?;
        let flag = |k: &str| {
            if exec.config[k].as_bool() == Some(true) {
                "true"
            } else {
                "false"
            }
        };
        let mut child = Command::new(&self.shim)
            .args(["--id", &container.id, "--exec-process"])
            .arg(&process_file)
            .arg("--runtime-root")
            .arg(self.runtime_root())
            .arg("--state-dir")
            .arg(&dir)
            .args(["--tty", flag("Tty"), "--stdin", flag("AttachStdin")])
            .args(["--raw-output", if raw_output { "true" } else { "false" }])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Internal(format!("start {}: {e}", self.shim.display())))?;
        let mut go = child.stdin.take().expect("piped");
        let mut reports = BufReader::new(child.stdout.take().expect("piped"));
        let (service, exit_file) = (self.clone(), dir.join("exit.json"));
        let die = self.exec_event(&container, "exec_die", exec);
        std::thread::spawn(move || {
            let _ = child.wait();
            // The shim has recorded the exit (or died without a record: 126, as for a
            // process that never ran).
            let code = std::fs::read(&exit_file)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["ExitCode"].as_i64())
                .unwrap_or(126);
            service.events.emit(die.attr("exitCode", code.to_string()));
        });
        let ready = read_report(&mut reports)?;
        if ready["ready"].as_bool() != Some(true) {
            return Err(shim_failure(&ready));
        }
        before_run(&exec.id);
        self.events
            .emit(self.exec_event(&container, "exec_start", exec));
        let _ = go.write_all(b"go\n");
        drop(go);
        let report = read_report(&mut reports)?;
        match report["pid"].as_i64() {
            Some(pid) => Ok(pid as i32),
            None => Err(shim_failure(&report)),
        }
    }

    /// Connects an attach client to a running exec (see [`ContainerService::connect_attach`]).
    pub fn connect_exec_attach(
        &self,
        exec: &ExecRecord,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<std::os::unix::net::UnixStream> {
        let dir = self.exec_dir(&exec.container_id, &exec.id);
        crate::attach::connect(
            &dir,
            berth_types::shim::attach_header(stdin, stdout, stderr),
        )
    }

    /// `POST /exec/{id}/resize`.
    pub fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let exec = self.exec_get(id)?;
        if !exec.running() {
            return Err(Error::Conflict(format!("Exec {id} is not running")));
        }
        let dir = self.exec_dir(&exec.container_id, &exec.id);
        crate::attach::send_resize(&dir, height, width)
    }

    /// `GET /exec/{id}/json` in Docker's shape.
    pub fn exec_inspect(&self, id: &str) -> Result<Value> {
        let e = self.exec_get(id)?;
        let c = &e.config;
        let cmd: Vec<Value> = c["Cmd"].as_array().cloned().unwrap_or_default();
        Ok(json!({
            "ID": e.id,
            "Running": e.running(),
            "ExitCode": e.exit_code,
            "ProcessConfig": {
                "tty": c["Tty"].as_bool().unwrap_or(false),
                "entrypoint": cmd.first().cloned().unwrap_or(Value::Null),
                "arguments": cmd.get(1..).map(|a| a.to_vec()).unwrap_or_default(),
                "privileged": c["Privileged"].as_bool().unwrap_or(false),
                "user": c["User"].as_str().unwrap_or(""),
            },
            "OpenStdin": c["AttachStdin"].as_bool().unwrap_or(false),
            "OpenStderr": c["AttachStderr"].as_bool().unwrap_or(false),
            "OpenStdout": c["AttachStdout"].as_bool().unwrap_or(false),
            "CanRemove": false,
            "ContainerID": e.container_id,
            "DetachKeys": c["DetachKeys"].as_str().unwrap_or(""),
            "Pid": e.pid,
        }))
    }

    /// Forgets the execs of a container that is gone.
    pub(crate) fn drop_execs(&self, container_id: &str) {
        self.execs
            .lock()
            .expect("not poisoned")
            .retain(|_, e| e.container_id != container_id);
    }
}

/// The exec config with Docker's key names: Go decodes JSON keys case-insensitively and
/// clients rely on it (docker-py sends `detachKeys`).
fn canonical_keys(body: &Value) -> Value {
    const KEYS: &[&str] = &[
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "DetachKeys",
        "Tty",
        "ConsoleSize",
        "Env",
        "Cmd",
        "Privileged",
        "User",
        "WorkingDir",
    ];
    let Some(obj) = body.as_object() else {
        return body.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in obj {
        let name = KEYS
            .iter()
            .find(|c| c.eq_ignore_ascii_case(k))
            .map_or(k.as_str(), |c| c);
        out.insert(name.to_string(), v.clone());
    }
    Value::Object(out)
}

fn read_report(r: &mut impl BufRead) -> Result<Value> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(internal)?;
    serde_json::from_str(&line)
        .map_err(|_| Error::Internal("berth-shim exited without reporting".into()))
}

fn shim_failure(report: &Value) -> Error {
    let msg = report["error"].as_str().unwrap_or("unknown shim failure");
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        Error::InvalidInput(format!("OCI runtime exec failed: {msg}"))
    } else {
        Error::Internal(format!("OCI runtime exec failed: {msg}"))
    }
}
