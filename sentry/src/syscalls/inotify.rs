//! `inotify_init`, `inotify_init1`, `inotify_add_watch`, `inotify_rm_watch`.
#![deny(unsafe_code)]

use super::file::{creds, fs_ctx, get_file};
use super::fs::read_path;
use super::pipe::install;
use crate::error::Result;
use crate::fs::inotify::Inotify;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::notify::{
    IN_ALL_EVENTS, IN_DONT_FOLLOW, IN_EXCL_UNLINK, IN_MASK_ADD, IN_MASK_CREATE, IN_ONESHOT,
    IN_ONLYDIR,
};
use crate::vfs::{check_permission, FileDescription, MAY_READ};
use crate::{errno, return_errno};
use std::sync::Arc;

/// Every bit `inotify_add_watch` accepts (`ALL_INOTIFY_BITS` without the output-only ones).
const VALID_WATCH_BITS: u32 = IN_ALL_EVENTS
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
    | IN_MASK_CREATE
    | IN_MASK_ADD
    | IN_ONESHOT;

pub fn sys_inotify_init(task: &mut Task) -> Result<u64> {
    sys_inotify_init1(task, 0)
}

pub fn sys_inotify_init1(task: &mut Task, flags: i32) -> Result<u64> {
    if flags & !(libc::IN_CLOEXEC | libc::IN_NONBLOCK) != 0 {
        return_errno!(EINVAL);
    }
    let file = Inotify::new(flags & libc::IN_NONBLOCK != 0);
    install(task, file, flags & libc::IN_CLOEXEC != 0)
}

/// The inotify instance behind `fd`: `EBADF` for no file, `EINVAL` for another kind.
fn instance(task: &Task, fd: i32) -> Result<Arc<dyn FileDescription>> {
    let file = get_file(task, fd)?;
    if file
        .as_any()
        .and_then(|a| a.downcast_ref::<Inotify>())
        .is_none()
    {
        return_errno!(EINVAL);
    }
    Ok(file)
}

fn as_inotify(file: &Arc<dyn FileDescription>) -> Result<&Inotify> {
    file.as_any()
        .and_then(|a| a.downcast_ref::<Inotify>())
        .ok_or(errno!(EINVAL))
}

pub fn sys_inotify_add_watch(task: &mut Task, fd: i32, path: UserAddr, mask: u32) -> Result<u64> {
    if mask & IN_ALL_EVENTS == 0 || mask & !VALID_WATCH_BITS != 0 {
        return_errno!(EINVAL);
    }
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return_errno!(EINVAL);
    }
    let file = instance(task, fd)?;
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let p = ctx.lookup(&ctx.cwd, &path, mask & IN_DONT_FOLLOW == 0)?;
    let st = p.inode().stat()?;
    if mask & IN_ONLYDIR != 0 && !st.is_dir() {
        return_errno!(ENOTDIR);
    }
    // Watching needs read permission on the object (inotify_find_inode).
    check_permission(&st, &creds(task), MAY_READ)?;
    let wd = as_inotify(&file)?.add_watch(p.inode().clone(), mask)?;
    Ok(wd as u64)
}

pub fn sys_inotify_rm_watch(task: &mut Task, fd: i32, wd: i32) -> Result<u64> {
    let file = instance(task, fd)?;
    as_inotify(&file)?.rm_watch(wd)?;
    Ok(0)
}
