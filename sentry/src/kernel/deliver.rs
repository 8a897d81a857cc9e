//! Signal delivery in the task loop: picking the next signal, default actions, group
//! stops, handler frames, and `rt_sigreturn`; and a task's exit.
#![deny(unsafe_code)]

use super::process::{lock, ChildEvent};
use super::signal::{
    build_frame, code, default_action, is_unblockable, parse_frame, sig_bit, DefaultAction,
    SigInfo, SA_NODEFER, SA_ONSTACK, SA_RESETHAND, SA_RESTART, SA_RESTORER, SIG_DFL, SIG_IGN,
    SS_DISABLE, SS_ONSTACK,
};
use super::task::{ExitStatus, Task};
use super::wait::events;
use crate::error::Result;
use crate::mm::UserAddr;
use crate::platform::FpState;
use crate::{errno, return_errno};
use std::sync::{Arc, Mutex};

/// The red zone below the stack pointer that a handler frame must not touch (x86_64 ABI).
const RED_ZONE: u64 = 128;

impl Task {
    /// Is a signal pending that this task would act on now?
    pub fn has_deliverable_signal(&self) -> bool {
        let mask = self.sigmask();
        let deliverable = |pending: u64| {
            let p = pending & (!mask | super::signal::unblockable_mask());
            p != 0
        };
        if deliverable(lock(&self.shared.signals).pending.mask()) {
            return true;
        }
        if self
            .shared
            .must_exit
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return true;
        }
        let st = self.tg.state();
        st.group_exit.is_some() || deliverable(st.pending.mask())
    }

    /// Take the next signal to act on: thread-directed first, then process-directed.
    fn next_signal(&self) -> Option<SigInfo> {
        let mask = self.sigmask();
        let taken = lock(&self.shared.signals).pending.take(mask);
        let mut info = taken.or_else(|| self.tg.state().pending.take(mask))?;
        self.claim_timer_signal(&mut info);
        Some(info)
    }

    /// A POSIX timer's signal leaving the queue reports the expirations it stood for
    /// (`si_overrun`) and lets the timer queue the next one.
    pub fn claim_timer_signal(&self, info: &mut SigInfo) {
        if info.code != code::SI_TIMER {
            return;
        }
        let timer = self.tg.state().posix_timers.get(&info.pid).cloned();
        if let Some(t) = timer {
            info.uid = u32::try_from(t.signal_taken())
                .unwrap_or(i32::MAX as u32)
                .min(i32::MAX as u32);
        }
    }

    /// Act on every pending signal the task does not block, before it runs application
    /// code again: default actions, group stop, or one handler frame.
    pub fn deliver_signals(&mut self) {
        loop {
            if let Some(status) = self.tg.state().group_exit {
                self.exit_status = Some(status);
                return;
            }
            if self
                .shared
                .must_exit
                .load(std::sync::atomic::Ordering::Acquire)
            {
                self.exit_status = Some(ExitStatus::Signaled {
                    signo: libc::SIGKILL,
                    core: false,
                });
                return;
            }
            if self.tg.state().stopped {
                self.wait_while_stopped();
                continue;
            }
            let Some(info) = self.next_signal() else {
                break;
            };
            let idx = (info.signo as usize).saturating_sub(1);
            let act = lock(&self.sighand()).get(idx).copied().unwrap_or_default();
            if act.handler == SIG_IGN && !is_unblockable(info.signo as usize) {
                continue;
            }
            if act.handler == SIG_DFL || is_unblockable(info.signo as usize) {
                match default_action(info.signo) {
                    DefaultAction::Ignore | DefaultAction::Continue => continue,
                    DefaultAction::Stop => {
                        // Terminal stops do nothing to an orphaned process group: no one
                        // would be left to continue it (signal(7)).
                        if info.signo != libc::SIGSTOP
                            && self.kernel.pgrp_is_orphaned(self.tg.pgid())
                        {
                            continue;
                        }
                        self.kernel.stop_group(&self.tg, info.signo);
                        continue;
                    }
                    DefaultAction::Terminate => {
                        let status = ExitStatus::Signaled {
                            signo: info.signo,
                            core: false,
                        };
                        self.kernel.group_exit(&self.tg, status);
                        continue;
                    }
                    DefaultAction::CoreDump => {
                        let status = ExitStatus::Signaled {
                            signo: info.signo,
                            core: true,
                        };
                        self.kernel.group_exit(&self.tg, status);
                        continue;
                    }
                }
            }
            // A handler: an interrupted syscall restarts only if it asked for SA_RESTART.
            if let Some(kind) = self.restart_syscall.take() {
                if kind == crate::Errno::ERESTARTSYS && act.flags & SA_RESTART != 0 {
                    self.rewind_syscall();
                }
            }
            if self.setup_frame(&info, &act).is_err() {
                // No room or no restorer: Linux kills the process with SIGSEGV.
                let status = ExitStatus::Signaled {
                    signo: libc::SIGSEGV,
                    core: true,
                };
                self.kernel.group_exit(&self.tg, status);
                continue;
            }
            if act.flags & SA_RESETHAND != 0 {
                if let Some(a) = lock(&self.sighand()).get_mut(idx) {
                    *a = Default::default();
                }
            }
            // One frame at a time: the handler runs, and the next signal is looked at
            // when it returns to the sentry.
            return;
        }
        // Nothing (more) to deliver. An interrupted syscall whose signal needed no
        // handler restarts transparently.
        if self.restart_syscall.take().is_some() {
            self.rewind_syscall();
        }
        if let Some(mask) = self.signals.saved_mask.take() {
            self.set_sigmask(mask);
        }
        self.blocker.clear_interrupt();
    }

    /// Make the application execute its last syscall again.
    fn rewind_syscall(&mut self) {
        self.regs.rip = self.regs.rip.wrapping_sub(2);
        self.regs.rax = self.regs.orig_rax;
    }

    /// Sleep while the thread group is stopped (SIGSTOP and friends), until SIGCONT or
    /// SIGKILL.
    fn wait_while_stopped(&self) {
        let _r = self.tg.stop_events.register(&self.blocker, events::ALL);
        loop {
            {
                let st = self.tg.state();
                if !st.stopped || st.group_exit.is_some() {
                    return;
                }
            }
            if lock(&self.shared.signals).pending.mask() & sig_bit(libc::SIGKILL as usize) != 0 {
                return;
            }
            let _ = self.blocker.sleep(None);
            self.blocker.clear_interrupt();
        }
    }

    /// Build the handler's frame on the application stack and point the registers at
    /// the handler.
    fn setup_frame(&mut self, info: &SigInfo, act: &super::signal::SigAction) -> Result<()> {
        if act.flags & SA_RESTORER == 0 {
            return_errno!(EFAULT, "handler without SA_RESTORER");
        }
        let mask = self.sigmask();
        // After sigsuspend/ppoll the frame keeps the mask from before the call, so the
        // handler's return restores it.
        let saved = self.signals.saved_mask.take().unwrap_or(mask);
        let alt = self.signals.altstack;
        let on_alt = self.signals.on_altstack(self.regs.rsp);
        let sp = if act.flags & SA_ONSTACK != 0 && alt[1] & SS_DISABLE == 0 && !on_alt {
            alt[0].checked_add(alt[2]).ok_or(errno!(EFAULT))?
        } else {
            self.regs.rsp.checked_sub(RED_ZONE).ok_or(errno!(EFAULT))?
        };
        let fp = self.ctx.fp_state().unwrap_or_else(|_| FpState(Vec::new()));
        let shown_alt = [alt[0], if on_alt { SS_ONSTACK } else { alt[1] }, alt[2]];
        let frame = build_frame(sp, &self.regs, &fp, saved, shown_alt, act.restorer, info)
            .ok_or(errno!(EFAULT))?;
        self.copy_out(UserAddr(frame.fp_addr), &frame.fp_bytes)?;
        self.copy_out(UserAddr(frame.addr), &frame.bytes)?;
        if !fp.0.is_empty() {
            // Refused only for a state the host cannot load; the handler then keeps ours.
            let _ = self.ctx.set_fp_state(&super::signal::handler_fp_state(&fp));
        }
        self.regs.rsp = frame.addr;
        self.regs.rip = act.handler;
        self.regs.rdi = info.signo as u64;
        self.regs.rsi = frame.addr + super::signal::FRAME_SIZE - 128;
        self.regs.rdx = frame.addr + 8;
        self.regs.rax = 0;
        // The handler starts with the direction and trap flags clear.
        self.regs.eflags &= !(0x400 | 0x100);
        let mut new_mask = mask | act.mask;
        if act.flags & SA_NODEFER == 0 {
            new_mask |= sig_bit(info.signo as usize);
        }
        self.set_sigmask(new_mask);
        Ok(())
    }

    /// `rt_sigreturn`: restore what the frame at `rsp - 8` saved.
    pub fn sigreturn(&mut self) -> Result<()> {
        let frame_addr = self.regs.rsp.checked_sub(8).ok_or(errno!(EFAULT))?;
        let mut bytes = vec![0u8; super::signal::FRAME_SIZE as usize];
        self.copy_in(UserAddr(frame_addr), &mut bytes)?;
        let r = parse_frame(&bytes, &self.regs).ok_or(errno!(EFAULT))?;
        if r.fp_addr != 0 {
            if let Ok(cur) = self.ctx.fp_state() {
                let mut fp = vec![0u8; cur.0.len()];
                if self.copy_in(UserAddr(r.fp_addr), &mut fp).is_ok() {
                    // A corrupt state is refused by the host; keep the current one then.
                    let _ = self.ctx.set_fp_state(&FpState(fp));
                }
            }
        }
        self.regs = r.regs;
        self.set_sigmask(r.mask);
        if r.altstack[1] & SS_DISABLE != 0 || r.altstack[2] > 0 {
            self.signals.altstack = [r.altstack[0], r.altstack[1] & SS_DISABLE, r.altstack[2]];
        }
        Ok(())
    }

    /// A synchronous signal from the application's own instruction (a fault): delivered
    /// to its handler if there is one, else the default action — and if the signal is
    /// blocked or ignored, Linux forces the default action too.
    pub fn force_signal(&mut self, info: SigInfo) {
        let idx = (info.signo as usize).saturating_sub(1);
        let blocked = self.sigmask() & sig_bit(info.signo as usize) != 0;
        let sighand = self.sighand();
        let mut handlers = lock(&sighand);
        if let Some(a) = handlers.get_mut(idx) {
            if blocked || a.handler == SIG_IGN {
                *a = Default::default();
            }
        }
        drop(handlers);
        if blocked {
            let mask = self.sigmask() & !sig_bit(info.signo as usize);
            self.set_sigmask(mask);
        }
        lock(&self.shared.signals).pending.push(info);
    }

    /// Leave the thread group: clear-child-tid, and if this was the last thread, the
    /// process becomes a zombie for its parent.
    pub fn exit_task(&mut self, status: ExitStatus) {
        if !self.robust_list.0.is_null() {
            crate::syscalls::futex::exit_robust_list(self, self.robust_list.0);
        }
        if !self.clear_child_tid.is_null() {
            let addr = self.clear_child_tid;
            if self.write_obj(addr, &0u32).is_ok() {
                let _ = crate::syscalls::futex::wake_address(self, addr, 1);
            }
        }
        self.shared.finish_vfork();
        *lock(&self.shared.interrupter) = None;
        // Like Linux's exit_files: our descriptors are closed before the parent can see
        // the exit, so a reaped child no longer pins the descriptions it inherited (their
        // flock and OFD locks are released, pipes see EOF).
        self.files = Arc::new(Mutex::new(crate::vfs::FdTable::new()));
        // Nor does what /proc was shown of it (the old table, the address space).
        *lock(&self.shared.proc) = Default::default();
        self.kernel.task_exited(self, status);
    }

    /// The signal number of `info` if it is a child-status signal for `wait`.
    pub fn child_event_signal(event: ChildEvent, pid: i32, uid: u32) -> SigInfo {
        let (c, status) = match event {
            ChildEvent::Exited(ExitStatus::Exited(code)) => (code::CLD_EXITED, code),
            ChildEvent::Exited(ExitStatus::Signaled { signo, core }) => (
                if core {
                    code::CLD_DUMPED
                } else {
                    code::CLD_KILLED
                },
                signo,
            ),
            ChildEvent::Stopped(signo) => (code::CLD_STOPPED, signo),
            ChildEvent::Continued => (code::CLD_CONTINUED, libc::SIGCONT),
        };
        SigInfo {
            signo: libc::SIGCHLD,
            code: c,
            pid,
            uid,
            status: i64::from(status),
            ..SigInfo::default()
        }
    }
}
