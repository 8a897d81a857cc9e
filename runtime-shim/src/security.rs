//! The application's security attributes from the spec: `process.capabilities`,
//! `process.noNewPrivileges`, `process.rlimits` and `linux.seccomp`, checked field by
//! field and turned into what the sentry applies to the process
//! ([`sentry::security::ProcessSecurity`]). The seccomp profile is compiled here with
//! libseccomp into a classic-BPF program that the sentry runs before emulating each of
//! the application's calls.
//!
//! They are read from the JSON itself rather than from `oci-spec`'s types, so that an
//! unknown capability, limit, action or operator is reported with the field it is in.

use anyhow::{bail, Context};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use sentry::security::{CapSets, ProcessSecurity, Rlimit};
use serde_json::Value;
use std::str::FromStr;

/// The security of the container's init: its `process` and the spec's `linux.seccomp`.
pub fn from_config(config: &Value) -> anyhow::Result<ProcessSecurity> {
    let mut s = match config.get("process") {
        Some(p) if !p.is_null() => from_process(p, "process.")?,
        _ => ProcessSecurity::default(),
    };
    s.seccomp = seccomp_of(config)?;
    Ok(s)
}

/// `linux.seccomp` compiled, if the spec has one.
pub fn seccomp_of(config: &Value) -> anyhow::Result<Option<Vec<u64>>> {
    match config.pointer("/linux/seccomp") {
        Some(s) if !s.is_null() => Ok(Some(compile_seccomp(s)?)),
        _ => Ok(None),
    }
}

/// Capabilities, `noNewPrivileges` and rlimits of a `process` object; `prefix` names it
/// in errors (`process.` in `config.json`, empty in an exec's `process.json`).
pub fn from_process(p: &Value, prefix: &str) -> anyhow::Result<ProcessSecurity> {
    let capabilities = match p.get("capabilities") {
        Some(c) if !c.is_null() => Some(capabilities(c, &format!("{prefix}capabilities"))?),
        _ => None,
    };
    let no_new_privs = match p.get("noNewPrivileges") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => bail!("{prefix}noNewPrivileges {v}: not a boolean"),
    };
    let rlimits = match p.get("rlimits") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => rlimits(list, &format!("{prefix}rlimits"))?,
        Some(v) => bail!("{prefix}rlimits {v}: not a list"),
    };
    Ok(ProcessSecurity {
        capabilities,
        no_new_privs,
        rlimits,
        seccomp: None,
    })
}

/// The security of a process `carapace exec` starts from a `process.json` (`own`, read
/// from `process`): as runc, whatever it leaves out (capabilities, rlimits,
/// noNewPrivileges) is the container's, and the container's seccomp profile applies.
pub fn for_exec(
    process: &Value,
    own: ProcessSecurity,
    container: ProcessSecurity,
) -> ProcessSecurity {
    let given = |k: &str| process.get(k).is_some_and(|v| !v.is_null());
    ProcessSecurity {
        capabilities: if given("capabilities") {
            own.capabilities
        } else {
            container.capabilities
        },
        no_new_privs: if given("noNewPrivileges") {
            own.no_new_privs
        } else {
            container.no_new_privs
        },
        rlimits: if own.rlimits.is_empty() {
            container.rlimits
        } else {
            own.rlimits
        },
        seccomp: container.seccomp,
    }
}

/// `exec --cap CAP` (each added to the bounding, effective and permitted sets, and to
/// the ambient set when the process has inheritable capabilities, as runc does) and
/// `exec --no-new-privs`.
pub fn exec_flags(
    s: &mut ProcessSecurity,
    caps: &[String],
    no_new_privs: bool,
) -> anyhow::Result<()> {
    if no_new_privs {
        s.no_new_privs = true;
    }
    for name in caps {
        let bit = 1u64 << capability_number(name).with_context(|| format!("--cap {name}"))?;
        // Without capability sets in the spec the process keeps what its uid gives it.
        if let Some(c) = &mut s.capabilities {
            c.bounding |= bit;
            c.effective |= bit;
            c.permitted |= bit;
            if c.inheritable != 0 {
                c.inheritable |= bit;
                c.ambient |= bit;
            }
        }
    }
    Ok(())
}

/// Every capability name, in number order (`carapace features`).
pub fn capability_names() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

/// What `linux.seccomp` may hold (`carapace features`).
pub fn seccomp_features() -> Value {
    serde_json::json!({
        "enabled": true,
        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
            "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
            "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
        "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"],
        "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_TSYNC"],
        "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_TSYNC"],
    })
}

/// A capability's number from its name, with or without `CAP_`, in any case.
pub fn capability_number(name: &str) -> anyhow::Result<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    caps::Capability::from_str(&full)
        .map(|c| u32::from(c.index()))
        .map_err(|_| anyhow::anyhow!("{name:?}: unknown capability"))
}

fn capabilities(c: &Value, field: &str) -> anyhow::Result<CapSets> {
    let Value::Object(sets) = c else {
        bail!("{field}: not an object");
    };
    let mut out = CapSets::default();
    for (set, list) in sets {
        let slot = match set.as_str() {
            "bounding" => &mut out.bounding,
            "effective" => &mut out.effective,
            "inheritable" => &mut out.inheritable,
            "permitted" => &mut out.permitted,
            "ambient" => &mut out.ambient,
            other => bail!("{field}.{other}: unknown capability set"),
        };
        let names = match list {
            Value::Null => continue,
            Value::Array(a) => a,
            _ => bail!("{field}.{set}: not a list"),
        };
        for (i, n) in names.iter().enumerate() {
            let name = n
                .as_str()
                .with_context(|| format!("{field}.{set}[{i}]: not a string"))?;
            let bit = capability_number(name).with_context(|| format!("{field}.{set}[{i}]"))?;
            *slot |= 1u64 << bit;
        }
    }
    Ok(out)
}

/// `RLIMIT_*` names and numbers (getrlimit(2)).
const RLIMITS: &[(&str, u32)] = &[
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
];

fn rlimits(list: &[Value], field: &str) -> anyhow::Result<Vec<Rlimit>> {
    let mut out: Vec<Rlimit> = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let here = format!("{field}[{i}]");
        let typ = r
            .get("type")
            .and_then(Value::as_str)
            .with_context(|| format!("{here}.type: missing or not a string"))?;
        let resource = RLIMITS
            .iter()
            .find(|(n, _)| *n == typ)
            .map(|(_, r)| *r)
            .with_context(|| format!("{here}.type {typ:?}: unknown resource limit"))?;
        let value = |key: &str| -> anyhow::Result<u64> {
            r.get(key)
                .and_then(Value::as_u64)
                .with_context(|| format!("{here}.{key}: missing or not an unsigned integer"))
        };
        let (soft, hard) = (value("soft")?, value("hard")?);
        if soft > hard {
            bail!("{here} ({typ}): soft limit {soft} is above the hard limit {hard}");
        }
        if out.iter().any(|o| o.resource == resource) {
            bail!("{here}: {typ} is given more than once");
        }
        out.push(Rlimit {
            resource,
            soft,
            hard,
        });
    }
    Ok(out)
}

/// An OCI seccomp action with its errno/trace value (`errnoRet`, EPERM by default as
/// in runc).
fn action(name: &str, errno_ret: Option<u32>) -> anyhow::Result<ScmpAction> {
    let ret = || -> anyhow::Result<u16> {
        match errno_ret {
            None => Ok(libc::EPERM as u16),
            Some(v) => u16::try_from(v).map_err(|_| anyhow::anyhow!("errnoRet {v}: too large")),
        }
    };
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(i32::from(ret()?)),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(ret()?),
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_NOTIFY" => {
            bail!("{name:?}: not supported (Carapace has no seccomp agent listener)")
        }
        other => bail!("{other:?}: unknown action"),
    })
}

fn compare_op(name: &str, value: u64, value_two: u64) -> anyhow::Result<(ScmpCompareOp, u64)> {
    Ok(match name {
        "SCMP_CMP_NE" => (ScmpCompareOp::NotEqual, value),
        "SCMP_CMP_LT" => (ScmpCompareOp::Less, value),
        "SCMP_CMP_LE" => (ScmpCompareOp::LessOrEqual, value),
        "SCMP_CMP_EQ" => (ScmpCompareOp::Equal, value),
        "SCMP_CMP_GE" => (ScmpCompareOp::GreaterEqual, value),
        "SCMP_CMP_GT" => (ScmpCompareOp::Greater, value),
        // As runc: `value` is the mask, `valueTwo` what the masked argument must equal.
        "SCMP_CMP_MASKED_EQ" => (ScmpCompareOp::MaskedEqual(value), value_two),
        other => bail!("{other:?}: unknown operator"),
    })
}

fn str_field<'a>(v: &'a Value, key: &str, field: &str) -> anyhow::Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("{field}.{key}: missing or not a string"))
}

fn opt_u32(v: &Value, key: &str, field: &str) -> anyhow::Result<Option<u32>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .with_context(|| format!("{field}.{key} {x}: not a 32-bit unsigned integer")),
    }
}

fn list<'a>(v: &'a Value, key: &str, field: &str) -> anyhow::Result<&'a [Value]> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => bail!("{field}.{key}: not a list"),
    }
}

/// Compile an OCI `linux.seccomp` object into a classic-BPF program, one
/// `struct sock_filter` per word, as runc builds it with libseccomp: the default action
/// (with `defaultErrnoRet`), the architectures, and one rule per syscall name (names
/// libseccomp does not know are skipped, as runc does; a rule whose action is the
/// default is left out). Arguments on distinct indices make one rule (all must match);
/// several on the same index make one rule each (any may match), as in runc.
pub fn compile_seccomp(s: &Value) -> anyhow::Result<Vec<u64>> {
    compile(s).context("linux.seccomp")
}

fn compile(s: &Value) -> anyhow::Result<Vec<u64>> {
    let default_name = str_field(s, "defaultAction", "linux.seccomp")
        .map_err(|_| anyhow::anyhow!("defaultAction: missing or not a string"))?;
    let default_errno = opt_u32(s, "defaultErrnoRet", "linux.seccomp")
        .map_err(|_| anyhow::anyhow!("defaultErrnoRet: not a 32-bit unsigned integer"))?;
    let default = action(default_name, default_errno).context("defaultAction")?;
    let mut ctx = ScmpFilterContext::new(default).context("libseccomp: new filter")?;
    // A binary tree of syscall numbers rather than a linear chain: the sentry interprets
    // the program on every call, and profiles like podman's list hundreds of names.
    if let Err(e) = ctx.set_ctl_optimize(2) {
        tracing::debug!("libseccomp cannot build a binary tree ({e}); using a linear filter");
    }
    for (i, a) in list(s, "architectures", "")
        .map_err(|_| anyhow::anyhow!("architectures: not a list"))?
        .iter()
        .enumerate()
    {
        let name = a
            .as_str()
            .with_context(|| format!("architectures[{i}]: not a string"))?;
        let arch = ScmpArch::from_str(name)
            .map_err(|_| anyhow::anyhow!("architectures[{i}] {name:?}: unknown architecture"))?;
        // The native one is already there; adding it again is an error to libseccomp.
        if arch != ScmpArch::native() && arch != ScmpArch::Native {
            ctx.add_arch(arch)
                .with_context(|| format!("architectures[{i}] {name:?}"))?;
        }
    }
    for (i, flag) in list(s, "flags", "")
        .map_err(|_| anyhow::anyhow!("flags: not a list"))?
        .iter()
        .enumerate()
    {
        match flag.as_str() {
            // LOG changes only what the kernel would log; TSYNC is moot for a process
            // that has one thread when the filter is attached; SPEC_ALLOW concerns the
            // host's speculation mitigations, which the sentry does not change.
            Some("SECCOMP_FILTER_FLAG_LOG")
            | Some("SECCOMP_FILTER_FLAG_TSYNC")
            | Some("SECCOMP_FILTER_FLAG_SPEC_ALLOW") => {}
            _ => bail!("flags[{i}] {flag}: unsupported flag"),
        }
    }
    for (i, sc) in list(s, "syscalls", "")
        .map_err(|_| anyhow::anyhow!("syscalls: not a list"))?
        .iter()
        .enumerate()
    {
        let here = format!("syscalls[{i}]");
        let name = str_field(sc, "action", &here)?;
        let errno_ret = opt_u32(sc, "errnoRet", &here)?;
        let act = action(name, errno_ret).with_context(|| format!("{here}.action"))?;
        let mut conds = Vec::new();
        for (j, a) in list(sc, "args", &here)?.iter().enumerate() {
            let at = format!("{here}.args[{j}]");
            let index = a
                .get("index")
                .and_then(Value::as_u64)
                .filter(|n| *n < 6)
                .with_context(|| format!("{at}.index: missing or not 0 to 5"))?;
            let value = a
                .get("value")
                .and_then(Value::as_u64)
                .with_context(|| format!("{at}.value: missing or not an unsigned integer"))?;
            let value_two = match a.get("valueTwo") {
                None | Some(Value::Null) => 0,
                Some(v) => v
                    .as_u64()
                    .with_context(|| format!("{at}.valueTwo: not an unsigned integer"))?,
            };
            let op_name = str_field(a, "op", &at)?;
            let (op, datum) =
                compare_op(op_name, value, value_two).with_context(|| format!("{at}.op"))?;
            conds.push((index as u32, ScmpArgCompare::new(index as u32, op, datum)));
        }
        if act == default {
            continue;
        }
        let names = list(sc, "names", &here)?;
        for (j, n) in names.iter().enumerate() {
            let n = n
                .as_str()
                .with_context(|| format!("{here}.names[{j}]: not a string"))?;
            let Ok(nr) = ScmpSyscall::from_name(n) else {
                tracing::debug!("seccomp: unknown syscall {n:?} skipped");
                continue;
            };
            add_rules(&mut ctx, act, nr, &conds)
                .with_context(|| format!("{here}: syscall {n:?}"))?;
        }
    }
    export(&ctx)
}

fn add_rules(
    ctx: &mut ScmpFilterContext,
    act: ScmpAction,
    nr: ScmpSyscall,
    conds: &[(u32, ScmpArgCompare)],
) -> anyhow::Result<()> {
    let mut indices: Vec<u32> = conds.iter().map(|c| c.0).collect();
    indices.sort_unstable();
    let distinct = indices.windows(2).all(|w| w.first() != w.last());
    let all: Vec<ScmpArgCompare> = conds.iter().map(|c| c.1).collect();
    if all.is_empty() {
        ctx.add_rule(act, nr)?;
    } else if distinct {
        ctx.add_rule_conditional(act, nr, &all)?;
    } else {
        for c in &all {
            ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))?;
        }
    }
    Ok(())
}

/// The filter as a program: libseccomp writes it to a file descriptor (a memfd here).
fn export(ctx: &ScmpFilterContext) -> anyhow::Result<Vec<u64>> {
    use std::io::{Read, Seek};
    let fd =
        nix::sys::memfd::memfd_create(c"carapace-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .context("memfd for the seccomp program")?;
    ctx.export_bpf(&fd).context("libseccomp: export")?;
    let mut f = std::fs::File::from(fd);
    f.rewind().context("reading the seccomp program")?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .context("reading the seccomp program")?;
    if bytes.is_empty() || bytes.len() % 8 != 0 {
        bail!("libseccomp exported a malformed program");
    }
    let words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect();
    if words.len() > sentry::kernel::seccomp::MAX_INSNS {
        bail!(
            "the compiled filter has {} instructions, more than the kernel's limit of {}",
            words.len(),
            sentry::kernel::seccomp::MAX_INSNS
        );
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry::kernel::seccomp::{self as k, Insn, SeccompData, AUDIT_ARCH_X86_64};
    use serde_json::json;

    fn run(words: &[u64], nr: i32, args: [u64; 6]) -> u32 {
        let prog: Vec<Insn> = words
            .iter()
            .map(|w| Insn::from_bytes(w.to_le_bytes()))
            .collect();
        let prog = k::validate(&prog).expect("libseccomp's program is valid");
        k::run(
            &prog,
            &SeccompData {
                nr,
                arch: AUDIT_ARCH_X86_64,
                instruction_pointer: 0,
                args,
            },
        )
    }

    fn err(v: Value) -> String {
        format!("{:#}", compile_seccomp(&v).expect_err("refused"))
    }

    #[test]
    fn compiles_profiles() {
        let p = compile_seccomp(&json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "no_such_call"], "action": "SCMP_ACT_ERRNO",
                 "errnoRet": 1},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_KILL_PROCESS",
                 "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
            ]
        }))
        .expect("compiles");
        let errno = |e: u32| k::RET_ERRNO | e;
        assert_eq!(run(&p, libc::SYS_mkdir as i32, [0; 6]), errno(1));
        assert_eq!(run(&p, libc::SYS_mkdirat as i32, [0; 6]), errno(1));
        assert_eq!(run(&p, libc::SYS_getpid as i32, [0; 6]), k::RET_ALLOW);
        assert_eq!(run(&p, libc::SYS_kill as i32, [1, 9, 0, 0, 0, 0]), errno(1));
        assert_eq!(
            run(&p, libc::SYS_kill as i32, [1, 15, 0, 0, 0, 0]),
            k::RET_ALLOW
        );
        let pers = libc::SYS_personality as i32;
        assert_eq!(run(&p, pers, [0x108, 0, 0, 0, 0, 0]), k::RET_KILL_PROCESS);
        assert_eq!(run(&p, pers, [0x107, 0, 0, 0, 0, 0]), k::RET_ALLOW);

        // defaultErrnoRet, as podman's profile uses it (ENOSYS for the unknown).
        let p = compile_seccomp(&json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
        }))
        .expect("compiles");
        assert_eq!(run(&p, libc::SYS_read as i32, [0; 6]), k::RET_ALLOW);
        assert_eq!(run(&p, libc::SYS_mkdir as i32, [0; 6]), k::RET_ERRNO | 38);
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        assert!(err(json!({})).contains("defaultAction"));
        assert!(err(json!({"defaultAction": "SCMP_ACT_NOPE"})).contains("defaultAction"));
        assert!(err(json!({"defaultAction": "SCMP_ACT_NOTIFY"})).contains("not supported"));
        assert!(err(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})
        )
        .contains("architectures[0]"));
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                         {"names": ["write"], "action": "SCMP_ACT_BOGUS"}]}));
        assert!(
            e.contains("linux.seccomp") && e.contains("syscalls[1].action"),
            "{e}"
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}));
        assert!(e.contains("syscalls[0].args[0].op"), "{e}");
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
        assert!(e.contains("syscalls[0].args[0].index"), "{e}");
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}));
        assert!(e.contains("flags[0]"), "{e}");
    }

    #[test]
    fn process_attributes() {
        let s = from_process(
            &json!({
                "noNewPrivileges": true,
                "capabilities": {"bounding": ["CAP_KILL", "CAP_SETUID"], "effective": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
            }),
            "process.",
        )
        .expect("valid");
        assert!(s.no_new_privs);
        let c = s.capabilities.expect("caps");
        assert_eq!(c.bounding, (1 << 5) | (1 << 7));
        assert_eq!((c.effective, c.permitted), (1 << 5, 0));
        assert_eq!(
            s.rlimits,
            vec![Rlimit {
                resource: 7,
                soft: 100,
                hard: 200
            }]
        );
        let bad = |v: Value| format!("{:#}", from_process(&v, "process.").expect_err("bad"));
        let e = bad(
            json!({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                                       {"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}),
        );
        assert!(
            e.contains("process.rlimits[1]") && e.contains("RLIMIT_BOGUS"),
            "{e}"
        );
        let e = bad(json!({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 1}]}));
        assert!(
            e.contains("process.rlimits[0]") && e.contains("soft"),
            "{e}"
        );
        let e = bad(json!({"capabilities": {"effective": ["CAP_KILL", "CAP_FLY"]}}));
        assert!(e.contains("process.capabilities.effective[1]"), "{e}");
        assert_eq!(capability_number("sys_admin").expect("known"), 21);
        assert_eq!(
            capability_names().first().map(String::as_str),
            Some("CAP_CHOWN")
        );
    }

    #[test]
    fn exec_takes_the_container_defaults_and_flags() {
        let container = from_config(&json!({
            "process": {"noNewPrivileges": true,
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                 "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 5, "hard": 6}]},
            "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}
        }))
        .expect("valid");
        assert!(container.seccomp.is_some());
        // A process.json with only its own rlimits keeps the container's other parts.
        let p = json!({"rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]});
        let own = from_process(&p, "").expect("valid");
        let mut s = for_exec(&p, own, container.clone());
        assert_eq!(s.rlimits[0].resource, 4);
        assert!(s.no_new_privs && s.seccomp == container.seccomp);
        assert_eq!(s.capabilities, container.capabilities);
        // --cap adds to bounding, effective, permitted (and, with inheritable, ambient).
        exec_flags(&mut s, &["CAP_CHOWN".into()], false).expect("known");
        let c = s.capabilities.expect("caps");
        assert_eq!((c.bounding, c.effective, c.permitted), (0x21, 0x21, 0x21));
        assert_eq!((c.inheritable, c.ambient), (0x21, 0x1));
        let p = json!({"noNewPrivileges": false, "capabilities": {}});
        let own = from_process(&p, "").expect("valid");
        let s = for_exec(&p, own, container);
        assert!(!s.no_new_privs);
        assert_eq!(s.capabilities, Some(CapSets::default()));
        let mut s = ProcessSecurity::default();
        assert!(exec_flags(&mut s, &["CAP_NOPE".into()], true).is_err());
        assert_eq!(capability_number("CAP_CHOWN").expect("known"), 0);
    }
}
