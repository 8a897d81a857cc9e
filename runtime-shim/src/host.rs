//! The CLI's host-call layer: the only place in this crate with `unsafe`.

use std::os::fd::{FromRawFd, OwnedFd};

/// Take ownership of a descriptor the parent process left open for us and named on our
/// command line (`--sock-fd 3`).
pub fn take_inherited_fd(fd: i32) -> anyhow::Result<OwnedFd> {
    if fd < 3 {
        anyhow::bail!("fd {fd} is standard I/O, not an inherited descriptor");
    }
    // SAFETY: F_GETFD only reads the descriptor table entry for `fd`.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        anyhow::bail!("fd {fd} is not open");
    }
    // SAFETY: the fd is open (checked above) and was handed to this process by number;
    // nothing else in this process owns it, so the OwnedFd becomes its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fork(2)`. Only for a process that has a single thread (checked by the caller's
/// design: it runs before any thread is started).
pub fn fork() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: called while the process has one thread, so the child inherits no lock held
    // by another thread and may do anything the parent could.
    unsafe { nix::unistd::fork() }
}

/// `struct mount_attr` of mount_setattr(2), with the constants used here (the libc crate
/// does not export them for glibc targets yet).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}
const SYS_MOUNT_SETATTR: libc::c_long = 442;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// Restrict every mount at and under `path`: `nosuid`, `nodev`, and read-only if
/// `read_only`, with `mount_setattr(AT_RECURSIVE)` (Linux 5.12+).
pub fn harden_mount_tree(path: &str, read_only: bool) -> anyhow::Result<()> {
    let c = std::ffi::CString::new(path)?;
    let mut attr = MountAttr {
        attr_set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    if read_only {
        attr.attr_set |= MOUNT_ATTR_RDONLY;
    }
    // SAFETY: `c` is a NUL-terminated path that lives across the call; `attr` is a
    // mount_attr of exactly the size passed, only read by the kernel during the call.
    let r = unsafe {
        libc::syscall(
            SYS_MOUNT_SETATTR,
            libc::AT_FDCWD,
            c.as_ptr(),
            AT_RECURSIVE,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// A close-on-exec duplicate of standard descriptor `fd` (0, 1 or 2).
pub fn dup_stdio(fd: i32) -> anyhow::Result<OwnedFd> {
    use anyhow::Context;
    use std::os::fd::AsFd;
    let dup = match fd {
        0 => std::io::stdin().as_fd().try_clone_to_owned(),
        1 => std::io::stdout().as_fd().try_clone_to_owned(),
        _ => std::io::stderr().as_fd().try_clone_to_owned(),
    };
    dup.with_context(|| format!("standard descriptor {fd} is not open"))
}

/// End this process the way the container's init ended, so that whoever waits on it
/// (the `--pid-file` pid) sees the same status: returns the exit code for `Exited`, and
/// for a signal re-raises it with its default action (no core file). Should the signal
/// not kill us, the code a shell would show (128 + signal) is returned instead.
pub fn exit_like(status: sentry::kernel::ExitStatus) -> u8 {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};
    match status {
        sentry::kernel::ExitStatus::Exited(code) => (code & 0xff) as u8,
        sentry::kernel::ExitStatus::Signaled { signo, .. } => {
            if let Ok(sig) = Signal::try_from(signo) {
                // Lowering a limit is always allowed; a core of the sentry is not the
                // application's core.
                let _ =
                    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
                // SAFETY: SIG_DFL installs no handler code; nothing in this process relies
                // on a handler for `sig` any more, as it is about to die of it.
                let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
                let mut set = SigSet::empty();
                set.add(sig);
                let _ =
                    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
                let _ = nix::sys::signal::raise(sig);
            }
            (128 + (signo & 0x7f)) as u8
        }
    }
}

/// Give the heap's free pages back to the host (`malloc_trim(0)`): what a process
/// allocated and freed while starting up stops counting against it.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks and shrinks glibc's own heaps, under their locks; it
    // frees no memory that is still allocated.
    unsafe {
        libc::malloc_trim(0);
    }
}
