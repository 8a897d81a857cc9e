//! The security attributes the OCI runtime gives a process it starts (the container's
//! init, or one started by `carapace exec`): capability sets, `no_new_privs`, resource
//! limits and a seccomp filter. They are applied by the sentry to the sandbox's own
//! task before its first instruction; the application never holds host credentials.
#![deny(unsafe_code)]

use crate::kernel::creds::CAP_FULL;
use crate::kernel::seccomp::{self, Insn};
use crate::kernel::Task;
use serde::{Deserialize, Serialize};

/// The five capability sets of OCI `process.capabilities`, one bit per capability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

/// One resource limit: `RLIMIT_*` number, soft and hard values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// What the runtime applies to a new process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSecurity {
    /// `None`: the process keeps what its uid gives it (root: every capability).
    #[serde(default)]
    pub capabilities: Option<CapSets>,
    #[serde(default)]
    pub no_new_privs: bool,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// A classic-BPF seccomp program, one `struct sock_filter` per word (its 8 bytes,
    /// little-endian), as libseccomp exports it.
    #[serde(default)]
    pub seccomp: Option<Vec<u64>>,
}

impl ProcessSecurity {
    /// Check what [`ProcessSecurity::apply`] would refuse, before a process is made.
    pub fn check(&self) -> Result<(), String> {
        for r in &self.rlimits {
            if r.resource as usize >= crate::kernel::task::Rlimits::default().0.len()
                || r.soft > r.hard
            {
                return Err(format!("bad resource limit {r:?}"));
            }
        }
        self.program().map(|_| ())
    }

    /// The seccomp program, validated.
    fn program(&self) -> Result<Option<Vec<Insn>>, String> {
        let Some(words) = &self.seccomp else {
            return Ok(None);
        };
        let prog: Vec<Insn> = words
            .iter()
            .map(|w| Insn::from_bytes(w.to_le_bytes()))
            .collect();
        seccomp::validate(&prog)
            .map(Some)
            .map_err(|e| format!("seccomp filter: {}", e.0))
    }

    /// Apply to a process just loaded and not yet run. The capability sets are set as
    /// the runtime sets them before its `execve` of the program, and then go through
    /// that `execve`'s transformation (capabilities(7)): root keeps its bounding and
    /// inheritable sets, anyone else only the ambient set, as under runc.
    pub fn apply(&self, task: &mut Task) -> Result<(), String> {
        if let Some(c) = &self.capabilities {
            let cr = &mut task.creds;
            cr.cap_bounding = c.bounding & CAP_FULL;
            cr.cap_effective = c.effective & CAP_FULL;
            cr.cap_permitted = c.permitted & CAP_FULL;
            cr.cap_inheritable = c.inheritable & CAP_FULL;
            // Ambient capabilities must be permitted and inheritable (PR_CAP_AMBIENT_RAISE).
            cr.cap_ambient = c.ambient & c.permitted & c.inheritable & CAP_FULL;
            cr.exec_transform();
        }
        for r in &self.rlimits {
            match task.rlimits.0.get_mut(r.resource as usize) {
                Some(slot) if r.soft <= r.hard => *slot = (r.soft, r.hard),
                _ => return Err(format!("bad resource limit {r:?}")),
            }
            // Descriptors are checked against the table's own copy of the soft limit.
            if r.resource == libc::RLIMIT_NOFILE {
                task.files().limit = u32::try_from(r.soft).unwrap_or(u32::MAX);
            }
        }
        if self.no_new_privs {
            task.shared
                .no_new_privs
                .store(true, std::sync::atomic::Ordering::Release);
        }
        if let Some(prog) = self.program()? {
            let filter = seccomp::Filter::attach(prog, false, task.shared.seccomp.filter())
                .map_err(|e| format!("seccomp filter: {e}"))?;
            task.shared.seccomp.set_filter(filter);
        }
        task.publish_proc();
        Ok(())
    }
}
