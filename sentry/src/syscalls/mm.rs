//! Memory syscalls: mmap, munmap, mprotect, brk, mremap, madvise, mincore, msync.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::Task;
use crate::mm::{page_up, Backing, PageCache, UserAddr, PAGE_SIZE};
use crate::platform::Prot;
use crate::{errno, return_errno};
use std::sync::Arc;

const MAP_TYPE: i32 = 0x0f;
/// Flags mmap accepts; others are EINVAL only if they are unknown to Linux too, so this is
/// the set Linux 6.x knows (legacy ones are ignored as Linux ignores them).
const KNOWN_MAP_FLAGS: i32 = libc::MAP_SHARED
    | libc::MAP_PRIVATE
    | libc::MAP_SHARED_VALIDATE
    | libc::MAP_FIXED
    | libc::MAP_ANONYMOUS
    | libc::MAP_GROWSDOWN
    | libc::MAP_DENYWRITE
    | libc::MAP_EXECUTABLE
    | libc::MAP_LOCKED
    | libc::MAP_NORESERVE
    | libc::MAP_POPULATE
    | libc::MAP_NONBLOCK
    | libc::MAP_STACK
    | libc::MAP_HUGETLB
    | libc::MAP_SYNC
    | libc::MAP_FIXED_NOREPLACE
    | (0x3f << libc::MAP_HUGE_SHIFT);

pub fn sys_mmap(
    task: &mut Task,
    addr: u64,
    len: u64,
    prot: i32,
    flags: i32,
    fd: i32,
    offset: u64,
) -> Result<u64> {
    if prot & !(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) != 0 {
        return_errno!(EINVAL);
    }
    let shared = match flags & MAP_TYPE {
        libc::MAP_PRIVATE => false,
        libc::MAP_SHARED => true,
        // Linux validates flags only for files; anonymous memory has no such type.
        libc::MAP_SHARED_VALIDATE if flags & libc::MAP_ANONYMOUS != 0 => return_errno!(EINVAL),
        libc::MAP_SHARED_VALIDATE => {
            if flags & !KNOWN_MAP_FLAGS != 0 {
                return_errno!(EOPNOTSUPP);
            }
            true
        }
        _ => return_errno!(EINVAL),
    };
    if len == 0 || !offset.is_multiple_of(PAGE_SIZE) {
        return_errno!(EINVAL);
    }
    let len = page_up(len).ok_or(errno!(ENOMEM))?;
    offset.checked_add(len).ok_or(errno!(EOVERFLOW))?;
    let fixed = flags & libc::MAP_FIXED != 0;
    let noreplace = flags & libc::MAP_FIXED_NOREPLACE != 0;
    let prot = Prot::from_bits(prot);
    let (backing, name) = if flags & libc::MAP_ANONYMOUS != 0 {
        if shared {
            // A fresh anonymous object of the mapping's size (Linux's shmem file behind
            // `/dev/zero (deleted)`), so that children share it after fork.
            let mf = task.mm().memory_file().clone();
            let cache = PageCache::with_size(mf, len)?;
            let backing = Backing::Shared {
                cache: Arc::new(cache),
                offset: 0,
                may_write: true,
                writer: None,
            };
            (backing, String::new())
        } else {
            (Backing::Anon, String::new())
        }
    } else {
        let file = task.files().get(fd)?;
        let mappable = file.mappable().ok_or(errno!(ENODEV))?;
        let acc = file.status_flags() & libc::O_ACCMODE as u32;
        if acc == libc::O_WRONLY as u32 {
            return_errno!(EACCES);
        }
        if prot.exec && file.path().is_some_and(|p| p.mount.flags().noexec) {
            return_errno!(EPERM);
        }
        let mut may_write = acc == libc::O_RDWR as u32;
        if shared && prot.write && !may_write {
            return_errno!(EACCES);
        }
        // A file sealed against writing takes no writable shared mapping (EPERM), and a
        // read-only one may not become writable later (memfd_file_seals / VM_MAYWRITE).
        let seals = file
            .as_any()
            .and_then(|a| a.downcast_ref::<crate::fs::tmpfs::TmpfsFile>())
            .map(|f| f.seals())
            .unwrap_or(0);
        use crate::fs::tmpfs::memfd::{F_SEAL_FUTURE_WRITE, F_SEAL_WRITE};
        if shared && seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            if prot.write {
                return_errno!(EPERM);
            }
            may_write = false;
        }
        let backing = match mappable.page_cache() {
            // The file's own pages: stores reach the file, its writes reach the mapping.
            Some(cache) if shared => Backing::Shared {
                writer: may_write.then(|| cache.writer_token()),
                cache,
                offset,
                may_write,
            },
            // Host files have no pages of ours to share; refuse rather than silently
            // lose writes. A read-only shared mapping is a private copy.
            None if shared && prot.write => return_errno!(
                ENODEV,
                "shared writable mappings of host files are not supported"
            ),
            _ => Backing::File {
                file: mappable,
                offset,
            },
        };
        (backing, file.path_name())
    };
    task.mm()
        .mmap(addr, len, prot, fixed, noreplace, shared, backing, name)
}

pub fn sys_munmap(task: &mut Task, addr: u64, len: u64) -> Result<u64> {
    task.mm().munmap(addr, len)?;
    Ok(0)
}

pub fn sys_mprotect(task: &mut Task, addr: u64, len: u64, prot: i32) -> Result<u64> {
    let known = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
    if prot & !(known | libc::PROT_GROWSDOWN | libc::PROT_GROWSUP) != 0 {
        return_errno!(EINVAL);
    }
    task.mm()
        .mprotect(addr, len, Prot::from_bits(prot & known))?;
    Ok(0)
}

pub fn sys_brk(task: &mut Task, addr: u64) -> Result<u64> {
    Ok(task.mm().brk(addr))
}

pub fn sys_mremap(
    task: &mut Task,
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: i32,
    new_addr: u64,
) -> Result<u64> {
    let known = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | libc::MREMAP_DONTUNMAP;
    if flags & !known != 0 {
        return_errno!(EINVAL);
    }
    if flags & libc::MREMAP_DONTUNMAP != 0 {
        return_errno!(EINVAL, "MREMAP_DONTUNMAP is not supported");
    }
    let may_move = flags & libc::MREMAP_MAYMOVE != 0;
    let fixed = flags & libc::MREMAP_FIXED != 0;
    if fixed && !may_move {
        return_errno!(EINVAL);
    }
    task.mm()
        .mremap(old, old_len, new_len, may_move, fixed.then_some(new_addr))
}

pub fn sys_madvise(task: &mut Task, addr: u64, len: u64, advice: i32) -> Result<u64> {
    if !addr.is_multiple_of(PAGE_SIZE) {
        return_errno!(EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    match advice {
        libc::MADV_DONTNEED => task.mm().discard(addr, len)?,
        libc::MADV_NORMAL
        | libc::MADV_RANDOM
        | libc::MADV_SEQUENTIAL
        | libc::MADV_WILLNEED
        | libc::MADV_FREE
        | libc::MADV_DONTFORK
        | libc::MADV_DOFORK
        | libc::MADV_MERGEABLE
        | libc::MADV_UNMERGEABLE
        | libc::MADV_HUGEPAGE
        | libc::MADV_NOHUGEPAGE
        | libc::MADV_DONTDUMP
        | libc::MADV_DODUMP
        | libc::MADV_COLD
        | libc::MADV_PAGEOUT => {
            // Hints: nothing to do, but the range must be mapped.
            task.mm().check_mapped(addr, len)?;
        }
        _ => return_errno!(EINVAL),
    }
    Ok(0)
}

pub fn sys_mincore(task: &mut Task, addr: u64, len: u64, vec: UserAddr) -> Result<u64> {
    let bytes = task.mm().mincore(addr, len)?;
    task.copy_out(vec, &bytes)?;
    Ok(0)
}

pub fn sys_msync(task: &mut Task, addr: u64, len: u64, flags: i32) -> Result<u64> {
    let known = libc::MS_ASYNC | libc::MS_SYNC | libc::MS_INVALIDATE;
    if !addr.is_multiple_of(PAGE_SIZE)
        || flags & !known != 0
        || (flags & libc::MS_ASYNC != 0 && flags & libc::MS_SYNC != 0)
    {
        return_errno!(EINVAL);
    }
    // Nothing to write back: shared mappings map the page cache, which is the file, and
    // private memory has no file to go to.
    task.mm().check_mapped(addr, len)?;
    Ok(0)
}
