//! Seccomp allow-lists as data: the `seccomp/*.policy` files are parsed here and loaded
//! with libseccomp. The format is described at the top of `seccomp/sentry.policy`.

use anyhow::{bail, Context};
use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

/// What happens to a call no rule allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The call traps with SIGSYS, which kills the process: the normal mode.
    Enforce,
    /// The call runs and the kernel logs it (`dmesg`): for finding what a list misses
    /// (`CARAPACE_SECCOMP=log`), never for production.
    Log,
}

impl Mode {
    /// `Log` if the environment asks for it, else `Enforce`.
    pub fn from_env() -> Mode {
        match std::env::var("CARAPACE_SECCOMP").as_deref() {
            Ok("log") => Mode::Log,
            _ => Mode::Enforce,
        }
    }
}

/// One comparison on a syscall argument: `(args[arg] & mask) == value`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cond {
    arg: u32,
    mask: Option<u64>,
    value: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Allow,
    Errno(i32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    name: String,
    conds: Vec<Cond>,
    action: Action,
}

/// A parsed allow-list.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
}

/// The constants policies may name instead of spelling numbers.
fn constant(name: &str) -> Option<u64> {
    let ns_flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWCGROUP;
    let v: u64 = match name {
        "AT_EMPTY_PATH" => libc::AT_EMPTY_PATH as u64,
        "AT_SYMLINK_NOFOLLOW" => libc::AT_SYMLINK_NOFOLLOW as u64,
        "CLONE_NEW_ANY" => ns_flags as u64,
        "TCGETS" => libc::TCGETS,
        "TCSETS" => libc::TCSETS,
        "TCSETSW" => libc::TCSETSW,
        "TCSETSF" => libc::TCSETSF,
        "TIOCGWINSZ" => libc::TIOCGWINSZ,
        "TIOCSWINSZ" => libc::TIOCSWINSZ,
        "TIOCGPGRP" => libc::TIOCGPGRP,
        "FIONREAD" => libc::FIONREAD,
        "RLIMIT_CORE" => libc::RLIMIT_CORE as u64,
        "SOL_SOCKET" => libc::SOL_SOCKET as u64,
        "SHUT_RDWR" => libc::SHUT_RDWR as u64,
        "SO_RCVTIMEO" => libc::SO_RCVTIMEO as u64,
        "SO_SNDTIMEO" => libc::SO_SNDTIMEO as u64,
        "AF_INET" => libc::AF_INET as u64,
        "AF_INET6" => libc::AF_INET6 as u64,
        "AF_NETLINK" => libc::AF_NETLINK as u64,
        "PR_SET_NAME" => libc::PR_SET_NAME as u64,
        "PR_GET_NAME" => libc::PR_GET_NAME as u64,
        "PR_SET_PDEATHSIG" => libc::PR_SET_PDEATHSIG as u64,
        "PR_SET_NO_NEW_PRIVS" => libc::PR_SET_NO_NEW_PRIVS as u64,
        "SECCOMP_SET_MODE_FILTER" => libc::SECCOMP_SET_MODE_FILTER as u64,
        "ARCH_SET_FS" => 0x1002,
        "ARCH_SET_GS" => 0x1001,
        _ => return None,
    };
    Some(v)
}

fn errno_named(name: &str) -> Option<i32> {
    Some(match name {
        "ENOSYS" => libc::ENOSYS,
        "EPERM" => libc::EPERM,
        "EACCES" => libc::EACCES,
        "ENOENT" => libc::ENOENT,
        _ => return None,
    })
}

/// A call's number from our own table (libseccomp's may predate newer calls such as
/// `fchmodat2`).
fn syscall_number(name: &str) -> Option<ScmpSyscall> {
    let sys = syscall_tables::by_name(syscall_tables::Arch::X86_64, name)?;
    i32::try_from(sys.nr).ok().map(ScmpSyscall::from)
}

fn number(s: &str) -> anyhow::Result<u64> {
    if let Some(v) = constant(s) {
        return Ok(v);
    }
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.with_context(|| format!("{s:?} is neither a number nor a known constant"))
}

/// `aN==V` or `aN&MASK==V`.
fn parse_cond(s: &str) -> anyhow::Result<Cond> {
    let Some((lhs, value)) = s.split_once("==") else {
        bail!("{s:?}: expected aN==VALUE or aN&MASK==VALUE");
    };
    let (arg, mask) = match lhs.split_once('&') {
        Some((a, m)) => (a, Some(number(m)?)),
        None => (lhs, None),
    };
    let arg: u32 = arg
        .strip_prefix('a')
        .and_then(|n| n.parse().ok())
        .filter(|n| *n < 6)
        .with_context(|| format!("{s:?}: arguments are a0 to a5"))?;
    Ok(Cond {
        arg,
        mask,
        value: number(value)?,
    })
}

impl Policy {
    pub fn parse(text: &str) -> anyhow::Result<Policy> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = || format!("line {}: {raw:?}", i + 1);
            let (body, action) = match line.split_once("->") {
                Some((b, e)) => {
                    let e = e.trim();
                    let errno =
                        errno_named(e).with_context(|| format!("{}: unknown errno {e}", at()))?;
                    (b, Action::Errno(errno))
                }
                None => (line, Action::Allow),
            };
            let mut words = body.split_whitespace();
            let name = words.next().with_context(at)?.to_string();
            let conds = words
                .map(parse_cond)
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(at)?;
            if syscall_number(&name).is_none() {
                bail!("{}: no system call named {name}", at());
            }
            rules.push(Rule {
                name,
                conds,
                action,
            });
        }
        Ok(Policy { rules })
    }

    /// The names of the calls the policy allows (in any form).
    #[cfg(test)]
    fn allowed_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .rules
            .iter()
            .filter(|r| r.action == Action::Allow)
            .map(|r| r.name.as_str())
            .collect();
        v.dedup();
        v
    }

    fn context(&self, mode: Mode) -> anyhow::Result<ScmpFilterContext> {
        let default = match mode {
            // A trap, not a kill: the systrap stubs inherit this filter, and their own
            // filter's trap for application calls must be the most severe action. The
            // sentry installs no SIGSYS handler, so the signal still kills it.
            Mode::Enforce => ScmpAction::Trap,
            Mode::Log => ScmpAction::Log,
        };
        let mut ctx = ScmpFilterContext::new(default)?;
        // Calls through another ABI (i386 `int 0x80`, x32, which includes any number with
        // bit 30 set) are never made by the sentry; they trap for the same reason.
        ctx.set_act_badarch(match mode {
            Mode::Enforce => ScmpAction::Trap,
            Mode::Log => ScmpAction::Log,
        })?;
        for rule in &self.rules {
            let sys = syscall_number(&rule.name)
                .with_context(|| format!("no system call named {}", rule.name))?;
            let action = match rule.action {
                Action::Allow => ScmpAction::Allow,
                Action::Errno(e) => ScmpAction::Errno(e),
            };
            let cmps: Vec<ScmpArgCompare> = rule
                .conds
                .iter()
                .map(|c| match c.mask {
                    Some(m) => ScmpArgCompare::new(c.arg, ScmpCompareOp::MaskedEqual(m), c.value),
                    None => ScmpArgCompare::new(c.arg, ScmpCompareOp::Equal, c.value),
                })
                .collect();
            if cmps.is_empty() {
                ctx.add_rule(action, sys)?;
            } else {
                ctx.add_rule_conditional(action, sys, &cmps)?;
            }
        }
        Ok(ctx)
    }

    /// Load the filter for the calling thread (and the children it makes from now on).
    pub fn load(&self, mode: Mode) -> anyhow::Result<()> {
        self.context(mode)?.load()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policies_parse() {
        for (name, text) in [
            ("sentry", include_str!("../../seccomp/sentry.policy")),
            ("gofer", include_str!("../../seccomp/gofer.policy")),
        ] {
            let p = Policy::parse(text).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(p.allowed_names().contains(&"read"), "{name}");
            // Nothing that leaves the sandbox's own namespaces or reaches the network.
            for forbidden in ["mount", "unshare", "setns", "pivot_root", "socket", "bpf"] {
                assert!(
                    !p.allowed_names().contains(&forbidden),
                    "{name} allows {forbidden}"
                );
            }
            p.context(Mode::Enforce).unwrap();
        }
    }

    #[test]
    fn host_network_adds_inet_sockets_only() {
        let text = format!(
            "{}{}",
            include_str!("../../seccomp/sentry.policy"),
            include_str!("../../seccomp/sentry-hostnet.policy")
        );
        let p = Policy::parse(&text).unwrap();
        let socket: Vec<&Rule> = p.rules.iter().filter(|r| r.name == "socket").collect();
        let families: Vec<u64> = socket.iter().map(|r| r.conds[0].value).collect();
        assert_eq!(
            families,
            [
                libc::AF_INET as u64,
                libc::AF_INET6 as u64,
                libc::AF_NETLINK as u64
            ]
        );
        // Netlink's route protocol only.
        assert_eq!(
            socket[2].conds.get(1).map(|c| (c.arg, c.value)),
            Some((2, 0))
        );
        for forbidden in ["mount", "unshare", "setns", "bpf", "socketpair"] {
            assert!(!p.allowed_names().contains(&forbidden), "{forbidden}");
        }
        p.context(Mode::Enforce).unwrap();
    }

    #[test]
    fn rules_and_errors() {
        let p =
            Policy::parse("read\nclone a0&CLONE_NEW_ANY==0 a1==0x10\nclone3 -> ENOSYS\n").unwrap();
        assert_eq!(p.rules.len(), 3);
        assert_eq!(p.rules[1].conds[1].value, 16);
        assert_eq!(p.rules[2].action, Action::Errno(libc::ENOSYS));
        for bad in [
            "nosuchcall",
            "read a9==1",
            "read a0=1",
            "read a0==FOO",
            "read -> EWHAT",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }
}
