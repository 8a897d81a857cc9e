//! Signal bookkeeping: handlers and the blocked mask. Delivery arrives with processes.

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

/// Signals whose disposition cannot be changed and which cannot be blocked.
pub fn is_unblockable(signo: usize) -> bool {
    signo == libc::SIGKILL as usize || signo == libc::SIGSTOP as usize
}

/// The bit for signal `signo` (1-based) in a mask.
pub fn sig_bit(signo: usize) -> u64 {
    1u64 << (signo.saturating_sub(1) & 63)
}

pub struct SignalState {
    pub actions: [SigAction; NSIG],
    pub mask: u64,
    /// Signals raised but not yet delivered.
    pub pending: u64,
    pub altstack: [u64; 3],
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [SigAction::default(); NSIG],
            mask: 0,
            pending: 0,
            altstack: [0, 2, 0],
        }
    }
}

impl SignalState {
    /// Exec resets caught signals to their default action; ignored ones stay ignored
    /// (execve(2)).
    pub fn reset_for_exec(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
        self.altstack = [0, 2, 0];
    }
}
