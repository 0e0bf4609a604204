//! Compiles `linux.seccomp` from config.json into a BPF program with libseccomp. Compiling
//! happens in the runtime before any process is forked, so a bad profile fails `create`
//! cleanly; the container process only hands the finished program to the kernel.
//!
//! Compiling Docker's default profile costs libseccomp several milliseconds of CPU (it was
//! the largest single cost of starting a container), and every container of an engine
//! uses one of a few profiles: programs are cached by the SHA-256 of the profile in the
//! state root's `.seccomp-cache`, written atomically, so the second container with a
//! profile skips libseccomp entirely.

use std::collections::HashSet;
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::error::{Error, Result};

/// A compiled filter, ready to load in the container process.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The BPF program: `struct sock_filter` entries, 8 bytes each.
    program: Vec<u8>,
    /// `SECCOMP_FILTER_FLAG_*` for seccomp(2).
    flags: u32,
}

impl Filter {
    /// Installs the filter on the calling thread. No-new-privileges is the caller's business:
    /// the runtime sets it itself when the config asks for it.
    pub fn load(&self) -> Result<()> {
        crate::sys::seccomp_set_filter(&self.program, self.flags)
            .map_err(|e| Error::Seccomp(format!("load filter: {e}")))
    }
}

const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// Compiles `profile`, through the cache in `cache_dir` when there is one.
pub fn compile_cached(
    profile: &LinuxSeccomp,
    cache_dir: Option<&std::path::Path>,
) -> Result<Filter> {
    let flags = filter_flags(profile);
    let Some(dir) = cache_dir else {
        return compile(profile);
    };
    let key = cache_key(profile)?;
    let path = dir.join(format!("{key}.bpf"));
    if let Ok(program) = std::fs::read(&path)
        && !program.is_empty()
        && program.len().is_multiple_of(8)
    {
        return Ok(Filter { program, flags });
    }
    let filter = compile(profile)?;
    // A cache that cannot be written only costs the next container the compile.
    if std::fs::create_dir_all(dir).is_ok() {
        let _ = crate::state::write_atomic(&path, &filter.program);
    }
    Ok(filter)
}

/// The profile's hash, with the libseccomp version that compiles it (a newer one may know
/// more syscall names).
fn cache_key(profile: &LinuxSeccomp) -> Result<String> {
    use sha2::Digest as _;
    let json =
        serde_json::to_vec(profile).map_err(|e| Error::Seccomp(format!("hash profile: {e}")))?;
    let v = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut h = sha2::Sha256::new();
    h.update(v.as_bytes());
    h.update([0]);
    h.update(std::env::consts::ARCH.as_bytes());
    h.update([0]);
    h.update(&json);
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn filter_flags(profile: &LinuxSeccomp) -> u32 {
    profile
        .flags()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|f| match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        })
        .fold(0, |a, b| a | b)
}

const EPERM: u32 = libc::EPERM as u32;

fn action(act: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<ScmpAction> {
    Ok(match act {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(EPERM) as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(EPERM) as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::Seccomp(format!(
                "{field}: SCMP_ACT_NOTIFY needs a seccomp listener, which berth-runtime does not support"
            )));
        }
    })
}

fn compare(arg: &LinuxSeccompArg) -> ScmpArgCompare {
    let index = arg.index() as u32;
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        // The OCI spec (like runc) puts the mask in `value` and the datum in `valueTwo`.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    ScmpArgCompare::new(index, op, datum)
}

fn arch(a: &oci_spec::runtime::Arch) -> Result<ScmpArch> {
    let name = serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    let name = name.unwrap_or_default();
    ScmpArch::from_str(&name)
        .map_err(|_| Error::Seccomp(format!("linux.seccomp.architectures: unknown {name}")))
}

/// Builds the filter a profile describes. Syscall names unknown to this libseccomp are
/// skipped, as runc does, so profiles written for newer kernels still load.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter> {
    let default = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    let mut ctx = ScmpFilterContext::new(default)
        .map_err(|e| Error::Seccomp(format!("create filter: {e}")))?;
    // The runtime decides about no_new_privs itself; libseccomp would otherwise set it.
    ctx.set_ctl_nnp(false)
        .map_err(|e| Error::Seccomp(e.to_string()))?;
    for a in profile.architectures().as_deref().unwrap_or_default() {
        let a = arch(a)?;
        ctx.add_arch(a)
            .map_err(|e| Error::Seccomp(format!("add architecture {a:?}: {e}")))?;
    }
    for flag in profile.flags().as_deref().unwrap_or_default() {
        let set = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => ctx.set_ctl_waitkill(true),
        };
        set.map_err(|e| Error::Seccomp(format!("linux.seccomp.flags {flag}: {e}")))?;
    }
    for (i, rule) in profile
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(rule.action(), rule.errno_ret(), &field)?;
        if act == default {
            // libseccomp refuses rules that repeat the default action; they change nothing.
            continue;
        }
        let oci_args = rule.args().as_deref().unwrap_or_default();
        let mut indices = HashSet::new();
        let same_arg_twice = !oci_args.iter().all(|a| indices.insert(a.index()));
        let args: Vec<ScmpArgCompare> = oci_args.iter().map(compare).collect();
        for name in rule.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                continue;
            };
            add_rule(&mut ctx, act, nr, &args, same_arg_twice)
                .map_err(|e| Error::Seccomp(format!("{field}: add rule for {name}: {e}")))?;
        }
    }
    Ok(Filter {
        program: export(&ctx)?,
        flags: filter_flags(profile),
    })
}

/// The BPF program libseccomp generates for `ctx`.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let fd = rustix::fs::memfd_create("seccomp-bpf", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| Error::Seccomp(format!("memfd for the filter: {e}")))?;
    ctx.export_bpf(&fd)
        .map_err(|e| Error::Seccomp(format!("generate filter: {e}")))?;
    let mut f = std::fs::File::from(fd);
    let mut program = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut program))
        .map_err(|e| Error::Seccomp(format!("read the generated filter: {e}")))?;
    Ok(program)
}

/// libseccomp cannot AND two comparisons of the same argument in one rule; like runc, such
/// conditions become one rule each (an OR).
fn add_rule(
    ctx: &mut ScmpFilterContext,
    act: ScmpAction,
    nr: ScmpSyscall,
    args: &[ScmpArgCompare],
    same_arg_twice: bool,
) -> std::result::Result<(), libseccomp::error::SeccompError> {
    if args.is_empty() {
        return ctx.add_rule(act, nr).map(|_| ());
    }
    if same_arg_twice {
        for a in args {
            ctx.add_rule_conditional(act, nr, std::slice::from_ref(a))?;
        }
        Ok(())
    } else {
        ctx.add_rule_conditional(act, nr, args).map(|_| ())
    }
}
