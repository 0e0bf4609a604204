//! # berth-runtime
//!
//! Berth's OCI runtime as a library: it turns an OCI bundle (`config.json` + rootfs) into a
//! running container and manages it afterwards (start, kill, pause, exec, delete), following
//! the OCI runtime spec 1.2 and runc's behaviour where the spec is silent.
//!
//! **Owns:** namespaces, the container's mount tree (pivot_root, devices, masked paths),
//! capabilities, seccomp, rlimits, hooks, the console socket protocol, and the per-container
//! state directory under the runtime root. Cgroups are delegated to `berth-cgroups`.
//!
//! **Does not touch:** images, networks beyond joining a namespace, logs or stdio plumbing:
//! the caller (the `berth-runtime` CLI, `berth-shim`) owns those.
//!
//! **Callers must be single-threaded when they call [`create`] or [`Container::exec`]**: the
//! runtime forks, and forking a multi-threaded process is unsound (STYLE: fork before you
//! thread). The container process becomes a child of the caller, which can wait for it.

pub mod console;
pub mod container;
pub mod error;
pub mod hooks;
mod launch;
pub mod rootfs;
pub mod seccomp;
mod security;
pub mod selfexe;
pub mod signal;
pub mod spec;
pub mod state;
mod sync;
pub mod sys;

pub use container::{Container, CreateOptions, ExecOptions, create, list};
pub use error::{Error, Result};
pub use state::{OciState, StateRoot, Status};
