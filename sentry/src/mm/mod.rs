//! Application memory: the [`MemoryFile`] that holds it and the [`MemoryManager`] that
//! keeps each process's VMAs (the truth) and tells the platform what to map where.

mod memory_file;

pub use memory_file::MemoryFile;

use crate::errno;
use crate::error::Result;

/// An address in the application's address space. Never dereferenced by the sentry: it is
/// translated through the memory manager, which fails with `EFAULT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserAddr(pub u64);

impl UserAddr {
    pub fn is_null(self) -> bool {
        self.0 == 0
    }

    /// `self + off`, or `EFAULT` if it wraps.
    pub fn add(self, off: u64) -> Result<UserAddr> {
        self.0.checked_add(off).map(UserAddr).ok_or(errno!(EFAULT))
    }
}

/// A file that private mappings copy their pages from (ELF segments, `mmap` of a file).
/// Implemented by the VFS for regular files.
pub trait MappableFile: Send + Sync {
    /// Read up to `buf.len()` bytes at `offset`; fewer only at end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize>;
}

/// One process's address space. Placeholder until the VMA code lands.
pub struct MemoryManager {}

impl MemoryManager {
    /// Copy `buf.len()` bytes from application memory at `addr`; `EFAULT` if any byte is
    /// not readable by the application.
    pub fn copy_in(&mut self, _addr: UserAddr, _buf: &mut [u8]) -> Result<()> {
        Err(errno!(EFAULT))
    }

    /// Copy `data` to application memory at `addr`; `EFAULT` if any byte is not writable.
    pub fn copy_out(&mut self, _addr: UserAddr, _data: &[u8]) -> Result<()> {
        Err(errno!(EFAULT))
    }
}
