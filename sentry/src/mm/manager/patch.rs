//! Syscall patching's side of the memory manager: the platform plans a rewrite of a
//! syscall site ([`Patch`]), the memory manager makes it in the application's private copy
//! of the code and undoes it before anything could notice — the application making the
//! page writable (JITs, self-modifying code) or moving it, or mapping something over the
//! platform's jump table.

use super::{Backing, MemoryManager};
use crate::error::Result;
use crate::mm::{page_down, PAGE_SIZE};
use crate::platform::Patch;
use crate::{errno, return_errno};

/// A patched site: its original bytes and the ones written over them.
pub(super) type PatchedSite = (Vec<u8>, Vec<u8>);

impl MemoryManager {
    /// Whether the platform can take patched sites in this address space.
    pub fn patching_live(&self) -> bool {
        self.aspace.patch_table().is_some()
    }

    /// Make `p`: only in private, executable, non-writable memory (program and library
    /// text), only where the changed bytes share one aligned 16-byte block, so that one
    /// atomic compare-and-swap flips them for every thread running that code. Anything else is an
    /// error and the site keeps trapping.
    pub fn apply_patch(&mut self, p: &Patch) -> Result<()> {
        let len = p.old.len() as u64;
        if len == 0 || len != p.new.len() as u64 || !self.patching_live() {
            return_errno!(EINVAL);
        }
        let end = p.addr.checked_add(len).ok_or(errno!(EFAULT))?;
        if (p.addr & !15) + 16 < end {
            return_errno!(EINVAL, "site straddles a 16-byte block");
        }
        let (_, vma) = self.find_vma(p.addr).ok_or(errno!(EFAULT))?;
        let private = matches!(vma.backing, Backing::Anon | Backing::File { .. });
        if vma.end < end || vma.shared || !private || !vma.prot.exec || vma.prot.write {
            return_errno!(EPERM, "site not in private read-only code");
        }
        self.replace_code(p.addr, &p.old, &p.new)?;
        self.patched.insert(p.addr, (p.old.clone(), p.new.clone()));
        Ok(())
    }

    /// Replace `old` with `new` at `addr` through the MemoryFile, atomically, in this
    /// address space's own copy of the page.
    fn replace_code(&mut self, addr: u64, old: &[u8], new: &[u8]) -> Result<()> {
        let page = page_down(addr);
        if addr + old.len() as u64 > page + PAGE_SIZE {
            return_errno!(EINVAL);
        }
        let mut frame = self.frame(page)?;
        if self.cow.contains(&page) {
            frame = self.break_cow(page)?;
        }
        self.mf.replace_bytes(frame + (addr - page), old, new)
    }

    /// Put back the original code of the patched sites in `[start, end)` (the range is
    /// about to become writable or to move); they trap again.
    pub(super) fn unpatch_range(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let sites: Vec<(u64, PatchedSite)> = self
            .patched
            .range(start.saturating_sub(7)..end)
            .map(|(a, v)| (*a, v.clone()))
            .collect();
        for (addr, (old, new)) in sites {
            // Fails only if the bytes are no longer ours (the page was refilled).
            let _ = self.replace_code(addr, &new, &old);
            self.patched.remove(&addr);
        }
    }

    /// Forget the sites in `[start, end)`, whose pages are gone.
    pub(super) fn forget_patches(&mut self, start: u64, end: u64) {
        if start >= end || self.patched.is_empty() {
            return;
        }
        let gone: Vec<u64> = self.patched.range(start..end).map(|(a, _)| *a).collect();
        for a in gone {
            self.patched.remove(&a);
        }
    }

    /// The application maps `[start, end)`: if that covers the platform's jump table,
    /// every patched site goes back to trapping first and no new one is made.
    pub(super) fn claim_patch_table(&mut self, start: u64, end: u64) {
        if let Some((t0, t1)) = self.aspace.patch_table() {
            if start < t1 && end > t0 {
                self.unpatch_all();
            }
        }
    }

    /// Undo every patched site and stop patching in this address space (the
    /// application maps over the jump table, or sets a gs base of its own).
    pub fn unpatch_all(&mut self) {
        self.unpatch_range(0, u64::MAX);
        self.aspace.release_patch_table();
    }

    /// The patched sites (for tests and `fork`).
    pub fn patched_sites(&self) -> usize {
        self.patched.len()
    }
}
