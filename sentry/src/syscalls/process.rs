//! Process and identity syscalls: exit, ids, credentials, uname, arch_prctl, prctl,
//! rlimits, and the thread bookkeeping glibc sets up at start.
#![deny(unsafe_code)]

use super::SyscallReturn;
use crate::error::Result;
use crate::kernel::creds::{CAP_FULL, CAP_SETGID, CAP_SETUID};
use crate::kernel::task::ExitStatus;
use crate::kernel::{Task, KERNEL_RELEASE, KERNEL_VERSION};
use crate::mm::UserAddr;
use crate::{errno, return_errno};

pub fn sys_exit_group(task: &mut Task, code: i32) -> Result<SyscallReturn> {
    let status = ExitStatus::Exited(code & 0xff);
    task.kernel
        .group_exit_from(&task.tg, status, Some(task.tid));
    task.exit_status = Some(status);
    Ok(SyscallReturn::Exit)
}

/// `exit`: this thread only; the process ends with the last one.
pub fn sys_exit(task: &mut Task, code: i32) -> Result<SyscallReturn> {
    task.exit_status = Some(ExitStatus::Exited(code & 0xff));
    Ok(SyscallReturn::Exit)
}

pub fn sys_getpid(task: &mut Task) -> Result<u64> {
    Ok(task.tgid as u64)
}

pub fn sys_gettid(task: &mut Task) -> Result<u64> {
    Ok(task.tid as u64)
}

/// The parent's pid; 0 for init, whose parent is outside the sandbox.
pub fn sys_getppid(task: &mut Task) -> Result<u64> {
    Ok(task.tg.parent().map(|p| p.tgid).unwrap_or(0) as u64)
}

pub fn sys_getuid(task: &mut Task) -> Result<u64> {
    Ok(u64::from(task.creds.ruid))
}

pub fn sys_geteuid(task: &mut Task) -> Result<u64> {
    Ok(u64::from(task.creds.euid))
}

pub fn sys_getgid(task: &mut Task) -> Result<u64> {
    Ok(u64::from(task.creds.rgid))
}

pub fn sys_getegid(task: &mut Task) -> Result<u64> {
    Ok(u64::from(task.creds.egid))
}

pub fn sys_getresuid(task: &mut Task, r: UserAddr, e: UserAddr, s: UserAddr) -> Result<u64> {
    let c = task.creds.clone();
    task.write_obj(r, &c.ruid)?;
    task.write_obj(e, &c.euid)?;
    task.write_obj(s, &c.suid)?;
    Ok(0)
}

pub fn sys_getresgid(task: &mut Task, r: UserAddr, e: UserAddr, s: UserAddr) -> Result<u64> {
    let c = task.creds.clone();
    task.write_obj(r, &c.rgid)?;
    task.write_obj(e, &c.egid)?;
    task.write_obj(s, &c.sgid)?;
    Ok(0)
}

/// `-1` as a `uid_t` argument means "leave unchanged".
const KEEP: u32 = u32::MAX;

/// setresuid(2): unprivileged callers may only pick among their current ids.
pub fn sys_setresuid(task: &mut Task, r: u32, e: u32, s: u32) -> Result<u64> {
    let c = &task.creds;
    let allowed = |id: u32| id == KEEP || id == c.ruid || id == c.euid || id == c.suid;
    let permitted = allowed(r) && allowed(e) && allowed(s);
    if !(c.has_cap(CAP_SETUID) || permitted) {
        return_errno!(EPERM);
    }
    let pick = |new: u32, old: u32| if new == KEEP { old } else { new };
    let (r, e, s) = (pick(r, c.ruid), pick(e, c.euid), pick(s, c.suid));
    let keep = c.keep_caps;
    task.creds.set_uids(r, e, s, e, keep);
    Ok(0)
}

pub fn sys_setresgid(task: &mut Task, r: u32, e: u32, s: u32) -> Result<u64> {
    let c = &task.creds;
    let allowed = |id: u32| id == KEEP || id == c.rgid || id == c.egid || id == c.sgid;
    let permitted = allowed(r) && allowed(e) && allowed(s);
    if !(c.has_cap(CAP_SETGID) || permitted) {
        return_errno!(EPERM);
    }
    let c = &mut task.creds;
    if r != KEEP {
        c.rgid = r;
    }
    if e != KEEP {
        c.egid = e;
    }
    if s != KEEP {
        c.sgid = s;
    }
    c.fsgid = c.egid;
    Ok(0)
}

/// setuid(2): privileged callers set all ids; others only the effective one.
pub fn sys_setuid(task: &mut Task, uid: u32) -> Result<u64> {
    if uid == KEEP {
        return_errno!(EINVAL);
    }
    if task.creds.has_cap(CAP_SETUID) {
        sys_setresuid(task, uid, uid, uid)
    } else {
        sys_setresuid(task, KEEP, uid, KEEP)
    }
}

pub fn sys_setgid(task: &mut Task, gid: u32) -> Result<u64> {
    if gid == KEEP {
        return_errno!(EINVAL);
    }
    if task.creds.has_cap(CAP_SETGID) {
        sys_setresgid(task, gid, gid, gid)
    } else {
        sys_setresgid(task, KEEP, gid, KEEP)
    }
}

/// setfsuid(2): the uid file access checks use. Allowed to any of the current ids, or
/// anything with `CAP_SETUID`; returns the previous one whether or not it changed.
pub fn sys_setfsuid(task: &mut Task, fsuid: u32) -> Result<u64> {
    let c = &task.creds;
    let old = c.fsuid;
    let mine = [c.ruid, c.euid, c.suid, c.fsuid].contains(&fsuid);
    if fsuid != KEEP && (mine || c.has_cap(CAP_SETUID)) {
        let (r, e, s, keep) = (c.ruid, c.euid, c.suid, c.keep_caps);
        task.creds.set_uids(r, e, s, fsuid, keep);
    }
    Ok(u64::from(old))
}

/// setfsgid(2), as setfsuid with `CAP_SETGID`.
pub fn sys_setfsgid(task: &mut Task, fsgid: u32) -> Result<u64> {
    let c = &task.creds;
    let old = c.fsgid;
    let mine = [c.rgid, c.egid, c.sgid, c.fsgid].contains(&fsgid);
    if fsgid != KEEP && (mine || c.has_cap(CAP_SETGID)) {
        task.creds.fsgid = fsgid;
    }
    Ok(u64::from(old))
}

pub fn sys_setreuid(task: &mut Task, r: u32, e: u32) -> Result<u64> {
    sys_setresuid(task, r, e, KEEP)
}

pub fn sys_setregid(task: &mut Task, r: u32, e: u32) -> Result<u64> {
    sys_setresgid(task, r, e, KEEP)
}

pub fn sys_getgroups(task: &mut Task, size: i32, list: UserAddr) -> Result<u64> {
    let groups = task.creds.groups.clone();
    if size < 0 {
        return_errno!(EINVAL);
    }
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return_errno!(EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    task.copy_out(list, &bytes)?;
    Ok(groups.len() as u64)
}

/// Linux's `NGROUPS_MAX`.
const NGROUPS_MAX: usize = 65536;

pub fn sys_setgroups(task: &mut Task, size: usize, list: UserAddr) -> Result<u64> {
    if size > NGROUPS_MAX {
        return_errno!(EINVAL);
    }
    if !task.creds.has_cap(CAP_SETGID) {
        return_errno!(EPERM);
    }
    let mut bytes = vec![0u8; size * 4];
    task.copy_in(list, &mut bytes)?;
    task.creds.groups = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(0)
}

/// `struct utsname`: six 65-byte fields.
const UTS_FIELD: usize = 65;

pub fn sys_uname(task: &mut Task, buf: UserAddr) -> Result<u64> {
    let hostname = task
        .kernel
        .hostname
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    let domain = task
        .kernel
        .domainname
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    let fields: [&[u8]; 6] = [
        b"Linux",
        &hostname,
        KERNEL_RELEASE.as_bytes(),
        KERNEL_VERSION.as_bytes(),
        b"x86_64",
        &domain,
    ];
    let mut out = vec![0u8; UTS_FIELD * 6];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(UTS_FIELD - 1);
        if let (Some(dst), Some(src)) = (out.get_mut(i * UTS_FIELD..i * UTS_FIELD + n), f.get(..n))
        {
            dst.copy_from_slice(src);
        }
    }
    task.copy_out(buf, &out)?;
    Ok(0)
}

/// Longest host or domain name (`__NEW_UTS_LEN`).
const UTS_NAME_MAX: usize = 64;

fn set_uts_name(task: &mut Task, name: UserAddr, len: usize, domain: bool) -> Result<u64> {
    if !task.creds.has_cap(crate::kernel::creds::CAP_SYS_ADMIN) {
        return_errno!(EPERM);
    }
    if len > UTS_NAME_MAX {
        return_errno!(EINVAL);
    }
    let mut buf = vec![0u8; len];
    task.copy_in(name, &mut buf)?;
    let slot = if domain {
        &task.kernel.domainname
    } else {
        &task.kernel.hostname
    };
    if let Ok(mut s) = slot.lock() {
        *s = buf;
    }
    Ok(0)
}

pub fn sys_sethostname(task: &mut Task, name: UserAddr, len: usize) -> Result<u64> {
    set_uts_name(task, name, len, false)
}

pub fn sys_setdomainname(task: &mut Task, name: UserAddr, len: usize) -> Result<u64> {
    set_uts_name(task, name, len, true)
}

const ARCH_SET_GS: i32 = 0x1001;
const ARCH_SET_FS: i32 = 0x1002;
const ARCH_GET_FS: i32 = 0x1003;
const ARCH_GET_GS: i32 = 0x1004;
const ARCH_GET_CPUID: i32 = 0x1011;
const ARCH_SET_CPUID: i32 = 0x1012;

/// The highest canonical user address + 1; fs/gs bases beyond it fault in Linux.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

pub fn sys_arch_prctl(task: &mut Task, code: i32, addr: u64) -> Result<u64> {
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if addr >= TASK_SIZE {
                return_errno!(EPERM);
            }
            if code == ARCH_SET_FS {
                task.regs.fs_base = addr;
            } else {
                if addr != 0 {
                    // The platform's patched syscall sites find their way through gs.
                    task.mm().unpatch_all();
                }
                task.regs.gs_base = addr;
            }
            Ok(0)
        }
        ARCH_GET_FS | ARCH_GET_GS => {
            let v = if code == ARCH_GET_FS {
                task.regs.fs_base
            } else {
                task.regs.gs_base
            };
            task.write_obj(UserAddr(addr), &v)?;
            Ok(0)
        }
        ARCH_GET_CPUID => Ok(1),
        ARCH_SET_CPUID => return_errno!(ENODEV),
        _ => return_errno!(EINVAL),
    }
}

pub fn sys_set_tid_address(task: &mut Task, addr: UserAddr) -> Result<u64> {
    task.clear_child_tid = addr;
    Ok(task.tid as u64)
}

/// `sizeof(struct robust_list_head)` on x86_64.
const ROBUST_LIST_HEAD_SIZE: usize = 24;

pub fn sys_set_robust_list(task: &mut Task, head: UserAddr, len: usize) -> Result<u64> {
    if len != ROBUST_LIST_HEAD_SIZE {
        return_errno!(EINVAL);
    }
    task.robust_list = (head, len);
    Ok(0)
}

pub fn sys_get_robust_list(
    task: &mut Task,
    pid: i32,
    head_ptr: UserAddr,
    len_ptr: UserAddr,
) -> Result<u64> {
    if pid != 0 && pid != task.tid {
        return_errno!(ESRCH);
    }
    task.write_obj(head_ptr, &task.robust_list.0 .0)?;
    task.write_obj(len_ptr, &(task.robust_list.1 as u64))?;
    Ok(0)
}

/// `struct rlimit64`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Rlimit {
    cur: u64,
    max: u64,
}

const RLIM_NLIMITS: u32 = 16;

pub fn sys_prlimit64(
    task: &mut Task,
    pid: i32,
    resource: u32,
    new: UserAddr,
    old: UserAddr,
) -> Result<u64> {
    if pid != 0 && pid != task.tgid {
        return_errno!(ESRCH);
    }
    if resource >= RLIM_NLIMITS {
        return_errno!(EINVAL);
    }
    let slot = resource as usize;
    let cur = *task.rlimits.0.get(slot).ok_or(errno!(EINVAL))?;
    let new_val = if new.is_null() {
        None
    } else {
        Some(task.read_obj::<Rlimit>(new)?)
    };
    if let Some(n) = new_val {
        if n.cur > n.max {
            return_errno!(EINVAL);
        }
        if n.max > cur.1 && !task.creds.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE) {
            return_errno!(EPERM);
        }
        if resource == libc::RLIMIT_NOFILE && n.max > NR_OPEN {
            return_errno!(EPERM);
        }
    }
    if !old.is_null() {
        task.write_obj(
            old,
            &Rlimit {
                cur: cur.0,
                max: cur.1,
            },
        )?;
    }
    if let (Some(n), Some(s)) = (new_val, task.rlimits.0.get_mut(slot)) {
        *s = (n.cur, n.max);
        if resource == libc::RLIMIT_NOFILE {
            task.files().limit = u32::try_from(n.cur).unwrap_or(u32::MAX);
        }
    }
    Ok(0)
}

/// `fs.nr_open`: the hard ceiling for RLIMIT_NOFILE.
const NR_OPEN: u64 = 1 << 20;

pub fn sys_getrlimit(task: &mut Task, resource: u32, old: UserAddr) -> Result<u64> {
    sys_prlimit64(task, 0, resource, UserAddr(0), old)
}

pub fn sys_setrlimit(task: &mut Task, resource: u32, new: UserAddr) -> Result<u64> {
    if new.is_null() {
        return_errno!(EFAULT);
    }
    sys_prlimit64(task, 0, resource, new, UserAddr(0))
}

pub fn sys_prctl(task: &mut Task, option: i32, arg2: u64, _arg3: u64) -> Result<u64> {
    match option {
        libc::PR_SET_NAME => {
            let mut name = [0u8; 16];
            task.copy_in(UserAddr(arg2), &mut name)?;
            let n = name.iter().position(|&b| b == 0).unwrap_or(15).min(15);
            task.set_comm(name.get(..n).unwrap_or_default());
            Ok(0)
        }
        libc::PR_GET_NAME => {
            let mut name = [0u8; 16];
            for (d, s) in name.iter_mut().zip(task.comm().iter().take(15)) {
                *d = *s;
            }
            task.copy_out(UserAddr(arg2), &name)?;
            Ok(0)
        }
        libc::PR_SET_PDEATHSIG => {
            if arg2 > 64 {
                return_errno!(EINVAL);
            }
            task.shared
                .pdeath_signal
                .store(arg2 as i32, std::sync::atomic::Ordering::Release);
            Ok(0)
        }
        libc::PR_GET_PDEATHSIG => {
            let v = task
                .shared
                .pdeath_signal
                .load(std::sync::atomic::Ordering::Acquire);
            task.write_obj(UserAddr(arg2), &v)?;
            Ok(0)
        }
        libc::PR_GET_DUMPABLE => Ok(u64::from(task.dumpable)),
        libc::PR_SET_DUMPABLE => {
            if arg2 > 1 {
                return_errno!(EINVAL);
            }
            task.dumpable = arg2 == 1;
            Ok(0)
        }
        libc::PR_SET_NO_NEW_PRIVS => {
            if arg2 != 1 {
                return_errno!(EINVAL);
            }
            task.shared
                .no_new_privs
                .store(true, std::sync::atomic::Ordering::Release);
            Ok(0)
        }
        libc::PR_GET_NO_NEW_PRIVS => Ok(u64::from(task.no_new_privs())),
        libc::PR_SET_CHILD_SUBREAPER => {
            task.tg.state().child_subreaper = arg2 != 0;
            Ok(0)
        }
        libc::PR_GET_CHILD_SUBREAPER => {
            let v = i32::from(task.tg.state().child_subreaper);
            task.write_obj(UserAddr(arg2), &v)?;
            Ok(0)
        }
        libc::PR_GET_SECCOMP => Ok(u64::from(task.shared.seccomp.mode())),
        libc::PR_SET_SECCOMP => super::seccomp::sys_prctl_set_seccomp(task, arg2, _arg3),
        libc::PR_CAPBSET_READ => {
            if arg2 > u64::from(crate::kernel::creds::CAP_LAST_CAP) {
                return_errno!(EINVAL);
            }
            Ok((task.creds.cap_bounding >> arg2) & 1)
        }
        libc::PR_CAPBSET_DROP => {
            if arg2 > u64::from(crate::kernel::creds::CAP_LAST_CAP) {
                return_errno!(EINVAL);
            }
            if !task.creds.has_cap(crate::kernel::creds::CAP_SETPCAP) {
                return_errno!(EPERM);
            }
            task.creds.cap_bounding &= !(1u64 << arg2);
            Ok(0)
        }
        libc::PR_GET_KEEPCAPS => Ok(u64::from(task.creds.keep_caps)),
        libc::PR_SET_KEEPCAPS => {
            if arg2 > 1 {
                return_errno!(EINVAL);
            }
            task.creds.keep_caps = arg2 == 1;
            Ok(0)
        }
        libc::PR_CAP_AMBIENT => cap_ambient(task, arg2, _arg3),
        libc::PR_GET_TIMERSLACK => Ok(0),
        libc::PR_SET_TIMERSLACK => Ok(0),
        _ => return_errno!(EINVAL),
    }
}

/// `prctl(PR_CAP_AMBIENT, op, cap)`: the ambient set (capabilities(7)). A capability
/// may be raised only while it is permitted and inheritable.
fn cap_ambient(task: &mut Task, op: u64, cap: u64) -> Result<u64> {
    let c = &mut task.creds;
    if op == libc::PR_CAP_AMBIENT_CLEAR_ALL as u64 {
        c.cap_ambient = 0;
        return Ok(0);
    }
    if cap > u64::from(crate::kernel::creds::CAP_LAST_CAP) {
        return_errno!(EINVAL);
    }
    let bit = 1u64 << cap;
    match op as i32 {
        libc::PR_CAP_AMBIENT_IS_SET => Ok(u64::from(c.cap_ambient & bit != 0)),
        libc::PR_CAP_AMBIENT_RAISE => {
            if c.cap_permitted & c.cap_inheritable & bit == 0 {
                return_errno!(EPERM);
            }
            c.cap_ambient |= bit;
            Ok(0)
        }
        libc::PR_CAP_AMBIENT_LOWER => {
            c.cap_ambient &= !bit;
            Ok(0)
        }
        _ => return_errno!(EINVAL),
    }
}

/// `_LINUX_CAPABILITY_VERSION_1`, `_2` and `_3`.
const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// Check a `cap_user_header_t`; an unknown version is answered with the one we prefer.
fn cap_header(task: &Task, hdr: UserAddr, data: UserAddr) -> Result<(u32, i32)> {
    let [version, pid]: [u32; 2] = task.read_obj(hdr)?;
    if version != CAP_V1 && version != CAP_V2 && version != CAP_V3 {
        task.write_obj(hdr, &[CAP_V3, pid])?;
        if data.is_null() {
            return Err(errno!(EINVAL, "probe"));
        }
        return_errno!(EINVAL);
    }
    Ok((version, pid as i32))
}

/// capget(2): the calling thread's sets (other tasks in the sandbox share the same
/// credentials model; they are reported only for the caller).
pub fn sys_capget(task: &mut Task, hdr: UserAddr, data: UserAddr) -> Result<u64> {
    let (version, pid) = match cap_header(task, hdr, data) {
        Err(e) if e.msg == "probe" => return Ok(0),
        other => other?,
    };
    if pid < 0 {
        return_errno!(EINVAL);
    }
    if pid != 0 && pid != task.tid && task.kernel.pids().task(pid).is_none() {
        return_errno!(ESRCH);
    }
    if data.is_null() {
        return Ok(0);
    }
    let c = &task.creds;
    let words = if version == CAP_V1 { 1 } else { 2 };
    let mut out = Vec::new();
    for w in 0..words {
        let part = |v: u64| ((v >> (32 * w)) & 0xffff_ffff) as u32;
        out.extend_from_slice(&part(c.cap_effective).to_le_bytes());
        out.extend_from_slice(&part(c.cap_permitted).to_le_bytes());
        out.extend_from_slice(&part(c.cap_inheritable).to_le_bytes());
    }
    task.copy_out(data, &out)?;
    Ok(0)
}

/// capset(2): only the caller's own sets; permitted may only shrink, effective and
/// inheritable must stay within permitted (no CAP_SETPCAP bounding games).
pub fn sys_capset(task: &mut Task, hdr: UserAddr, data: UserAddr) -> Result<u64> {
    let (version, pid) = match cap_header(task, hdr, data) {
        Err(e) if e.msg == "probe" => return_errno!(EINVAL),
        other => other?,
    };
    if pid != 0 && pid != task.tid {
        return_errno!(EPERM);
    }
    let words = if version == CAP_V1 { 1 } else { 2 };
    let mut raw = vec![0u8; 12 * words];
    task.copy_in(data, &mut raw)?;
    let get = |w: usize, field: usize| -> u64 {
        let o = w * 12 + field * 4;
        raw.get(o..o + 4)
            .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])) << (32 * w))
            .unwrap_or(0)
    };
    let (mut e, mut p, mut i) = (0u64, 0u64, 0u64);
    for w in 0..words {
        e |= get(w, 0);
        p |= get(w, 1);
        i |= get(w, 2);
    }
    let (e, p, i) = (e & CAP_FULL, p & CAP_FULL, i & CAP_FULL);
    let c = &task.creds;
    // cap_capset: without CAP_SETPCAP the inheritable set may only gain permitted
    // capabilities; never any outside the bounding set.
    let inh_limit = if c.has_cap(crate::kernel::creds::CAP_SETPCAP) {
        CAP_FULL
    } else {
        c.cap_inheritable | c.cap_permitted
    };
    if p & !c.cap_permitted != 0
        || e & !p != 0
        || i & !inh_limit != 0
        || i & !(c.cap_inheritable | c.cap_bounding) != 0
    {
        return_errno!(EPERM);
    }
    let c = &mut task.creds;
    c.cap_effective = e;
    c.cap_permitted = p;
    c.cap_inheritable = i;
    // The ambient set never holds what is no longer permitted and inheritable.
    c.cap_ambient &= p & i;
    Ok(0)
}

// ---- nice values: getpriority(2), setpriority(2) ----

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;
use crate::kernel::creds::CAP_SYS_NICE;

/// One task `which`/`who` names, with the credentials and nice limit that decide what
/// may be done to it.
struct PrioTarget {
    shared: std::sync::Arc<crate::kernel::process::TaskShared>,
    ruid: u32,
    euid: u32,
    /// Its `RLIMIT_NICE` soft limit (20 - lowest nice value it may take).
    nice_limit: u64,
}

/// Every task `which`/`who` selects (Linux walks threads: nice values are per thread).
fn prio_targets(task: &Task, which: i32, who: i32) -> Result<Vec<PrioTarget>> {
    if !(PRIO_PROCESS..=PRIO_USER).contains(&which) {
        return_errno!(EINVAL);
    }
    let describe = |t: &std::sync::Arc<crate::kernel::process::TaskShared>| {
        let (ruid, euid, rl) = if t.tid == task.tid {
            (task.creds.ruid, task.creds.euid, task.rlimits)
        } else {
            let v = crate::kernel::process::lock(&t.proc);
            (v.creds.ruid, v.creds.euid, v.rlimits)
        };
        let nice_limit =
            rl.0.get(libc::RLIMIT_NICE as usize)
                .map(|l| l.0)
                .unwrap_or(0);
        PrioTarget {
            shared: t.clone(),
            ruid,
            euid,
            nice_limit,
        }
    };
    let pids = task.kernel.pids();
    let tasks: Vec<_> = match which {
        PRIO_PROCESS => {
            let tid = if who == 0 { task.tid } else { who };
            pids.task(tid).into_iter().collect()
        }
        PRIO_PGRP => {
            let pgid = if who == 0 { task.tg.pgid() } else { who };
            pids.process_group(pgid)
                .iter()
                .flat_map(|g| g.threads())
                .collect()
        }
        _ => {
            let uid = if who == 0 {
                task.creds.ruid
            } else {
                who as u32
            };
            let all: Vec<_> = pids.tasks.values().cloned().collect();
            drop(pids);
            return Ok(all.iter().map(describe).filter(|t| t.ruid == uid).collect());
        }
    };
    drop(pids);
    Ok(tasks.iter().map(describe).collect())
}

/// getpriority(2): the highest priority (lowest nice value) among the tasks named, as
/// the raw syscall returns it, `20 - nice` (1..=40); glibc turns it back into a nice
/// value. `ESRCH` if none matches.
pub fn sys_getpriority(task: &mut Task, which: i32, who: i32) -> Result<u64> {
    use std::sync::atomic::Ordering;
    prio_targets(task, which, who)?
        .iter()
        .map(|t| 20 - t.shared.nice.load(Ordering::Relaxed))
        .max()
        .map(|v| v as u64)
        .ok_or(errno!(ESRCH))
}

/// setpriority(2): `prio` clamped to -20..=19. Changing another user's tasks needs
/// `CAP_SYS_NICE` (`EPERM`); so does lowering a nice value beyond `RLIMIT_NICE`
/// (`EACCES`). As in Linux, a failure on one task is reported even if others changed.
pub fn sys_setpriority(task: &mut Task, which: i32, who: i32, prio: i32) -> Result<u64> {
    use std::sync::atomic::Ordering;
    let nice = prio.clamp(-20, 19);
    let capable = task.creds.has_cap(CAP_SYS_NICE);
    let mut error: Option<crate::Errno> = Some(crate::Errno::ESRCH);
    for t in prio_targets(task, which, who)? {
        if task.creds.euid != t.ruid && task.creds.euid != t.euid && !capable {
            error = Some(crate::Errno::EPERM);
            continue;
        }
        let lowest_allowed = 20 - i64::try_from(t.nice_limit).unwrap_or(i64::MAX).min(40);
        if nice < t.shared.nice.load(Ordering::Relaxed)
            && i64::from(nice) < lowest_allowed
            && !capable
        {
            error = Some(crate::Errno::EACCES);
            continue;
        }
        if error == Some(crate::Errno::ESRCH) {
            error = None;
        }
        t.shared.nice.store(nice, Ordering::Relaxed);
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(0),
    }
}
