//! seccomp(2) for the application: classic-BPF filters over `struct seccomp_data`,
//! run by the sentry before it emulates each system call (the host kernel never sees
//! the application's filters; they restrict what the sentry will do for it).
//!
//! Filters belong to a thread, are inherited by `fork`/`clone` and kept across
//! `execve`, and stack: every attached filter runs and the most restrictive action
//! wins, as in Linux (`seccomp_run_filters`). Programs come from the application, so
//! everything here is checked: a program is validated when it is attached (opcodes
//! Linux allows for seccomp, jump targets, scratch-memory slots, the final `RET`) and
//! the interpreter still bounds-checks every jump and load.
#![deny(unsafe_code)]

use super::process::lock;
use super::task::Task;
use crate::error::Result;
use crate::return_errno;
use crate::syscalls::SyscallArgs;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

// `SECCOMP_MODE_*`, as `PR_GET_SECCOMP` and `/proc/PID/status` report them.
pub const MODE_DISABLED: u8 = 0;
pub const MODE_STRICT: u8 = 1;
pub const MODE_FILTER: u8 = 2;

// Filter return values (`SECCOMP_RET_*`), from most to least restrictive.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0x0000_ffff;

/// `AUDIT_ARCH_X86_64`: what `seccomp_data.arch` holds for every call here.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `si_code` of a SIGSYS from `SECCOMP_RET_TRAP`.
pub const SYS_SECCOMP: i32 = 1;
/// `sizeof(struct seccomp_data)`.
pub const SECCOMP_DATA_SIZE: u32 = 64;
/// `BPF_MAXINSNS`: the longest program.
pub const MAX_INSNS: usize = 4096;
/// `MAX_INSNS_PER_PATH`: all of a thread's filters together, each counted with a
/// 4-instruction penalty.
const MAX_INSNS_PER_PATH: usize = 32768;
/// `BPF_MEMWORDS`: the scratch memory.
const MEMWORDS: usize = 16;
/// `MAX_ERRNO`: `SECCOMP_RET_ERRNO` data is capped there.
const MAX_ERRNO: u32 = 4095;

/// One classic-BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    /// Decode the 8 bytes of a `struct sock_filter`.
    pub fn from_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

// Classic BPF opcode parts (linux/filter.h, linux/bpf_common.h).
mod op {
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;
    pub const W: u16 = 0x00;
    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const K: u16 = 0x00;
    pub const X: u16 = 0x08;
    pub const A: u16 = 0x10;
    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const MUL: u16 = 0x20;
    pub const DIV: u16 = 0x30;
    pub const OR: u16 = 0x40;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;
    pub const RSH: u16 = 0x70;
    pub const NEG: u16 = 0x80;
    pub const XOR: u16 = 0xa0;
    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;
    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;
}

/// Why a program was refused (every case is `EINVAL` to the application).
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

/// Check a program as Linux does when it is attached (`bpf_check_classic` with
/// `seccomp_check_filter`): a length within 1..=4096, only the opcodes seccomp allows,
/// loads only of aligned words inside `seccomp_data`, no division by a constant zero or
/// over-wide constant shift, scratch slots within 16 and never read before written,
/// jumps inside the program, and a `RET` at the end. `BPF_LEN` loads become the
/// constant `sizeof(struct seccomp_data)`.
pub fn validate(prog: &[Insn]) -> std::result::Result<Vec<Insn>, Invalid> {
    use op::*;
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(Invalid("length"));
    }
    let len = prog.len();
    let mut out = Vec::with_capacity(len);
    for (pc, &i) in prog.iter().enumerate() {
        let mut i = i;
        let remaining = len - pc - 1;
        let in_range = |off: usize| off < remaining;
        match i.code {
            c if c == LD | W | ABS => {
                if i.k >= SECCOMP_DATA_SIZE || !i.k.is_multiple_of(4) {
                    return Err(Invalid("load outside seccomp_data"));
                }
            }
            c if c == LD | W | LEN => {
                i = Insn {
                    code: LD | IMM,
                    k: SECCOMP_DATA_SIZE,
                    ..i
                }
            }
            c if c == LDX | W | LEN => {
                i = Insn {
                    code: LDX | IMM,
                    k: SECCOMP_DATA_SIZE,
                    ..i
                }
            }
            c if c == RET | K || c == RET | A => {}
            c if c & 0x07 == ALU => {
                let alu = c & 0xf0;
                let src = c & 0x08;
                if c & !0xf8 != ALU
                    || !matches!(
                        alu,
                        ADD | SUB | MUL | DIV | AND | OR | XOR | LSH | RSH | NEG
                    )
                {
                    return Err(Invalid("opcode"));
                }
                if alu == NEG && src != K {
                    return Err(Invalid("opcode"));
                }
                if src == K && alu == DIV && i.k == 0 {
                    return Err(Invalid("division by zero"));
                }
                if src == K && matches!(alu, LSH | RSH) && i.k >= 32 {
                    return Err(Invalid("shift"));
                }
            }
            c if c == LD | IMM || c == LDX | IMM || c == MISC | TAX || c == MISC | TXA => {}
            c if c == LD | MEM || c == LDX | MEM || c == ST || c == STX => {
                if i.k as usize >= MEMWORDS {
                    return Err(Invalid("scratch slot"));
                }
            }
            c if c == JMP | JA => {
                if !in_range(i.k as usize) {
                    return Err(Invalid("jump"));
                }
            }
            c if c & 0x07 == JMP => {
                if c & !0xf8 != JMP || !matches!(c & 0xf0, JEQ | JGT | JGE | JSET) {
                    return Err(Invalid("opcode"));
                }
                if !in_range(usize::from(i.jt)) || !in_range(usize::from(i.jf)) {
                    return Err(Invalid("jump"));
                }
            }
            _ => return Err(Invalid("opcode")),
        }
        out.push(i);
    }
    match out.last().map(|i| i.code) {
        Some(c) if c == RET | K || c == RET | A => {}
        _ => return Err(Invalid("does not end with RET")),
    }
    check_scratch(&out)?;
    Ok(out)
}

/// Every scratch-memory read must follow a write on all paths to it
/// (`check_load_and_stores`). Jumps only go forward, so one pass in order suffices.
fn check_scratch(prog: &[Insn]) -> std::result::Result<(), Invalid> {
    use op::*;
    // Bit n set: slot n is written on every path reaching this instruction.
    let mut valid = vec![u16::MAX; prog.len()];
    if let Some(v) = valid.first_mut() {
        *v = 0;
    }
    for (pc, i) in prog.iter().enumerate() {
        let mut mem = valid.get(pc).copied().unwrap_or(0);
        let slot = 1u16.checked_shl(i.k).unwrap_or(0);
        let class = i.code & 0x07;
        if i.code == LD | MEM || i.code == LDX | MEM {
            if mem & slot == 0 {
                return Err(Invalid("scratch slot read before written"));
            }
        } else if i.code == ST || i.code == STX {
            mem |= slot;
        }
        let mut flow = |to: usize| {
            if let Some(v) = valid.get_mut(to) {
                *v &= mem;
            }
        };
        if class == JMP {
            if i.code == JMP | JA {
                flow(pc + 1 + i.k as usize);
            } else {
                flow(pc + 1 + usize::from(i.jt));
                flow(pc + 1 + usize::from(i.jf));
            }
        } else {
            // Past a RET too, as Linux does: its state carries into the next
            // instruction, which only a jump can otherwise reach.
            flow(pc + 1);
        }
    }
    Ok(())
}

/// `struct seccomp_data`: what a filter reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at byte offset `off` (little-endian, as the structure lies in
    /// memory on x86_64); `None` outside the structure or unaligned.
    fn word(&self, off: u32) -> Option<u32> {
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        Some(match off {
            0 => self.nr as u32,
            4 => self.arch,
            8 => lo(self.instruction_pointer),
            12 => hi(self.instruction_pointer),
            16..=63 if off.is_multiple_of(4) => {
                let n = ((off - 16) / 8) as usize;
                let v = *self.args.get(n)?;
                if off.is_multiple_of(8) {
                    lo(v)
                } else {
                    hi(v)
                }
            }
            _ => return None,
        })
    }
}

/// Run a validated program; any instruction the interpreter cannot make sense of
/// (which validation should have refused) ends it with `SECCOMP_RET_KILL_PROCESS`.
pub fn run(prog: &[Insn], data: &SeccompData) -> u32 {
    use op::*;
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS];
    let mut pc = 0usize;
    // Jumps only go forward, so a program ends within its length; the bound is a guard.
    for _ in 0..=prog.len() {
        let Some(&i) = prog.get(pc) else {
            return RET_KILL_PROCESS;
        };
        pc += 1;
        let class = i.code & 0x07;
        match class {
            LD | LDX => {
                let v = match i.code & 0xe0 {
                    IMM => i.k,
                    ABS => match data.word(i.k) {
                        Some(v) => v,
                        None => return RET_KILL_PROCESS,
                    },
                    MEM => match mem.get(i.k as usize) {
                        Some(v) => *v,
                        None => return RET_KILL_PROCESS,
                    },
                    LEN => SECCOMP_DATA_SIZE,
                    _ => return RET_KILL_PROCESS,
                };
                if class == LD {
                    a = v;
                } else {
                    x = v;
                }
            }
            ST | STX => match mem.get_mut(i.k as usize) {
                Some(slot) => *slot = if class == ST { a } else { x },
                None => return RET_KILL_PROCESS,
            },
            ALU => {
                let src = if i.code & X != 0 { x } else { i.k };
                a = match i.code & 0xf0 {
                    ADD => a.wrapping_add(src),
                    SUB => a.wrapping_sub(src),
                    MUL => a.wrapping_mul(src),
                    // Classic BPF: a division by a zero X ends the program with 0.
                    DIV => match a.checked_div(src) {
                        Some(v) => v,
                        None => return 0,
                    },
                    OR => a | src,
                    AND => a & src,
                    LSH => a.wrapping_shl(src),
                    RSH => a.wrapping_shr(src),
                    NEG => a.wrapping_neg(),
                    XOR => a ^ src,
                    _ => return RET_KILL_PROCESS,
                };
            }
            JMP => {
                let src = if i.code & X != 0 { x } else { i.k };
                let off = match i.code & 0xf0 {
                    JA => i.k as usize,
                    cond => {
                        let taken = match cond {
                            JEQ => a == src,
                            JGT => a > src,
                            JGE => a >= src,
                            JSET => a & src != 0,
                            _ => return RET_KILL_PROCESS,
                        };
                        usize::from(if taken { i.jt } else { i.jf })
                    }
                };
                pc = match pc.checked_add(off) {
                    Some(p) => p,
                    None => return RET_KILL_PROCESS,
                };
            }
            RET => {
                return match i.code & 0x18 {
                    K => i.k,
                    A => a,
                    _ => RET_KILL_PROCESS,
                }
            }
            _ => match i.code {
                c if c == MISC | TAX => x = a,
                c if c == MISC | TXA => a = x,
                _ => return RET_KILL_PROCESS,
            },
        }
    }
    RET_KILL_PROCESS
}

/// One attached filter and the ones attached before it.
#[derive(Debug)]
pub struct Filter {
    prog: Vec<Insn>,
    /// `SECCOMP_FILTER_FLAG_LOG`: log the actions it takes (other than ALLOW).
    log: bool,
    prev: Option<Arc<Filter>>,
    /// How many filters the chain holds, this one included.
    depth: usize,
    /// Instructions in the chain, each filter with a 4-instruction penalty.
    path_insns: usize,
}

impl Filter {
    /// Stack a validated program on `prev`; `ENOMEM` past `MAX_INSNS_PER_PATH`.
    pub fn attach(prog: Vec<Insn>, log: bool, prev: Option<Arc<Filter>>) -> Result<Arc<Filter>> {
        // As `seccomp_attach_filter`: the new program counts bare, the attached ones
        // with their penalty.
        let below = prev.as_ref().map_or(0, |p| p.path_insns);
        if below.saturating_add(prog.len()) > MAX_INSNS_PER_PATH {
            return_errno!(ENOMEM);
        }
        let path_insns = below.saturating_add(prog.len()).saturating_add(4);
        Ok(Arc::new(Filter {
            depth: prev.as_ref().map_or(0, |p| p.depth).saturating_add(1),
            prog,
            log,
            prev,
            path_insns,
        }))
    }

    /// Run every filter of the chain, newest first; the lowest action (as a signed
    /// value, so KILL_PROCESS is lowest) wins, the newest filter winning ties. Returns
    /// the full return value and whether the winning filter asked for logging.
    pub fn evaluate(self: &Arc<Filter>, data: &SeccompData) -> (u32, bool) {
        let mut best = (RET_ALLOW, false);
        let mut cur = Some(self);
        while let Some(f) = cur {
            let r = run(&f.prog, data);
            if action_rank(r) < action_rank(best.0) {
                best = (r, f.log);
            }
            cur = f.prev.as_ref();
        }
        best
    }

    /// Is `older` this chain or one of its ancestors (`is_ancestor`)?
    fn descends_from(self: &Arc<Filter>, older: &Arc<Filter>) -> bool {
        let mut cur = Some(self);
        while let Some(f) = cur {
            if Arc::ptr_eq(f, older) {
                return true;
            }
            cur = f.prev.as_ref();
        }
        false
    }
}

/// Linux compares actions as signed 32-bit values of the action bits (`ACTION_ONLY`).
fn action_rank(ret: u32) -> i32 {
    (ret & RET_ACTION_FULL) as i32
}

/// Is `action` one this kernel knows (`SECCOMP_GET_ACTION_AVAIL`)?
pub fn action_available(action: u32) -> bool {
    matches!(
        action,
        RET_KILL_PROCESS
            | RET_KILL_THREAD
            | RET_TRAP
            | RET_ERRNO
            | RET_USER_NOTIF
            | RET_TRACE
            | RET_LOG
            | RET_ALLOW
    )
}

/// A thread's seccomp state, in its shared part so that `SECCOMP_FILTER_FLAG_TSYNC`
/// and `/proc` can reach it. The mode is an atomic so that the syscall path of an
/// unfiltered thread costs one load.
#[derive(Default)]
pub struct TaskSeccomp {
    mode: AtomicU8,
    filter: Mutex<Option<Arc<Filter>>>,
}

impl TaskSeccomp {
    pub fn mode(&self) -> u8 {
        self.mode.load(Ordering::Acquire)
    }

    pub fn filter(&self) -> Option<Arc<Filter>> {
        lock(&self.filter).clone()
    }

    /// How many filters are attached (`Seccomp_filters:`).
    pub fn filter_count(&self) -> usize {
        lock(&self.filter).as_ref().map_or(0, |f| f.depth)
    }

    /// Take `other`'s state (a new thread or process inherits its creator's).
    pub fn inherit(&self, other: &TaskSeccomp) {
        *lock(&self.filter) = other.filter();
        self.mode.store(other.mode(), Ordering::Release);
    }

    pub fn set_strict(&self) {
        self.mode.store(MODE_STRICT, Ordering::Release);
    }

    pub fn set_filter(&self, f: Arc<Filter>) {
        *lock(&self.filter) = Some(f);
        self.mode.store(MODE_FILTER, Ordering::Release);
    }
}

/// `SECCOMP_FILTER_FLAG_*`.
pub mod flags {
    pub const TSYNC: u32 = 1;
    pub const LOG: u32 = 2;
    pub const SPEC_ALLOW: u32 = 4;
    pub const NEW_LISTENER: u32 = 8;
    pub const TSYNC_ESRCH: u32 = 16;
    pub const WAIT_KILLABLE_RECV: u32 = 32;
}

/// Attach `prog` (already validated) to `task`, and with `TSYNC` to every thread of its
/// process. Returns what the syscall returns: 0, or for a failed `TSYNC` the tid of a
/// thread whose filters are not an ancestor of ours (Linux's convention).
pub fn install(task: &Task, prog: Vec<Insn>, fl: u32) -> Result<u64> {
    let me = &task.shared.seccomp;
    let mode = me.mode();
    if mode != MODE_DISABLED && mode != MODE_FILTER {
        return_errno!(EINVAL);
    }
    let current = me.filter();
    let new = Filter::attach(prog, fl & flags::LOG != 0, current.clone())?;
    if fl & flags::TSYNC != 0 {
        let others: Vec<_> = task
            .tg
            .threads()
            .into_iter()
            .filter(|t| t.tid != task.tid)
            .collect();
        for t in &others {
            let ok = match (t.seccomp.mode(), t.seccomp.filter()) {
                (MODE_DISABLED, _) | (MODE_FILTER, None) => true,
                (MODE_FILTER, Some(theirs)) => current
                    .as_ref()
                    .is_some_and(|ours| ours.descends_from(&theirs)),
                _ => false,
            };
            if !ok {
                if fl & flags::TSYNC_ESRCH != 0 {
                    return_errno!(ESRCH);
                }
                return Ok(t.tid as u64);
            }
        }
        let nnp = task.no_new_privs();
        for t in &others {
            t.seccomp.set_filter(new.clone());
            if nnp {
                t.no_new_privs.store(true, Ordering::Release);
            }
        }
    }
    me.set_filter(new);
    Ok(0)
}

/// What the syscall path does after the filters have run.
pub enum Verdict {
    /// Emulate the call.
    Run,
    /// Do not emulate it: the registers, a signal or the task's exit say what happens.
    Skip,
}

/// Run `task`'s seccomp policy for syscall `nr` before it is emulated.
pub fn check_syscall(task: &mut Task, nr: u64, args: &SyscallArgs) -> Verdict {
    match task.shared.seccomp.mode() {
        MODE_DISABLED => Verdict::Run,
        MODE_STRICT => {
            use syscall_tables::x86_64::nr;
            if matches!(nr, nr::READ | nr::WRITE | nr::EXIT | nr::RT_SIGRETURN) {
                Verdict::Run
            } else {
                tracing::info!(
                    "seccomp: strict mode kills task {} at syscall {nr}",
                    task.tid
                );
                kill_thread(task, libc::SIGKILL);
                Verdict::Skip
            }
        }
        _ => {
            let Some(filter) = task.shared.seccomp.filter() else {
                return Verdict::Run;
            };
            let data = SeccompData {
                nr: nr as i32,
                arch: AUDIT_ARCH_X86_64,
                instruction_pointer: task.regs.rip,
                args: args.0,
            };
            let (ret, log) = filter.evaluate(&data);
            act(task, nr, &data, ret, log)
        }
    }
}

/// Carry out the winning filter's action (`__seccomp_filter`).
fn act(task: &mut Task, nr: u64, data: &SeccompData, ret: u32, log: bool) -> Verdict {
    let action = ret & RET_ACTION_FULL;
    let value = ret & RET_DATA;
    let logged = |what: &str| {
        if log || action != RET_ALLOW {
            tracing::debug!("seccomp: task {} syscall {nr}: {what}", task.tid);
        }
    };
    let fail = |task: &mut Task, errno: u32| {
        task.regs.rax = (-i64::from(errno)) as u64;
        Verdict::Skip
    };
    match action {
        RET_ALLOW => Verdict::Run,
        RET_LOG => {
            tracing::info!("seccomp: task {} syscall {nr} logged", task.tid);
            Verdict::Run
        }
        RET_ERRNO => {
            logged("errno");
            fail(task, value.min(MAX_ERRNO))
        }
        // No tracer can attach to a task of this sandbox: the call fails with ENOSYS as
        // in Linux when nobody traces the task.
        RET_TRACE => fail(task, libc::ENOSYS as u32),
        // No listener exists (SECCOMP_FILTER_FLAG_NEW_LISTENER is refused), so the call
        // fails with ENOSYS as in Linux for a filter without one.
        RET_USER_NOTIF => fail(task, libc::ENOSYS as u32),
        RET_TRAP => {
            logged("trap");
            // As `syscall_rollback`: the handler sees the syscall number in rax.
            task.regs.rax = task.regs.orig_rax;
            task.force_signal(sigsys(data, value));
            Verdict::Skip
        }
        RET_KILL_THREAD if task.tg.threads().len() > 1 => {
            tracing::info!("seccomp: killing thread {} at syscall {nr}", task.tid);
            kill_thread(task, libc::SIGSYS);
            Verdict::Skip
        }
        // KILL_PROCESS, KILL_THREAD of the last thread, and any unknown action: the
        // process dies of SIGSYS whatever its handler (`force_sig_seccomp(.., true)`).
        _ => {
            tracing::info!("seccomp: killing process {} at syscall {nr}", task.tgid);
            task.regs.rax = task.regs.orig_rax;
            let status = super::ExitStatus::Signaled {
                signo: libc::SIGSYS,
                core: false,
            };
            task.kernel.group_exit(&task.tg, status);
            task.exit_status = Some(status);
            Verdict::Skip
        }
    }
}

/// The SIGSYS of `SECCOMP_RET_TRAP`: `si_code` SYS_SECCOMP, `si_errno` the filter's
/// data, `si_call_addr` the address after the syscall instruction, `si_syscall` and
/// `si_arch`.
fn sigsys(data: &SeccompData, value: u32) -> super::signal::SigInfo {
    super::signal::SigInfo {
        signo: libc::SIGSYS,
        code: SYS_SECCOMP,
        errno: value as i32,
        addr: data.instruction_pointer,
        status: i64::from(data.nr as u32) | (i64::from(data.arch) << 32),
        ..Default::default()
    }
}

/// End this thread with signal `signo` (`do_exit(signo)`); the last thread takes the
/// process with it.
fn kill_thread(task: &mut Task, signo: i32) {
    let status = super::ExitStatus::Signaled { signo, core: false };
    if task.tg.threads().len() <= 1 {
        task.kernel.group_exit(&task.tg, status);
    }
    task.exit_status = Some(status);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(code: u16, k: u32) -> Insn {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }
    fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// `nr == 39 ? ERRNO(EPERM) : ALLOW`, as libseccomp would write it.
    fn deny_getpid() -> Vec<Insn> {
        vec![
            stmt(0x20, 4),                       // ld [arch]
            jump(0x15, AUDIT_ARCH_X86_64, 1, 0), // jeq arch
            stmt(0x06, RET_KILL_PROCESS),
            stmt(0x20, 0), // ld [nr]
            jump(0x15, 39, 0, 1),
            stmt(0x06, RET_ERRNO | 1),
            stmt(0x06, RET_ALLOW),
        ]
    }

    fn data(nr: i32) -> SeccompData {
        SeccompData {
            nr,
            arch: AUDIT_ARCH_X86_64,
            instruction_pointer: 0x1234_5678_9abc,
            args: [1, 2, 3, 0xdead_beef_0000_0001, 5, 6],
        }
    }

    #[test]
    fn runs_filters() {
        let p = validate(&deny_getpid()).expect("valid");
        assert_eq!(run(&p, &data(39)), RET_ERRNO | 1);
        assert_eq!(run(&p, &data(0)), RET_ALLOW);
        let mut other = data(39);
        other.arch = 0x4000_0003;
        assert_eq!(run(&p, &other), RET_KILL_PROCESS);
        // Argument words, scratch memory, ALU, RET A.
        let p = validate(&[
            stmt(0x20, 16 + 3 * 8 + 4), // ld args[3] high
            stmt(0x02, 3),              // st M[3]
            stmt(0x01, 2),              // ldx #2
            stmt(0x60, 3),              // ld M[3]
            stmt(0x3c, 0),              // div x
            stmt(0x06 | 0x10, 0),       // ret a
        ])
        .expect("valid");
        assert_eq!(run(&p, &data(0)), 0xdead_beef / 2);
        // Division by a zero X ends the program with 0 (KILL_THREAD).
        let p = validate(&[stmt(0x00, 7), stmt(0x3c, 0), stmt(0x06, RET_ALLOW)]).expect("valid");
        assert_eq!(run(&p, &data(0)), 0);
    }

    #[test]
    fn refuses_bad_programs() {
        let ret = stmt(0x06, RET_ALLOW);
        assert!(validate(&[]).is_err());
        assert!(validate(&vec![ret; MAX_INSNS + 1]).is_err());
        assert!(validate(&vec![ret; MAX_INSNS]).is_ok());
        // Not ending with RET; a jump past the end; a load outside seccomp_data or
        // unaligned; an opcode seccomp does not allow (BPF_MOD, byte loads, LD IND).
        assert!(validate(&[stmt(0x00, 1)]).is_err());
        assert!(validate(&[jump(0x15, 0, 1, 0), ret]).is_err());
        assert!(validate(&[stmt(0x05, 1), ret]).is_err());
        assert!(validate(&[stmt(0x20, 64), ret]).is_err());
        assert!(validate(&[stmt(0x20, 2), ret]).is_err());
        assert!(validate(&[stmt(0x94, 3), ret]).is_err());
        assert!(validate(&[stmt(0x30, 0), ret]).is_err());
        assert!(validate(&[stmt(0x40, 0), ret]).is_err());
        assert!(validate(&[stmt(0xffff, 0), ret]).is_err());
        // Division by a constant zero, shifts of 32, scratch slots out of range or read
        // before written (on one path only, too).
        assert!(validate(&[stmt(0x34, 0), ret]).is_err());
        assert!(validate(&[stmt(0x64, 32), ret]).is_err());
        assert!(validate(&[stmt(0x02, 16), ret]).is_err());
        assert!(validate(&[stmt(0x60, 0), ret]).is_err());
        assert!(validate(&[jump(0x15, 0, 0, 1), stmt(0x02, 0), stmt(0x60, 0), ret]).is_err());
        assert!(validate(&[stmt(0x02, 0), jump(0x15, 0, 0, 0), stmt(0x60, 0), ret]).is_ok());
        assert!(validate(&[ret, stmt(0x60, 0), ret]).is_err());
        // LEN becomes the size of seccomp_data.
        let p = validate(&[stmt(0x80, 0), stmt(0x06 | 0x10, 0)]).expect("valid");
        assert_eq!(run(&p, &data(0)), 64);
    }

    #[test]
    fn stacked_filters_take_the_most_restrictive_action() {
        let allow = validate(&[stmt(0x06, RET_ALLOW)]).expect("valid");
        let errno = validate(&[stmt(0x06, RET_ERRNO | 5)]).expect("valid");
        let errno2 = validate(&[stmt(0x06, RET_ERRNO | 7)]).expect("valid");
        let trap = validate(&[stmt(0x06, RET_TRAP)]).expect("valid");
        let kill = validate(&[stmt(0x06, RET_KILL_PROCESS)]).expect("valid");
        let f = Filter::attach(errno.clone(), false, None).expect("attach");
        let f = Filter::attach(allow, false, Some(f)).expect("attach");
        assert_eq!(f.evaluate(&data(0)).0, RET_ERRNO | 5);
        // Ties go to the newest filter.
        let g = Filter::attach(errno2, false, Some(f.clone())).expect("attach");
        assert_eq!(g.evaluate(&data(0)).0, RET_ERRNO | 7);
        let g = Filter::attach(trap, false, Some(g)).expect("attach");
        assert_eq!(g.evaluate(&data(0)).0, RET_TRAP);
        let g = Filter::attach(kill, false, Some(g)).expect("attach");
        assert_eq!(g.evaluate(&data(0)).0, RET_KILL_PROCESS);
        assert_eq!(g.depth, 5);
        assert!(g.descends_from(&f) && !f.descends_from(&g));
        // The path limit: 32768 instructions with 4 per filter.
        let big = vec![stmt(0x06, RET_ALLOW); MAX_INSNS];
        let mut chain = None;
        for _ in 0..7 {
            chain = Some(Filter::attach(big.clone(), false, chain).expect("fits"));
        }
        assert!(Filter::attach(big, false, chain).is_err());
    }
}
