//! Compiles `linux.seccomp` from config.json into a libseccomp filter. Compiling happens in
//! the runtime before any process is forked, so a bad profile fails `create` cleanly; the
//! container process only loads the finished filter.

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
pub struct Filter {
    ctx: ScmpFilterContext,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("seccomp::Filter")
    }
}

impl Filter {
    /// Installs the filter on the calling thread. No-new-privileges is the caller's business:
    /// the runtime sets it itself when the config asks for it.
    pub fn load(&self) -> Result<()> {
        self.ctx
            .load()
            .map_err(|e| Error::Seccomp(format!("load filter: {e}")))
    }
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
    Ok(Filter { ctx })
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
