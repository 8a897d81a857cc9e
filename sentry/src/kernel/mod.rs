//! The kernel: the sandbox-wide [`Kernel`], tasks, credentials, signals bookkeeping, and
//! the task loop that runs application code and serves its syscalls.
#![deny(unsafe_code)]

pub mod creds;
pub mod futex;
pub mod signal;
pub mod task;
pub mod wait;

pub use creds::Credentials;
pub use task::{ExitStatus, Task};

use crate::mm::MemoryFile;
use crate::platform::Platform;
use std::collections::HashSet;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The kernel release `uname` reports: fixed, so programs see the same kernel everywhere.
pub const KERNEL_RELEASE: &str = "4.4.0-carapace";
/// The kernel version string `uname` reports.
pub const KERNEL_VERSION: &str = "#1 SMP Carapace";

/// Sandbox-wide state shared by every task.
pub struct Kernel {
    pub platform: Box<dyn Platform>,
    pub memory_file: Arc<MemoryFile>,
    pub hostname: Mutex<Vec<u8>>,
    pub domainname: Mutex<Vec<u8>>,
    /// Print every syscall (`--strace`).
    pub strace: bool,
    pub boot_time: Instant,
    pub futexes: futex::FutexTable,
    next_pid: AtomicI32,
    enosys_logged: Mutex<HashSet<u64>>,
}

impl Kernel {
    pub fn new(platform: Box<dyn Platform>, memory_file: Arc<MemoryFile>, strace: bool) -> Kernel {
        Kernel {
            platform,
            memory_file,
            hostname: Mutex::new(b"carapace".to_vec()),
            domainname: Mutex::new(b"(none)".to_vec()),
            strace,
            boot_time: Instant::now(),
            futexes: futex::FutexTable::default(),
            next_pid: AtomicI32::new(1),
            enosys_logged: Mutex::new(HashSet::new()),
        }
    }

    /// The next pid of the sandbox's pid namespace (the first task is 1).
    pub fn alloc_pid(&self) -> i32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    /// Log an unimplemented syscall by name, once per sandbox.
    pub fn log_unimplemented(&self, nr: u64) {
        let first = self
            .enosys_logged
            .lock()
            .map(|mut s| s.insert(nr))
            .unwrap_or(false);
        if first {
            let name = syscall_tables::lookup(syscall_tables::Arch::X86_64, nr)
                .map(|s| s.name)
                .unwrap_or("unknown");
            tracing::info!("unimplemented syscall {name} ({nr}): returning ENOSYS");
        }
    }
}
