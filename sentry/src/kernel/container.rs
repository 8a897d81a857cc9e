//! Containers of a pod inside one sandbox.
//!
//! Every thread group carries the id of the container it belongs to
//! ([`ThreadGroup::container`]): 0 for the sandbox's own container (the pod's pause
//! container, or the only container of a plain sandbox), a fresh id for each
//! sub-container added later (`carapace create` of a pod's app container). Children
//! inherit it across `fork`, so a container's processes are found, signalled and listed
//! without touching the others. The containers share everything else of the kernel: the
//! pid space (pids are unique across the pod, as with Kubernetes'
//! `shareProcessNamespace`), the network stack, System V IPC and the hostname. Each has
//! its own mount tree (its own `Vfs`), built from its own gofer.

use super::process::ThreadGroup;
use super::Kernel;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The id of the sandbox's own container.
pub const SANDBOX: u32 = 0;

/// The next sub-container id (one sentry runs one pod).
static NEXT: AtomicU32 = AtomicU32::new(1);

/// A fresh container id for a sub-container.
pub fn alloc_id() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The container `tg` belongs to.
pub fn of(tg: &ThreadGroup) -> u32 {
    tg.container.load(Ordering::Relaxed)
}

/// Make `tg` (a process not yet running) part of container `id`.
pub fn assign(tg: &ThreadGroup, id: u32) {
    tg.container.store(id, Ordering::Relaxed);
}

/// Every thread group of container `id`, by pid.
pub fn groups(kernel: &Kernel, id: u32) -> Vec<Arc<ThreadGroup>> {
    let mut v: Vec<Arc<ThreadGroup>> = kernel
        .pids()
        .groups
        .values()
        .filter(|g| of(g) == id)
        .cloned()
        .collect();
    v.sort_unstable_by_key(|g| g.tgid);
    v
}
