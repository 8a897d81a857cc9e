//! A task: one application thread, run by one sentry host thread.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::mm::{MemoryManager, UserAddr};
use crate::platform::{Context, Regs};
use crate::vfs::{FdTable, FsContext};
use crate::{errno, return_errno};
use std::sync::{Arc, Mutex, MutexGuard};

/// Longest path the application may pass (Linux `PATH_MAX`, including the NUL).
pub const PATH_MAX: usize = 4096;

pub struct Task {
    pub tid: i32,
    pub regs: Regs,
    pub ctx: Box<dyn Context>,
    pub mm: Arc<Mutex<MemoryManager>>,
    pub fs: Arc<Mutex<FsContext>>,
    pub files: Arc<Mutex<FdTable>>,
}

impl Task {
    pub fn mm(&self) -> MutexGuard<'_, MemoryManager> {
        // A poisoned lock means a sentry bug already panicked; keep going with the data.
        self.mm.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn copy_in(&self, addr: UserAddr, buf: &mut [u8]) -> Result<()> {
        self.mm().copy_in(addr, buf)
    }

    pub fn copy_out(&self, addr: UserAddr, data: &[u8]) -> Result<()> {
        self.mm().copy_out(addr, data)
    }

    /// Read a plain-data value (a C struct) from application memory.
    pub fn read_obj<T: bytemuck::Pod>(&self, addr: UserAddr) -> Result<T> {
        let mut v = T::zeroed();
        self.copy_in(addr, bytemuck::bytes_of_mut(&mut v))?;
        Ok(v)
    }

    /// Write a plain-data value (a C struct) to application memory.
    pub fn write_obj<T: bytemuck::Pod>(&self, addr: UserAddr, v: &T) -> Result<()> {
        self.copy_out(addr, bytemuck::bytes_of(v))
    }

    /// Read a NUL-terminated string of at most `max` bytes (NUL included) and return it
    /// without the NUL. `ENAMETOOLONG` if no NUL is found within `max` bytes.
    pub fn read_cstring(&self, addr: UserAddr, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut cur = addr;
        let mut chunk = [0u8; 256];
        while out.len() < max {
            // Never read across a page boundary we do not need: the next page may be
            // unmapped while the string ends before it.
            let to_page_end = 4096 - (cur.0 % 4096) as usize;
            let n = chunk.len().min(to_page_end).min(max - out.len());
            let buf = chunk.get_mut(..n).ok_or(errno!(EFAULT))?;
            self.copy_in(cur, buf)?;
            if let Some(pos) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(buf.get(..pos).unwrap_or_default());
                return Ok(out);
            }
            out.extend_from_slice(buf);
            cur = cur.add(n as u64)?;
        }
        return_errno!(ENAMETOOLONG)
    }

    /// Read a path argument: `EFAULT`, `ENAMETOOLONG` as Linux's `getname`. An empty path
    /// is returned as is; callers decide between `ENOENT` and `AT_EMPTY_PATH`.
    pub fn read_path(&self, addr: UserAddr) -> Result<Vec<u8>> {
        self.read_cstring(addr, PATH_MAX)
    }
}
