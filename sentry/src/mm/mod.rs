//! Application memory: the [`MemoryFile`] that holds it and the [`MemoryManager`] that
//! keeps each process's VMAs (the truth) and tells the platform what to map where.

mod file_cache;
mod manager;
mod memory_file;
mod page_cache;

pub use file_cache::FileCache;
pub use manager::{Backing, ExecLayout, FaultSignal, ForkedMm, MemoryManager, Vma, STACK_SIZE};
pub use memory_file::{MemoryFile, PAGE_SIZE};
pub use page_cache::PageCache;

use crate::errno;
use crate::error::Result;

/// Round `v` down to a page boundary.
pub const fn page_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// Round `v` up to a page boundary, or `None` if that overflows.
pub fn page_up(v: u64) -> Option<u64> {
    Some(v.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// An address in the application's address space. Never dereferenced by the sentry: it is
/// translated through the memory manager, which fails with `EFAULT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserAddr(pub u64);

impl UserAddr {
    pub fn is_null(self) -> bool {
        self.0 == 0
    }

    /// `self + off`, or `EFAULT` if it wraps.
    pub fn offset(self, off: u64) -> Result<UserAddr> {
        self.0.checked_add(off).map(UserAddr).ok_or(errno!(EFAULT))
    }
}

/// A file that private mappings copy their pages from (ELF segments, `mmap` of a file).
/// Implemented by the VFS for regular files.
pub trait MappableFile: Send + Sync {
    /// Read up to `buf.len()` bytes at `offset`; fewer only at end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize>;

    /// The file's data as MemoryFile pages, for files that keep it there (tmpfs):
    /// `MAP_SHARED` maps those pages themselves. Files without one (host files through
    /// the gofer) can only be mapped as private copies.
    fn page_cache(&self) -> Option<std::sync::Arc<PageCache>> {
        None
    }

    /// For files that do not change while the sandbox runs: their pages cached in `mf`,
    /// which private mappings share copy-on-write instead of copying.
    fn file_cache(&self, _mf: &std::sync::Arc<MemoryFile>) -> Option<std::sync::Arc<FileCache>> {
        None
    }
}
