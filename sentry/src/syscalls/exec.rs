//! `execve` and `execveat`.
#![deny(unsafe_code)]

use super::SyscallReturn;
use crate::error::Result;
use crate::kernel::Task;
use crate::loader::Executable;
use crate::mm::UserAddr;
use crate::vfs::{check_permission, ExecFile, MAY_EXEC};
use crate::{errno, return_errno};

/// Linux's per-string limit (`MAX_ARG_STRLEN`).
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Linux's cap on the number of strings (`MAX_ARG_STRINGS`).
const MAX_ARG_STRINGS: usize = 0x7fff_ffff;
/// Total bytes of argv + envp (a quarter of the default 8 MiB stack).
const MAX_ARG_BYTES: usize = 2 << 20;

/// Read a NULL-terminated array of string pointers (`argv`, `envp`). A NULL array is
/// empty, as Linux accepts.
fn read_string_array(task: &Task, addr: UserAddr, total: &mut usize) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if addr.is_null() {
        return Ok(out);
    }
    for i in 0..MAX_ARG_STRINGS {
        let p: u64 = task.read_obj(addr.offset((i as u64) * 8)?)?;
        if p == 0 {
            return Ok(out);
        }
        let s = task
            .read_cstring(UserAddr(p), MAX_ARG_STRLEN)
            .map_err(|e| {
                if e.errno == crate::Errno::ENAMETOOLONG {
                    errno!(E2BIG)
                } else {
                    e
                }
            })?;
        *total = total.saturating_add(s.len() + 1 + 8);
        if *total > MAX_ARG_BYTES {
            return_errno!(E2BIG);
        }
        out.push(s);
    }
    return_errno!(E2BIG)
}

/// The program of an `execveat`: `path` relative to `dirfd`, or the fd itself with
/// `AT_EMPTY_PATH` and an empty path.
fn open_program(task: &Task, dirfd: i32, path: &[u8], flags: i32) -> Result<ExecFile> {
    if path.is_empty() && flags & libc::AT_EMPTY_PATH == 0 {
        return_errno!(ENOENT);
    }
    let mut ctx = task.fs().clone();

    if path.is_empty() {
        let file = super::file::get_file(task, dirfd)?;
        let st = file.stat()?;
        if !st.is_reg() {
            return_errno!(EACCES);
        }
        check_permission(&st, &super::file::creds(task), MAY_EXEC)?;
        if file.path().is_some_and(|p| p.mount.flags().noexec) {
            return_errno!(EACCES);
        }
        let mappable = file.mappable().ok_or(errno!(EACCES))?;
        let path = file
            .path()
            .map(|p| p.path_from(&ctx.root))
            .unwrap_or_default();
        return Ok(ExecFile {
            file,
            mappable,
            path,
        });
    }
    if dirfd != libc::AT_FDCWD && path.first() != Some(&b'/') {
        ctx.cwd = super::fs::dir_of(task, &ctx, dirfd, path)?;
    }
    ctx.open_for_exec(path, &super::file::creds(task))
}

/// The ids a set-user-ID or set-group-ID program runs with (`bprm_fill_uid`): the
/// file's owner and group, unless `PR_SET_NO_NEW_PRIVS` forbids gaining privileges. A
/// set-group-ID bit without group-execute is mandatory locking, not set-group-ID. A
/// script's own bits never count (Linux ignores set-ID scripts): only an ELF file's. On
/// a `nosuid` mount they do not count either.
fn set_ids(task: &Task, program: &ExecFile) -> Result<(Option<u32>, Option<u32>)> {
    if task.no_new_privs() || program.file.path().is_some_and(|p| p.mount.flags().nosuid) {
        return Ok((None, None));
    }
    let mut magic = [0u8; 2];
    if program.read_at(&mut magic, 0)? == 2 && &magic == b"#!" {
        return Ok((None, None));
    }
    let st = program.file.stat()?;
    let setuid = (st.mode & libc::S_ISUID != 0).then_some(st.uid);
    let setgid = (st.mode & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP)
        .then_some(st.gid);
    Ok((setuid, setgid))
}

pub fn sys_execve(
    task: &mut Task,
    path: UserAddr,
    argv: UserAddr,
    envp: UserAddr,
) -> Result<SyscallReturn> {
    sys_execveat(task, libc::AT_FDCWD, path, argv, envp, 0)
}

pub fn sys_execveat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    argv: UserAddr,
    envp: UserAddr,
    flags: i32,
) -> Result<SyscallReturn> {
    if flags & !(libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) != 0 {
        return_errno!(EINVAL);
    }
    let path = task.read_path(path)?;
    let mut total = 0usize;
    let argv = read_string_array(task, argv, &mut total)?;
    let envp = read_string_array(task, envp, &mut total)?;
    // The program is opened first: its set-ID bits decide the ids the image is loaded
    // for (the auxiliary vector tells them).
    let program = open_program(task, dirfd, &path, flags)?;
    let (setuid, setgid) = set_ids(task, &program)?;
    let mut creds = task.creds.clone();
    creds.exec_set_ids(setuid, setgid);
    let img = {
        let t: &Task = task;
        // Only the program itself is relative to `dirfd`; `#!` and PT_INTERP paths are
        // resolved as plain paths.
        let first = std::cell::RefCell::new(Some(program));
        let open = |p: &[u8]| -> Result<Executable> {
            let f = match first.borrow_mut().take() {
                Some(f) => f,
                None => crate::vfs::open_for_exec(t, p)?,
            };
            Ok(Executable {
                file: f.mappable(),
                path: f.path,
            })
        };
        t.load_image(&open, &path, argv, envp, &creds)?
    };
    task.kernel.kill_other_threads(task);
    task.creds = creds;
    task.install_image(img);
    Ok(SyscallReturn::KeepRegs)
}
