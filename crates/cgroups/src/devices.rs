//! Device access rules (`linux.resources.devices`).
//!
//! cgroup v1 takes the rules as text in `devices.allow` / `devices.deny`;
//! cgroup v2 has no files for this and instead runs a small eBPF program of
//! type `BPF_PROG_TYPE_CGROUP_DEVICE` on every device access. This module
//! normalises the OCI rules and builds both forms; loading the program is
//! in `bpf.rs`.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

/// Access bits, with the values the kernel passes to device programs
/// (`BPF_DEVCG_ACC_*`).
const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device types as the kernel passes them to device programs
/// (`BPF_DEVCG_DEV_*`).
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// What kind of device a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    All,
    Char,
    Block,
}

/// One normalised rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// `None` = any major.
    pub major: Option<u32>,
    /// `None` = any minor.
    pub minor: Option<u32>,
    /// `ACC_*` bits.
    pub access: u8,
}

impl Rule {
    /// The v1 file this rule is written to.
    pub(crate) fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }

    /// The v1 text form, e.g. "c 1:3 rwm".
    pub(crate) fn v1_line(&self) -> String {
        let kind = match self.kind {
            Kind::All => 'a',
            Kind::Char => 'c',
            Kind::Block => 'b',
        };
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let mut access = String::new();
        for (bit, letter) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(letter);
            }
        }
        format!(
            "{kind} {}:{} {access}",
            number(self.major),
            number(self.minor)
        )
    }

    /// "a *:* rwm": the rule that resets everything before it.
    fn is_wildcard(&self) -> bool {
        self.kind == Kind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }
}

/// Check and normalise the OCI rules, naming the offending entry on error.
pub(crate) fn parse_rules(devices: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| parse_rule(i, d))
        .collect()
}

fn parse_rule(index: usize, dev: &LinuxDeviceCgroup) -> Result<Rule> {
    let field = |name: &str| format!("linux.resources.devices[{index}].{name}");
    let kind = match dev.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => Kind::All,
        // "u" is an unbuffered character device: the same to the cgroup.
        LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
        LinuxDeviceType::B => Kind::Block,
        LinuxDeviceType::P => {
            return Err(Error::resource(
                field("type"),
                "(p) fifos are not subject to device cgroup rules; use a, b, c or u",
            ));
        }
    };
    let access = parse_access(dev.access().as_deref().unwrap_or("rwm")).ok_or_else(|| {
        Error::resource(
            field("access"),
            format!("({:?}) must be letters from \"rwm\"", dev.access()),
        )
    })?;
    Ok(Rule {
        allow: dev.allow(),
        kind,
        major: device_number(dev.major(), || field("major"))?,
        minor: device_number(dev.minor(), || field("minor"))?,
        access,
    })
}

/// OCI uses absent or -1 for "any".
fn device_number(value: Option<i64>, field: impl Fn() -> String) -> Result<Option<u32>> {
    match value {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| Error::resource(field(), format!("({n}) must be -1 or 0..=4294967295"))),
    }
}

fn parse_access(text: &str) -> Option<u8> {
    let mut bits = 0;
    for letter in text.chars() {
        bits |= match letter {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return None,
        };
    }
    // An empty access string means "everything" in OCI configs seen in the
    // wild (runc treats it the same way).
    Some(if bits == 0 { ACC_ALL } else { bits })
}

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    /// dst register in the low nibble, src register in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: dst | (src << 4),
            off,
            imm,
        }
    }
}

// Opcodes used (see linux/bpf_common.h and linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm
const ALU32_MOV_K: u8 = 0xb4; // dst = imm
const ALU32_MOV_X: u8 = 0xbc; // dst = src
const JMP_JEQ_K: u8 = 0x15; // if dst == imm goto +off
const JMP_JNE_K: u8 = 0x55; // if dst != imm goto +off
const JMP_JNE_X: u8 = 0x5d; // if dst != src goto +off
const JMP_EXIT: u8 = 0x95;

// Registers: r1 = context on entry; r2..r5 hold the request's fields.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

/// Build the device program for `rules`.
///
/// The kernel evaluates v1 rules in order with later rules overriding
/// earlier ones, and "a *:* rwm" resetting the list. The program mirrors
/// that: it starts from the last wildcard rule's verdict (deny if none) and
/// checks the later rules last-to-first, so the first match is the rule
/// that v1 would have applied last.
pub(crate) fn bpf_program(rules: &[Rule]) -> Vec<Insn> {
    let reset = rules.iter().rposition(Rule::is_wildcard);
    let default_allow = reset.is_some_and(|i| rules[i].allow);
    let effective = &rules[reset.map_or(0, |i| i + 1)..];

    let mut prog = load_request();
    for rule in effective.iter().rev() {
        prog.extend(rule_block(rule));
    }
    prog.extend(verdict(default_allow));
    prog
}

/// Load `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
/// into registers; access_type is (access << 16) | type.
fn load_request() -> Vec<Insn> {
    vec![
        Insn::new(LDX_MEM_W, R_TYPE, R1, 0, 0),
        Insn::new(ALU32_AND_K, R_TYPE, 0, 0, 0xFFFF),
        Insn::new(LDX_MEM_W, R_ACCESS, R1, 0, 0),
        Insn::new(ALU32_RSH_K, R_ACCESS, 0, 0, 16),
        Insn::new(LDX_MEM_W, R_MAJOR, R1, 4, 0),
        Insn::new(LDX_MEM_W, R_MINOR, R1, 8, 0),
    ]
}

fn verdict(allow: bool) -> [Insn; 2] {
    [
        Insn::new(ALU32_MOV_K, R0, 0, 0, i32::from(allow)),
        Insn::new(JMP_EXIT, 0, 0, 0, 0),
    ]
}

/// Instructions that return the rule's verdict if the request matches and
/// otherwise fall through to the next block.
fn rule_block(rule: &Rule) -> Vec<Insn> {
    // Each test jumps to "next block"; offsets are filled in at the end
    // because they depend on the block's final length.
    let mut tests: Vec<Insn> = Vec::new();
    match rule.kind {
        Kind::All => {}
        Kind::Char => tests.push(Insn::new(JMP_JNE_K, R_TYPE, 0, 0, DEV_CHAR)),
        Kind::Block => tests.push(Insn::new(JMP_JNE_K, R_TYPE, 0, 0, DEV_BLOCK)),
    }
    if rule.access != ACC_ALL {
        tests.push(Insn::new(ALU32_MOV_X, R1, R_ACCESS, 0, 0));
        tests.push(Insn::new(ALU32_AND_K, R1, 0, 0, i32::from(rule.access)));
        tests.push(if rule.allow {
            // Allow only if every requested access is allowed.
            Insn::new(JMP_JNE_X, R1, R_ACCESS, 0, 0)
        } else {
            // Deny if any requested access is denied.
            Insn::new(JMP_JEQ_K, R1, 0, 0, 0)
        });
    }
    // Device numbers are at most 32 bits, and the 64-bit compare sign-extends
    // the immediate, so cast through i32 bit-for-bit (the register holds the
    // zero-extended value; numbers >= 2^31 do not occur: majors are 12 bits
    // and minors 20 bits in the kernel).
    if let Some(major) = rule.major {
        tests.push(Insn::new(JMP_JNE_K, R_MAJOR, 0, 0, major as i32));
    }
    if let Some(minor) = rule.minor {
        tests.push(Insn::new(JMP_JNE_K, R_MINOR, 0, 0, minor as i32));
    }
    let mut block = tests;
    block.extend(verdict(rule.allow));
    let len = block.len();
    for (i, insn) in block.iter_mut().enumerate() {
        if matches!(insn.code, JMP_JNE_K | JMP_JNE_X | JMP_JEQ_K) {
            // Jump target = pc + 1 + off = first instruction after the block.
            insn.off = (len - i - 1) as i16;
        }
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn oci(
        allow: bool,
        typ: LinuxDeviceType,
        major: i64,
        minor: i64,
        access: &str,
    ) -> LinuxDeviceCgroup {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .major(major)
            .minor(minor)
            .access(access.to_string())
            .build()
            .unwrap()
    }

    #[test]
    fn v1_lines() {
        let rules = parse_rules(&[
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm".to_string())
                .build()
                .unwrap(),
            oci(true, LinuxDeviceType::C, 1, 3, "rw"),
            oci(true, LinuxDeviceType::U, 136, -1, "rwm"),
        ])
        .unwrap();
        assert_eq!(rules[0].v1_file(), "devices.deny");
        assert_eq!(rules[0].v1_line(), "a *:* rwm");
        assert_eq!(rules[1].v1_file(), "devices.allow");
        assert_eq!(rules[1].v1_line(), "c 1:3 rw");
        assert_eq!(rules[2].v1_line(), "c 136:* rwm");
    }

    #[test]
    fn rejects_bad_rules() {
        let err = parse_rules(&[oci(true, LinuxDeviceType::C, 1, 3, "rx")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("linux.resources.devices[0].access"),
            "{err}"
        );
        let err = parse_rules(&[oci(true, LinuxDeviceType::C, -5, 3, "r")]).unwrap_err();
        assert!(err.to_string().contains("devices[0].major (-5)"), "{err}");
        let err = parse_rules(&[oci(true, LinuxDeviceType::P, 1, 3, "r")]).unwrap_err();
        assert!(err.to_string().contains("devices[0].type"), "{err}");
    }

    #[test]
    fn program_shape() {
        let rules = parse_rules(&[
            oci(false, LinuxDeviceType::A, -1, -1, "rwm"),
            oci(true, LinuxDeviceType::C, 1, 3, "rwm"),
        ])
        .unwrap();
        let prog = bpf_program(&rules);
        // 6 loads + (type, major, minor tests + 2 verdict) + 2 default verdict.
        assert_eq!(prog.len(), 6 + 5 + 2);
        // The type test skips the rest of its block (4 more instructions).
        assert_eq!(prog[6], Insn::new(JMP_JNE_K, R_TYPE, 0, 4, DEV_CHAR));
        // Default is deny.
        assert_eq!(prog[11], Insn::new(ALU32_MOV_K, R0, 0, 0, 0));
    }

    #[test]
    fn wildcard_allow_resets_default() {
        let rules = parse_rules(&[
            oci(true, LinuxDeviceType::C, 1, 3, "rwm"),
            oci(true, LinuxDeviceType::A, -1, -1, "rwm"),
        ])
        .unwrap();
        let prog = bpf_program(&rules);
        assert_eq!(prog.len(), 6 + 2);
        assert_eq!(prog[6], Insn::new(ALU32_MOV_K, R0, 0, 0, 1));
    }
}
