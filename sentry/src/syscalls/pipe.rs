//! Pipes and event counters: `pipe`, `pipe2`, `eventfd`, `eventfd2`.
#![deny(unsafe_code)]

use super::file::files;
use crate::error::Result;
use crate::fs::eventfd::EventFd;
use crate::fs::pipe::new_pipe;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::return_errno;
use crate::vfs::{FdFlags, FileDescription};
use std::sync::Arc;

/// Install `file` at the lowest free descriptor.
pub(super) fn install(task: &Task, file: Arc<dyn FileDescription>, cloexec: bool) -> Result<u64> {
    Ok(files(task).insert(file, FdFlags { cloexec })? as u64)
}

pub fn sys_pipe(task: &mut Task, fds: UserAddr) -> Result<u64> {
    sys_pipe2(task, fds, 0)
}

pub fn sys_pipe2(task: &mut Task, fds: UserAddr, flags: i32) -> Result<u64> {
    if flags & !(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) != 0 {
        return_errno!(EINVAL);
    }
    let (r, w) = new_pipe(flags as u32, task.creds.fsuid, task.creds.fsgid);
    let fd_flags = FdFlags {
        cloexec: flags & libc::O_CLOEXEC != 0,
    };
    let (rfd, wfd) = {
        let mut t = files(task);
        let rfd = t.insert(r, fd_flags)?;
        match t.insert(w, fd_flags) {
            Ok(wfd) => (rfd, wfd),
            Err(e) => {
                let dropped = t.remove(rfd);
                drop(t);
                drop(dropped);
                return Err(e);
            }
        }
    };
    if let Err(e) = task.write_obj(fds, &[rfd, wfd]) {
        // Linux installs the descriptors only once the array is written: undo.
        let dropped = {
            let mut t = files(task);
            (t.remove(rfd), t.remove(wfd))
        };
        drop(dropped);
        return Err(e);
    }
    Ok(0)
}

const EFD_SEMAPHORE: i32 = 1;

pub fn sys_eventfd(task: &mut Task, initval: u32) -> Result<u64> {
    sys_eventfd2(task, initval, 0)
}

pub fn sys_eventfd2(task: &mut Task, initval: u32, flags: i32) -> Result<u64> {
    if flags & !(EFD_SEMAPHORE | libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
        return_errno!(EINVAL);
    }
    let file = EventFd::new(
        initval,
        flags & libc::O_NONBLOCK != 0,
        flags & EFD_SEMAPHORE != 0,
    );
    install(task, Arc::new(file), flags & libc::O_CLOEXEC != 0)
}
