//! Signals: dispositions, `siginfo`, and the x86_64 signal frame (`rt_sigframe`) that a
//! handler runs on and `rt_sigreturn` reads back.
#![deny(unsafe_code)]

use crate::platform::{FpState, Regs};

/// Linux's `struct sigaction` as `rt_sigaction` passes it on x86_64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

pub const NSIG: usize = 64;
pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

/// `si_code` values (asm-generic/siginfo.h).
pub mod code {
    pub const SI_USER: i32 = 0;
    pub const SI_KERNEL: i32 = 0x80;
    pub const SI_QUEUE: i32 = -1;
    pub const SI_TIMER: i32 = -2;
    pub const SI_TKILL: i32 = -6;
    pub const SEGV_MAPERR: i32 = 1;
    pub const SEGV_ACCERR: i32 = 2;
    pub const CLD_EXITED: i32 = 1;
    pub const CLD_KILLED: i32 = 2;
    pub const CLD_DUMPED: i32 = 3;
    pub const CLD_STOPPED: i32 = 5;
    pub const CLD_CONTINUED: i32 = 6;
}

/// Signals whose disposition cannot be changed and which cannot be blocked.
pub fn is_unblockable(signo: usize) -> bool {
    signo == libc::SIGKILL as usize || signo == libc::SIGSTOP as usize
}

/// The bit for signal `signo` (1-based) in a mask.
pub fn sig_bit(signo: usize) -> u64 {
    1u64 << (signo.saturating_sub(1) & 63)
}

/// The bits of SIGKILL and SIGSTOP, which no mask may hold.
pub fn unblockable_mask() -> u64 {
    sig_bit(libc::SIGKILL as usize) | sig_bit(libc::SIGSTOP as usize)
}

/// What a signal does when its disposition is `SIG_DFL` (signal(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(signo: i32) -> DefaultAction {
    match signo {
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH => DefaultAction::Ignore,
        libc::SIGCONT => DefaultAction::Continue,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => DefaultAction::Stop,
        libc::SIGQUIT
        | libc::SIGILL
        | libc::SIGTRAP
        | libc::SIGABRT
        | libc::SIGBUS
        | libc::SIGFPE
        | libc::SIGSEGV
        | libc::SIGXCPU
        | libc::SIGXFSZ
        | libc::SIGSYS => DefaultAction::CoreDump,
        _ => DefaultAction::Terminate,
    }
}

/// Is a signal with this disposition thrown away on arrival?
pub fn is_ignored(act: &SigAction, signo: i32) -> bool {
    act.handler == SIG_IGN
        || (act.handler == SIG_DFL && default_action(signo) == DefaultAction::Ignore)
}

/// A signal on its way, with the `siginfo` fields the sentry fills.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
    pub errno: i32,
    /// Sender pid (kill, sigqueue, SIGCHLD) or the child's pid.
    pub pid: i32,
    pub uid: u32,
    /// SIGCHLD: the exit code or signal; sigqueue: the value.
    pub status: i64,
    /// Fault address (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP).
    pub addr: u64,
    /// The page-fault error code for the signal frame (x86 `PF_*` bits), as far as the
    /// platform can tell.
    pub fault_err: u64,
}

impl SigInfo {
    pub fn user(signo: i32, pid: i32, uid: u32) -> SigInfo {
        SigInfo {
            signo,
            code: code::SI_USER,
            pid,
            uid,
            ..SigInfo::default()
        }
    }

    pub fn kernel(signo: i32) -> SigInfo {
        SigInfo {
            signo,
            code: code::SI_KERNEL,
            ..SigInfo::default()
        }
    }

    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        SigInfo {
            signo,
            code,
            addr,
            ..SigInfo::default()
        }
    }

    /// The 128-byte `siginfo_t` the application sees.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        put(&mut b, 0, &self.signo.to_le_bytes());
        put(&mut b, 4, &self.errno.to_le_bytes());
        put(&mut b, 8, &self.code.to_le_bytes());
        let fault = matches!(
            self.signo,
            libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP
        ) && self.code > 0;
        if self.signo == libc::SIGSYS && self.code > 0 {
            // _sigsys: si_call_addr, then si_syscall and si_arch (packed in `status`).
            put(&mut b, 16, &self.addr.to_le_bytes());
            put(&mut b, 24, &self.status.to_le_bytes());
        } else if fault {
            put(&mut b, 16, &self.addr.to_le_bytes());
        } else {
            put(&mut b, 16, &self.pid.to_le_bytes());
            put(&mut b, 20, &self.uid.to_le_bytes());
            if self.signo == libc::SIGCHLD {
                // si_status (int) then si_utime, si_stime.
                put(&mut b, 24, &(self.status as i32).to_le_bytes());
            } else {
                // si_value (sigval: a union of int and pointer).
                put(&mut b, 24, &self.status.to_le_bytes());
            }
        }
        b
    }

    /// Read a `siginfo_t` the application passed (`rt_sigqueueinfo`).
    pub fn from_bytes(b: &[u8; 128]) -> SigInfo {
        let i32_at = |o: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(b.get(o..o + 4).unwrap_or(&[0; 4]));
            i32::from_le_bytes(a)
        };
        let i64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b.get(o..o + 8).unwrap_or(&[0; 8]));
            i64::from_le_bytes(a)
        };
        SigInfo {
            signo: i32_at(0),
            errno: i32_at(4),
            code: i32_at(8),
            pid: i32_at(16),
            uid: i32_at(20) as u32,
            status: i64_at(24),
            addr: 0,
            fault_err: 0,
        }
    }
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

/// `stack_t` as the kernel keeps it: `[ss_sp, ss_flags, ss_size]`.
pub type AltStack = [u64; 3];
pub const SS_ONSTACK: u64 = 1;
pub const SS_DISABLE: u64 = 2;

pub struct SignalState {
    pub altstack: AltStack,
    /// The mask to restore after `ppoll`/`pselect`/`sigsuspend` once a handler ran.
    pub saved_mask: Option<u64>,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            altstack: [0, SS_DISABLE, 0],
            saved_mask: None,
        }
    }
}

impl SignalState {
    /// Is `sp` on the alternate signal stack?
    pub fn on_altstack(&self, sp: u64) -> bool {
        let [base, flags, size] = self.altstack;
        flags & SS_DISABLE == 0 && sp > base && sp <= base.saturating_add(size)
    }
}

/// Exec resets caught signals to their default action; ignored ones stay ignored
/// (execve(2)).
pub fn reset_handlers_for_exec(actions: &mut [SigAction; NSIG]) {
    for a in actions.iter_mut() {
        if a.handler != SIG_IGN {
            *a = SigAction::default();
        }
    }
}

// ---- the x86_64 signal frame ----

/// `UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS`.
const UC_FLAGS: u64 = 1 | 2 | 4;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Offset of the software-reserved bytes in the FXSAVE area (`struct _fpx_sw_bytes`).
const FPX_SW_OFFSET: usize = 464;
/// Offset of the XSAVE header's `xstate_bv` (the features present).
const XSTATE_BV_OFFSET: usize = 512;

/// Size of `struct ucontext` (flags, link, stack, sigcontext, sigmask).
const UCONTEXT_SIZE: u64 = 8 + 8 + 24 + 256 + 8;
/// `struct rt_sigframe`: the return address, the ucontext, the siginfo.
pub const FRAME_SIZE: u64 = 8 + UCONTEXT_SIZE + 128;
const UC_OFFSET: u64 = 8;
const MCONTEXT_OFFSET: u64 = UC_OFFSET + 40;
const SIGMASK_OFFSET: u64 = MCONTEXT_OFFSET + 256;
const INFO_OFFSET: u64 = UC_OFFSET + UCONTEXT_SIZE;

/// A signal frame laid out for writing to the application's stack.
pub struct Frame {
    /// Where the frame starts (the handler's `rsp`).
    pub addr: u64,
    pub bytes: Vec<u8>,
    /// Where the FP state goes, and its bytes (64-byte aligned, above the frame).
    pub fp_addr: u64,
    pub fp_bytes: Vec<u8>,
}

/// Build the frame for a handler: `sp` is where the frame may go below (already past the
/// red zone or at the top of the alternate stack).
pub fn build_frame(
    sp: u64,
    regs: &Regs,
    fp: &FpState,
    mask: u64,
    altstack: AltStack,
    restorer: u64,
    info: &SigInfo,
) -> Option<Frame> {
    let mut fp_bytes = fp.0.clone();
    let xstate_size = fp_bytes.len() as u32;
    // Mark the area as an extended (XSAVE) state the way Linux does, so libc and
    // debuggers that look inside recognise it; the magic word follows the area.
    if fp_bytes.len() > XSTATE_BV_OFFSET + 8 {
        let xfeatures = fp_bytes
            .get(XSTATE_BV_OFFSET..XSTATE_BV_OFFSET + 8)
            .map(|s| {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                u64::from_le_bytes(a)
            })
            .unwrap_or(0);
        put(
            &mut fp_bytes,
            FPX_SW_OFFSET,
            &FP_XSTATE_MAGIC1.to_le_bytes(),
        );
        put(
            &mut fp_bytes,
            FPX_SW_OFFSET + 4,
            &(xstate_size + 4).to_le_bytes(),
        );
        put(&mut fp_bytes, FPX_SW_OFFSET + 8, &xfeatures.to_le_bytes());
        put(
            &mut fp_bytes,
            FPX_SW_OFFSET + 16,
            &xstate_size.to_le_bytes(),
        );
        fp_bytes.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    }
    let fp_addr = sp.checked_sub(fp_bytes.len() as u64)? & !63;
    // The handler starts as if called: rsp + 8 is 16-byte aligned.
    let addr = ((fp_addr.checked_sub(FRAME_SIZE)?) & !15).checked_sub(8)?;

    let mut b = vec![0u8; FRAME_SIZE as usize];
    put(&mut b, 0, &restorer.to_le_bytes());
    let uc = UC_OFFSET as usize;
    put(&mut b, uc, &UC_FLAGS.to_le_bytes());
    // uc_link stays 0; uc_stack describes the alternate stack as it was.
    put(&mut b, uc + 16, &altstack[0].to_le_bytes());
    put(&mut b, uc + 24, &(altstack[1] as u32).to_le_bytes());
    put(&mut b, uc + 32, &altstack[2].to_le_bytes());
    let mc = MCONTEXT_OFFSET as usize;
    let gprs = [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.eflags,
    ];
    for (i, v) in gprs.iter().enumerate() {
        put(&mut b, mc + i * 8, &v.to_le_bytes());
    }
    // cs, gs, fs, ss as four u16.
    let segs = [regs.cs as u16, 0, 0, regs.ss as u16];
    for (i, v) in segs.iter().enumerate() {
        put(&mut b, mc + 144 + i * 2, &v.to_le_bytes());
    }
    // err, trapno, oldmask, cr2: for a page fault, trap 14 with a user-mode error code
    // (bit 0: the page was present), and cr2 the fault address.
    if info.signo == libc::SIGSEGV
        && (info.code == code::SEGV_MAPERR || info.code == code::SEGV_ACCERR)
    {
        let err: u64 = 4 | u64::from(info.code == code::SEGV_ACCERR) | info.fault_err;
        put(&mut b, mc + 152, &err.to_le_bytes());
        put(&mut b, mc + 160, &14u64.to_le_bytes());
    } else if info.signo == libc::SIGILL && info.code > 0 {
        put(&mut b, mc + 160, &6u64.to_le_bytes()); // #UD
    } else if info.signo == libc::SIGTRAP && info.code > 0 {
        put(&mut b, mc + 160, &3u64.to_le_bytes()); // #BP
    } else if info.signo == libc::SIGSEGV && info.code == code::SI_KERNEL {
        // A general-protection fault (a non-canonical address): trap 13.
        put(&mut b, mc + 160, &13u64.to_le_bytes());
    }
    put(&mut b, mc + 168, &mask.to_le_bytes());
    put(&mut b, mc + 176, &info.addr.to_le_bytes());
    put(&mut b, mc + 184, &fp_addr.to_le_bytes());
    put(&mut b, SIGMASK_OFFSET as usize, &mask.to_le_bytes());
    put(&mut b, INFO_OFFSET as usize, &info.to_bytes());
    Some(Frame {
        addr,
        bytes: b,
        fp_addr,
        fp_bytes,
    })
}

/// What `rt_sigreturn` restores, read from the frame at `frame`.
pub struct Restored {
    pub regs: Regs,
    pub mask: u64,
    pub altstack: AltStack,
    /// The address of the saved FP state, if the frame has one.
    pub fp_addr: u64,
}

/// The `eflags` bits a handler may change (Linux's `FIX_EFLAGS`).
const FIX_EFLAGS: u64 =
    0x0004_0000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x1_0000;

/// Decode the ucontext of a frame. `cur` supplies what the application may not change.
pub fn parse_frame(bytes: &[u8], cur: &Regs) -> Option<Restored> {
    let u64_at = |o: u64| -> Option<u64> {
        let s = bytes.get(o as usize..o as usize + 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_le_bytes(a))
    };
    let mc = MCONTEXT_OFFSET;
    let g = |i: u64| u64_at(mc + i * 8);
    let mut r = *cur;
    r.r8 = g(0)?;
    r.r9 = g(1)?;
    r.r10 = g(2)?;
    r.r11 = g(3)?;
    r.r12 = g(4)?;
    r.r13 = g(5)?;
    r.r14 = g(6)?;
    r.r15 = g(7)?;
    r.rdi = g(8)?;
    r.rsi = g(9)?;
    r.rbp = g(10)?;
    r.rbx = g(11)?;
    r.rdx = g(12)?;
    r.rax = g(13)?;
    r.rcx = g(14)?;
    r.rsp = g(15)?;
    r.rip = g(16)?;
    r.eflags = (cur.eflags & !FIX_EFLAGS) | (g(17)? & FIX_EFLAGS);
    // User code and stack segments only; no syscall restart after a sigreturn.
    r.cs = 0x33;
    r.ss = 0x2b;
    r.orig_rax = u64::MAX;
    let uc = UC_OFFSET;
    let altstack = [
        u64_at(uc + 16)?,
        u64_at(uc + 24)? & 0xffff_ffff,
        u64_at(uc + 32)?,
    ];
    Some(Restored {
        regs: r,
        mask: u64_at(SIGMASK_OFFSET)?,
        altstack,
        fp_addr: u64_at(mc + 184)?,
    })
}

/// The FP state a handler starts with: everything in its initial state (x87 control word
/// 0x37f, MXCSR 0x1f80, registers zero), as Linux gives every handler.
pub fn handler_fp_state(cur: &FpState) -> FpState {
    let mut b = vec![0u8; cur.0.len()];
    if b.len() >= XSTATE_BV_OFFSET + 16 {
        put(&mut b, 0, &0x037fu16.to_le_bytes());
        put(&mut b, 24, &0x1f80u32.to_le_bytes());
        // MXCSR_MASK is the CPU's; keep it so the state validates.
        if let Some(m) = cur.0.get(28..32) {
            put(&mut b, 28, m);
        }
        // x87 and SSE present in their default values; other components in init state.
        put(&mut b, XSTATE_BV_OFFSET, &3u64.to_le_bytes());
    }
    FpState(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_registers_and_mask() {
        let mut regs = crate::loader::zeroed_regs();
        regs.rax = 7;
        regs.rip = 0x1234;
        regs.rsp = 0x7000_0000;
        regs.r15 = 99;
        regs.eflags = 0x246;
        let fp = FpState(vec![0u8; 832]);
        let info = SigInfo::user(10, 1, 0);
        let f = build_frame(
            0x7000_0000,
            &regs,
            &fp,
            0b1010,
            [0, SS_DISABLE, 0],
            0x4000,
            &info,
        )
        .unwrap();
        assert_eq!((f.addr + 8) % 16, 0);
        assert_eq!(f.fp_addr % 64, 0);
        assert!(f.addr + FRAME_SIZE <= f.fp_addr);
        let back = parse_frame(&f.bytes, &regs).unwrap();
        assert_eq!(back.regs.rax, 7);
        assert_eq!(back.regs.rip, 0x1234);
        assert_eq!(back.regs.r15, 99);
        assert_eq!(back.mask, 0b1010);
        assert_eq!(back.fp_addr, f.fp_addr);
        assert_eq!(&f.bytes[0..8], &0x4000u64.to_le_bytes());
    }

    #[test]
    fn pending_signals_coalesce_and_order() {
        let mut p = super::super::process::PendingSignals::default();
        p.push(SigInfo::user(15, 1, 0));
        p.push(SigInfo::user(15, 2, 0));
        p.push(SigInfo::user(2, 1, 0));
        p.push(SigInfo::user(40, 1, 0));
        p.push(SigInfo::user(40, 2, 0));
        assert_eq!(p.take(0).map(|i| i.signo), Some(2));
        assert_eq!(p.take(sig_bit(15)).map(|i| i.signo), Some(40));
        assert_eq!(p.take(0).map(|i| i.signo), Some(15));
        assert_eq!(p.take(0).map(|i| i.pid), Some(2));
        assert!(p.take(0).is_none());
    }
}
