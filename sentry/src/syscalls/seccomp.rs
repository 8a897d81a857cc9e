//! seccomp(2) and `prctl(PR_SET_SECCOMP)`: the application installs filters that the
//! sentry runs before emulating each of its calls (see `kernel::seccomp`).
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::seccomp::{self, flags, Insn};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::{errno, return_errno};

const SECCOMP_SET_MODE_STRICT: u32 = 0;
const SECCOMP_SET_MODE_FILTER: u32 = 1;
const SECCOMP_GET_ACTION_AVAIL: u32 = 2;
const SECCOMP_GET_NOTIF_SIZES: u32 = 3;

/// The flags `SECCOMP_SET_MODE_FILTER` accepts. `NEW_LISTENER` (and
/// `WAIT_KILLABLE_RECV`, which needs it) is refused with `EINVAL`, as by a kernel
/// without user notification: no supervisor outside the sandbox may answer for the
/// application, and `SECCOMP_RET_USER_NOTIF` then fails the call with `ENOSYS`.
const SUPPORTED_FLAGS: u32 = flags::TSYNC | flags::LOG | flags::SPEC_ALLOW | flags::TSYNC_ESRCH;

/// seccomp(2).
pub fn sys_seccomp(task: &mut Task, op: u32, fl: u32, uargs: UserAddr) -> Result<u64> {
    match op {
        SECCOMP_SET_MODE_STRICT => {
            if fl != 0 || !uargs.is_null() {
                return_errno!(EINVAL);
            }
            set_strict(task)
        }
        SECCOMP_SET_MODE_FILTER => set_filter(task, fl, uargs),
        SECCOMP_GET_ACTION_AVAIL => {
            if fl != 0 {
                return_errno!(EINVAL);
            }
            let action: u32 = task.read_obj(uargs)?;
            if !seccomp::action_available(action) {
                return_errno!(EOPNOTSUPP);
            }
            Ok(0)
        }
        SECCOMP_GET_NOTIF_SIZES => {
            if fl != 0 {
                return_errno!(EINVAL);
            }
            // struct seccomp_notif, seccomp_notif_resp, seccomp_data.
            let sizes: [u16; 3] = [80, 24, seccomp::SECCOMP_DATA_SIZE as u16];
            task.write_obj(uargs, &sizes)?;
            Ok(0)
        }
        _ => return_errno!(EINVAL),
    }
}

/// `prctl(PR_SET_SECCOMP, mode, filter)`: the older interface, without flags.
pub fn sys_prctl_set_seccomp(task: &mut Task, mode: u64, arg: u64) -> Result<u64> {
    match u8::try_from(mode) {
        Ok(seccomp::MODE_STRICT) => set_strict(task),
        Ok(seccomp::MODE_FILTER) => set_filter(task, 0, UserAddr(arg)),
        _ => return_errno!(EINVAL),
    }
}

fn set_strict(task: &mut Task) -> Result<u64> {
    if task.shared.seccomp.mode() != seccomp::MODE_DISABLED {
        return_errno!(EINVAL);
    }
    task.shared.seccomp.set_strict();
    Ok(0)
}

fn set_filter(task: &mut Task, fl: u32, uargs: UserAddr) -> Result<u64> {
    if fl & !SUPPORTED_FLAGS != 0 {
        return_errno!(EINVAL);
    }
    let prog = read_program(task, uargs)?;
    let prog = seccomp::validate(&prog).map_err(|e| errno!(EINVAL, e.0))?;
    seccomp::install(task, prog, fl)
}

/// Copy in a `struct sock_fprog` and its instructions, with Linux's order of checks:
/// `EFAULT`, a length outside 1..=4096 (`EINVAL`), then the privilege check: without
/// `no_new_privs` the caller needs `CAP_SYS_ADMIN` (`EACCES`).
fn read_program(task: &Task, uargs: UserAddr) -> Result<Vec<Insn>> {
    let raw: [u8; 16] = task.read_obj(uargs)?;
    let len = usize::from(u16::from_le_bytes([raw[0], raw[1]]));
    let mut ptr = [0u8; 8];
    ptr.copy_from_slice(raw.get(8..16).unwrap_or(&[0; 8]));
    let filter = UserAddr(u64::from_le_bytes(ptr));
    if len == 0 || len > seccomp::MAX_INSNS {
        return_errno!(EINVAL);
    }
    if !task.no_new_privs() && !task.creds.has_cap(crate::kernel::creds::CAP_SYS_ADMIN) {
        return_errno!(EACCES);
    }
    let mut bytes = vec![0u8; len * 8];
    task.copy_in(filter, &mut bytes)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            Insn::from_bytes(b)
        })
        .collect())
}
