//! `/proc/PID/mem`: a process's address space as a file, the offset being the address.
//! The description holds the address space it was opened on (as Linux's holds the
//! `mm`), so it keeps reading the old one after the process execs.

use crate::error::Result;
use crate::kernel::process::lock;
use crate::mm::{MemoryManager, UserAddr, PAGE_SIZE};
use crate::vfs::{FileDescription, FileState, Stat, VfsPath};
use crate::{errno, return_errno};
use std::sync::{Arc, Mutex};

/// Reads and writes are cut at this many bytes per call, as Linux's loop over one page at
/// a time would be by a pending signal.
const MAX_IO: usize = 1 << 20;

pub struct MemFile {
    mm: Arc<Mutex<MemoryManager>>,
    path: VfsPath,
    state: FileState,
}

impl MemFile {
    pub fn new(mm: Arc<Mutex<MemoryManager>>, path: &VfsPath, flags: u32) -> MemFile {
        MemFile {
            mm,
            path: path.clone(),
            state: FileState::new(flags),
        }
    }

    /// Run `io` on each piece of `[addr, addr + len)` that stays within one page, until
    /// one fails; how many bytes went through, or `EIO` if none did.
    fn pages(
        &self,
        addr: u64,
        len: usize,
        mut io: impl FnMut(&mut MemoryManager, UserAddr, usize, usize) -> Result<()>,
    ) -> Result<usize> {
        let len = len.min(MAX_IO);
        let mut mm = lock(&self.mm);
        let mut done = 0usize;
        while done < len {
            let Some(at) = addr.checked_add(done as u64) else {
                break;
            };
            let in_page = (PAGE_SIZE - at % PAGE_SIZE) as usize;
            let n = in_page.min(len - done);
            if io(&mut mm, UserAddr(at), done, n).is_err() {
                break;
            }
            done += n;
        }
        if done == 0 && len > 0 {
            return_errno!(EIO);
        }
        Ok(done)
    }
}

impl FileDescription for MemFile {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        self.state.with_offset(offset, |addr| {
            let len = buf.len();
            self.pages(addr, len, |mm, at, from, n| {
                let dst = buf.get_mut(from..from + n).ok_or(errno!(EFAULT))?;
                mm.copy_in(at, dst)
            })
        })
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        self.state.with_offset(offset, |addr| {
            self.pages(addr, buf.len(), |mm, at, from, n| {
                let src = buf.get(from..from + n).ok_or(errno!(EFAULT))?;
                mm.copy_out(at, src)
            })
        })
    }

    /// `mem_lseek`: any address is a valid offset, so the result is not range-checked.
    fn seek(&self, offset: i64, whence: i32) -> Result<u64> {
        let mut pos = self.state.offset();
        let new = match whence {
            libc::SEEK_SET => offset as u64,
            libc::SEEK_CUR => pos.wrapping_add(offset as u64),
            _ => return_errno!(EINVAL),
        };
        *pos = new;
        Ok(new)
    }

    fn stat(&self) -> Result<Stat> {
        self.path.inode().stat()
    }

    fn status_flags(&self) -> u32 {
        self.state.flags()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.state.set_flags(flags);
        Ok(())
    }

    fn path(&self) -> Option<VfsPath> {
        Some(self.path.clone())
    }
}
