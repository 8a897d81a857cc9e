//! System call dispatch and one module per family.
//!
//! Arguments are decoded once here, at the edge: handlers take typed values (`i32` fds,
//! [`UserAddr`] pointers, `usize` lengths) and never see raw registers.
#![deny(unsafe_code)]

pub mod exec;
pub mod file;
pub mod fs;
pub mod fs_extra;
pub mod futex;
pub mod inotify;
pub mod lock;
pub mod mm;
pub mod mount;
pub mod mqueue;
pub mod pipe;
pub mod poll;
pub mod process;
pub mod seccomp;
pub mod signal;
pub mod socket;
pub mod splice;
pub mod time;
pub mod timer;
pub mod timerfd;
pub mod wait;

use crate::error::Result;
use crate::kernel::Task;
use crate::mm::UserAddr;
use syscall_tables::x86_64::nr;
use SyscallReturn::Value;

/// The six argument registers of a syscall (rdi, rsi, rdx, r10, r8, r9 on x86_64).
#[derive(Clone, Copy, Debug, Default)]
pub struct SyscallArgs(pub [u64; 6]);

impl SyscallArgs {
    fn raw(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }
    /// A file descriptor: the low 32 bits as Linux reads `int fd`.
    pub fn fd(&self, i: usize) -> i32 {
        self.raw(i) as i32
    }
    pub fn i32(&self, i: usize) -> i32 {
        self.raw(i) as i32
    }
    pub fn u32(&self, i: usize) -> u32 {
        self.raw(i) as u32
    }
    pub fn i64(&self, i: usize) -> i64 {
        self.raw(i) as i64
    }
    pub fn u64(&self, i: usize) -> u64 {
        self.raw(i)
    }
    pub fn usize(&self, i: usize) -> usize {
        self.raw(i) as usize
    }
    pub fn ptr(&self, i: usize) -> UserAddr {
        UserAddr(self.raw(i))
    }
}

/// What a handler did with the task's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallReturn {
    /// Put this value in `rax` and resume after the `syscall` instruction.
    Value(u64),
    /// The handler set all registers itself (`execve`, `rt_sigreturn`): leave them.
    KeepRegs,
    /// The task is gone (`exit`, `exit_group`): do not resume it.
    Exit,
}

/// Run syscall `nr` for `task`. Unknown and unimplemented numbers give `ENOSYS`; the
/// caller logs them once by name.
pub fn dispatch(task: &mut Task, nr: u64, a: &SyscallArgs) -> Result<SyscallReturn> {
    let t = task;
    let v = match nr {
        // files
        nr::READ => file::sys_read(t, a.fd(0), a.ptr(1), a.usize(2)),
        nr::WRITE => file::sys_write(t, a.fd(0), a.ptr(1), a.usize(2)),
        nr::OPEN => fs::sys_open(t, a.ptr(0), a.i32(1), a.u32(2)),
        nr::CLOSE => file::sys_close(t, a.fd(0)),
        nr::STAT => fs::sys_stat(t, a.ptr(0), a.ptr(1)),
        nr::FSTAT => file::sys_fstat(t, a.fd(0), a.ptr(1)),
        nr::LSTAT => fs::sys_lstat(t, a.ptr(0), a.ptr(1)),
        nr::LSEEK => file::sys_lseek(t, a.fd(0), a.i64(1), a.i32(2)),
        nr::IOCTL => file::sys_ioctl(t, a.fd(0), a.u32(1), a.ptr(2)),
        nr::PREAD64 => file::sys_pread64(t, a.fd(0), a.ptr(1), a.usize(2), a.i64(3)),
        nr::PWRITE64 => file::sys_pwrite64(t, a.fd(0), a.ptr(1), a.usize(2), a.i64(3)),
        nr::READV => file::sys_readv(t, a.fd(0), a.ptr(1), a.i32(2)),
        nr::WRITEV => file::sys_writev(t, a.fd(0), a.ptr(1), a.i32(2)),
        nr::ACCESS => fs::sys_access(t, a.ptr(0), a.i32(1)),
        nr::DUP => file::sys_dup(t, a.fd(0)),
        nr::DUP2 => file::sys_dup2(t, a.fd(0), a.fd(1)),
        nr::FCNTL => file::sys_fcntl(t, a.fd(0), a.i32(1), a.u64(2)),
        nr::MEMFD_CREATE => file::sys_memfd_create(t, a.ptr(0), a.u32(1)),
        nr::TRUNCATE => fs::sys_truncate(t, a.ptr(0), a.i64(1)),
        nr::FTRUNCATE => file::sys_ftruncate(t, a.fd(0), a.i64(1)),
        nr::GETDENTS => file::sys_getdents(t, a.fd(0), a.ptr(1), a.u32(2)),
        nr::GETCWD => fs::sys_getcwd(t, a.ptr(0), a.usize(1)),
        nr::CHDIR => fs::sys_chdir(t, a.ptr(0)),
        nr::FCHDIR => fs::sys_fchdir(t, a.fd(0)),
        nr::RENAME => fs::sys_rename(t, a.ptr(0), a.ptr(1)),
        nr::MKDIR => fs::sys_mkdir(t, a.ptr(0), a.u32(1)),
        nr::RMDIR => fs::sys_rmdir(t, a.ptr(0)),
        nr::CREAT => fs::sys_creat(t, a.ptr(0), a.u32(1)),
        nr::LINK => fs::sys_link(t, a.ptr(0), a.ptr(1)),
        nr::UNLINK => fs::sys_unlink(t, a.ptr(0)),
        nr::SYMLINK => fs::sys_symlink(t, a.ptr(0), a.ptr(1)),
        nr::READLINK => fs::sys_readlink(t, a.ptr(0), a.ptr(1), a.i32(2)),
        nr::UMASK => fs::sys_umask(t, a.u32(0)),
        nr::STATFS => fs::sys_statfs(t, a.ptr(0), a.ptr(1)),
        nr::FSTATFS => file::sys_fstatfs(t, a.fd(0), a.ptr(1)),
        nr::GETDENTS64 => file::sys_getdents64(t, a.fd(0), a.ptr(1), a.u32(2)),
        nr::OPENAT => fs::sys_openat(t, a.fd(0), a.ptr(1), a.i32(2), a.u32(3)),
        nr::MKDIRAT => fs::sys_mkdirat(t, a.fd(0), a.ptr(1), a.u32(2)),
        nr::NEWFSTATAT => fs::sys_newfstatat(t, a.fd(0), a.ptr(1), a.ptr(2), a.i32(3)),
        nr::UNLINKAT => fs::sys_unlinkat(t, a.fd(0), a.ptr(1), a.i32(2)),
        nr::RENAMEAT => fs::sys_renameat(t, a.fd(0), a.ptr(1), a.fd(2), a.ptr(3)),
        nr::LINKAT => fs::sys_linkat(t, a.fd(0), a.ptr(1), a.fd(2), a.ptr(3), a.i32(4)),
        nr::SYMLINKAT => fs::sys_symlinkat(t, a.ptr(0), a.fd(1), a.ptr(2)),
        nr::READLINKAT => fs::sys_readlinkat(t, a.fd(0), a.ptr(1), a.ptr(2), a.i32(3)),
        nr::FACCESSAT => fs::sys_faccessat(t, a.fd(0), a.ptr(1), a.i32(2)),
        nr::DUP3 => file::sys_dup3(t, a.fd(0), a.fd(1), a.i32(2)),
        // x86_64 passes the whole offset in pos_l; pos_h is unused.
        nr::PREADV => file::sys_preadv(t, a.fd(0), a.ptr(1), a.i32(2), a.i64(3)),
        nr::PWRITEV => file::sys_pwritev(t, a.fd(0), a.ptr(1), a.i32(2), a.i64(3)),
        nr::RENAMEAT2 => fs::sys_renameat2(t, a.fd(0), a.ptr(1), a.fd(2), a.ptr(3), a.u32(4)),
        nr::PREADV2 => file::sys_preadv2(t, a.fd(0), a.ptr(1), a.i32(2), a.i64(3), a.i32(5)),
        nr::PWRITEV2 => file::sys_pwritev2(t, a.fd(0), a.ptr(1), a.i32(2), a.i64(3), a.i32(5)),
        nr::STATX => fs::sys_statx(t, a.fd(0), a.ptr(1), a.i32(2), a.u32(3), a.ptr(4)),
        nr::CLOSE_RANGE => file::sys_close_range(t, a.u32(0), a.u32(1), a.u32(2)),
        nr::OPENAT2 => fs::sys_openat2(t, a.fd(0), a.ptr(1), a.ptr(2), a.usize(3)),
        nr::FACCESSAT2 => fs::sys_faccessat2(t, a.fd(0), a.ptr(1), a.i32(2), a.i32(3)),
        nr::EXECVE => return exec::sys_execve(t, a.ptr(0), a.ptr(1), a.ptr(2)),
        nr::EXECVEAT => {
            return exec::sys_execveat(t, a.fd(0), a.ptr(1), a.ptr(2), a.ptr(3), a.i32(4))
        }

        nr::CHMOD => fs::sys_chmod(t, a.ptr(0), a.u32(1)),
        nr::FCHMOD => fs::sys_fchmod(t, a.fd(0), a.u32(1)),
        nr::FCHMODAT => fs::sys_fchmodat(t, a.fd(0), a.ptr(1), a.u32(2)),
        nr::FCHMODAT2 => fs::sys_fchmodat2(t, a.fd(0), a.ptr(1), a.u32(2), a.i32(3)),

        // filesystems (overlay work)
        nr::CHOWN => fs_extra::sys_chown(t, a.ptr(0), a.u32(1), a.u32(2)),
        nr::FCHOWN => fs_extra::sys_fchown(t, a.fd(0), a.u32(1), a.u32(2)),
        nr::LCHOWN => fs_extra::sys_lchown(t, a.ptr(0), a.u32(1), a.u32(2)),
        nr::FCHOWNAT => fs_extra::sys_fchownat(t, a.fd(0), a.ptr(1), a.u32(2), a.u32(3), a.i32(4)),
        nr::UTIME => fs_extra::sys_utime(t, a.ptr(0), a.ptr(1)),
        nr::UTIMES => fs_extra::sys_utimes(t, a.ptr(0), a.ptr(1)),
        nr::FUTIMESAT => fs_extra::sys_futimesat(t, a.fd(0), a.ptr(1), a.ptr(2)),
        nr::UTIMENSAT => fs_extra::sys_utimensat(t, a.fd(0), a.ptr(1), a.ptr(2), a.i32(3)),
        nr::MKNOD => fs_extra::sys_mknod(t, a.ptr(0), a.u32(1), a.u32(2)),
        nr::MKNODAT => fs_extra::sys_mknodat(t, a.fd(0), a.ptr(1), a.u32(2), a.u32(3)),
        nr::FALLOCATE => fs_extra::sys_fallocate(t, a.fd(0), a.i32(1), a.i64(2), a.i64(3)),
        nr::FSYNC => fs_extra::sys_fsync(t, a.fd(0)),
        nr::FDATASYNC => fs_extra::sys_fdatasync(t, a.fd(0)),
        nr::SYNC => fs_extra::sys_sync(t),
        nr::SYNCFS => fs_extra::sys_syncfs(t, a.fd(0)),
        nr::SYNC_FILE_RANGE => {
            fs_extra::sys_sync_file_range(t, a.fd(0), a.i64(1), a.i64(2), a.u32(3))
        }
        nr::FADVISE64 => fs_extra::sys_fadvise64(t, a.fd(0), a.i64(1), a.i64(2), a.i32(3)),
        nr::READAHEAD => fs_extra::sys_readahead(t, a.fd(0), a.i64(1), a.usize(2)),
        nr::SENDFILE => fs_extra::sys_sendfile(t, a.fd(0), a.fd(1), a.ptr(2), a.usize(3)),
        nr::COPY_FILE_RANGE => fs_extra::sys_copy_file_range(
            t,
            a.fd(0),
            a.ptr(1),
            a.fd(2),
            a.ptr(3),
            a.usize(4),
            a.u32(5),
        ),
        nr::GETXATTR => fs_extra::sys_getxattr(t, a.ptr(0), a.ptr(1), a.ptr(2), a.usize(3), true),
        nr::LGETXATTR => fs_extra::sys_getxattr(t, a.ptr(0), a.ptr(1), a.ptr(2), a.usize(3), false),
        nr::FGETXATTR => fs_extra::sys_fgetxattr(t, a.fd(0), a.ptr(1), a.ptr(2), a.usize(3)),
        nr::LISTXATTR => fs_extra::sys_listxattr(t, a.ptr(0), a.ptr(1), a.usize(2), true),
        nr::LLISTXATTR => fs_extra::sys_listxattr(t, a.ptr(0), a.ptr(1), a.usize(2), false),
        nr::FLISTXATTR => fs_extra::sys_flistxattr(t, a.fd(0), a.ptr(1), a.usize(2)),
        nr::SETXATTR => {
            fs_extra::sys_setxattr(t, a.ptr(0), a.ptr(1), a.ptr(2), a.usize(3), a.i32(4), true)
        }
        nr::LSETXATTR => {
            fs_extra::sys_setxattr(t, a.ptr(0), a.ptr(1), a.ptr(2), a.usize(3), a.i32(4), false)
        }
        nr::FSETXATTR => {
            fs_extra::sys_fsetxattr(t, a.fd(0), a.ptr(1), a.ptr(2), a.usize(3), a.i32(4))
        }
        nr::REMOVEXATTR => fs_extra::sys_removexattr(t, a.ptr(0), a.ptr(1), true),
        nr::LREMOVEXATTR => fs_extra::sys_removexattr(t, a.ptr(0), a.ptr(1), false),
        nr::FREMOVEXATTR => fs_extra::sys_fremovexattr(t, a.fd(0), a.ptr(1)),
        nr::NAME_TO_HANDLE_AT => {
            fs_extra::sys_name_to_handle_at(t, a.fd(0), a.ptr(1), a.ptr(2), a.ptr(3), a.i32(4))
        }
        nr::CHROOT => fs_extra::sys_chroot(t, a.ptr(0)),
        // end filesystems (overlay work)
        nr::FLOCK => lock::sys_flock(t, a.fd(0), a.i32(1)),

        // memory
        nr::MMAP => mm::sys_mmap(t, a.u64(0), a.u64(1), a.i32(2), a.i32(3), a.fd(4), a.u64(5)),
        nr::MUNMAP => mm::sys_munmap(t, a.u64(0), a.u64(1)),
        nr::MPROTECT => mm::sys_mprotect(t, a.u64(0), a.u64(1), a.i32(2)),
        nr::BRK => mm::sys_brk(t, a.u64(0)),
        nr::MREMAP => mm::sys_mremap(t, a.u64(0), a.u64(1), a.u64(2), a.i32(3), a.u64(4)),
        nr::MADVISE => mm::sys_madvise(t, a.u64(0), a.u64(1), a.i32(2)),
        nr::MINCORE => mm::sys_mincore(t, a.u64(0), a.u64(1), a.ptr(2)),
        nr::MSYNC => mm::sys_msync(t, a.u64(0), a.u64(1), a.i32(2)),

        // process and identity
        nr::EXIT => return process::sys_exit(t, a.i32(0)),
        nr::EXIT_GROUP => return process::sys_exit_group(t, a.i32(0)),
        nr::FORK => wait::sys_fork(t),
        nr::VFORK => wait::sys_vfork(t),
        nr::CLONE => wait::sys_clone(t, a.u64(0), a.u64(1), a.ptr(2), a.ptr(3), a.u64(4)),
        nr::CLONE3 => wait::sys_clone3(t, a.ptr(0), a.usize(1)),
        nr::WAIT4 => wait::sys_wait4(t, a.i32(0), a.ptr(1), a.i32(2), a.ptr(3)),
        nr::WAITID => wait::sys_waitid(t, a.i32(0), a.i32(1), a.ptr(2), a.i32(3), a.ptr(4)),
        nr::SETPGID => wait::sys_setpgid(t, a.i32(0), a.i32(1)),
        nr::GETPGID => wait::sys_getpgid(t, a.i32(0)),
        nr::GETPGRP => wait::sys_getpgrp(t),
        nr::SETSID => wait::sys_setsid(t),
        nr::GETSID => wait::sys_getsid(t, a.i32(0)),
        nr::GETPID => process::sys_getpid(t),
        nr::GETTID => process::sys_gettid(t),
        nr::GETPPID => process::sys_getppid(t),
        nr::GETUID => process::sys_getuid(t),
        nr::GETEUID => process::sys_geteuid(t),
        nr::GETGID => process::sys_getgid(t),
        nr::GETEGID => process::sys_getegid(t),
        nr::GETRESUID => process::sys_getresuid(t, a.ptr(0), a.ptr(1), a.ptr(2)),
        nr::GETRESGID => process::sys_getresgid(t, a.ptr(0), a.ptr(1), a.ptr(2)),
        nr::SETUID => process::sys_setuid(t, a.u32(0)),
        nr::SETGID => process::sys_setgid(t, a.u32(0)),
        nr::SETREUID => process::sys_setreuid(t, a.u32(0), a.u32(1)),
        nr::SETREGID => process::sys_setregid(t, a.u32(0), a.u32(1)),
        nr::GETPRIORITY => process::sys_getpriority(t, a.i32(0), a.i32(1)),
        nr::SETPRIORITY => process::sys_setpriority(t, a.i32(0), a.i32(1), a.i32(2)),
        nr::SETFSUID => process::sys_setfsuid(t, a.u32(0)),
        nr::SETFSGID => process::sys_setfsgid(t, a.u32(0)),
        nr::SETRESUID => process::sys_setresuid(t, a.u32(0), a.u32(1), a.u32(2)),
        nr::SETRESGID => process::sys_setresgid(t, a.u32(0), a.u32(1), a.u32(2)),
        nr::GETGROUPS => process::sys_getgroups(t, a.i32(0), a.ptr(1)),
        nr::SETGROUPS => process::sys_setgroups(t, a.usize(0), a.ptr(1)),
        nr::UNAME => process::sys_uname(t, a.ptr(0)),
        nr::CAPGET => process::sys_capget(t, a.ptr(0), a.ptr(1)),
        nr::CAPSET => process::sys_capset(t, a.ptr(0), a.ptr(1)),
        nr::SETHOSTNAME => process::sys_sethostname(t, a.ptr(0), a.usize(1)),
        nr::SETDOMAINNAME => process::sys_setdomainname(t, a.ptr(0), a.usize(1)),
        nr::ARCH_PRCTL => process::sys_arch_prctl(t, a.i32(0), a.u64(1)),
        nr::SET_TID_ADDRESS => process::sys_set_tid_address(t, a.ptr(0)),
        nr::SET_ROBUST_LIST => process::sys_set_robust_list(t, a.ptr(0), a.usize(1)),
        nr::GET_ROBUST_LIST => process::sys_get_robust_list(t, a.i32(0), a.ptr(1), a.ptr(2)),
        nr::PRLIMIT64 => process::sys_prlimit64(t, a.i32(0), a.u32(1), a.ptr(2), a.ptr(3)),
        nr::GETRLIMIT => process::sys_getrlimit(t, a.u32(0), a.ptr(1)),
        nr::SETRLIMIT => process::sys_setrlimit(t, a.u32(0), a.ptr(1)),
        nr::PRCTL => process::sys_prctl(t, a.i32(0), a.u64(1), a.u64(2)),
        nr::SECCOMP => seccomp::sys_seccomp(t, a.u32(0), a.u32(1), a.ptr(2)),

        nr::FUTEX => futex::sys_futex(
            t,
            a.ptr(0),
            a.i32(1),
            a.u32(2),
            a.ptr(3),
            a.ptr(4),
            a.u32(5),
        ),

        // time, randomness, scheduling
        nr::CLOCK_GETTIME => time::sys_clock_gettime(t, a.i32(0), a.ptr(1)),
        nr::CLOCK_GETRES => time::sys_clock_getres(t, a.i32(0), a.ptr(1)),
        nr::GETTIMEOFDAY => time::sys_gettimeofday(t, a.ptr(0), a.ptr(1)),
        nr::TIME => time::sys_time(t, a.ptr(0)),
        nr::NANOSLEEP => time::sys_nanosleep(t, a.ptr(0), a.ptr(1)),
        nr::CLOCK_NANOSLEEP => time::sys_clock_nanosleep(t, a.i32(0), a.i32(1), a.ptr(2), a.ptr(3)),
        nr::GETRANDOM => time::sys_getrandom(t, a.ptr(0), a.usize(1), a.u32(2)),
        nr::ALARM => timer::sys_alarm(t, a.u32(0)),
        nr::GETITIMER => timer::sys_getitimer(t, a.i32(0), a.ptr(1)),
        nr::SETITIMER => timer::sys_setitimer(t, a.i32(0), a.ptr(1), a.ptr(2)),
        nr::TIMER_CREATE => timer::sys_timer_create(t, a.i32(0), a.ptr(1), a.ptr(2)),
        nr::TIMER_SETTIME => timer::sys_timer_settime(t, a.i32(0), a.i32(1), a.ptr(2), a.ptr(3)),
        nr::TIMER_GETTIME => timer::sys_timer_gettime(t, a.i32(0), a.ptr(1)),
        nr::TIMER_GETOVERRUN => timer::sys_timer_getoverrun(t, a.i32(0)),
        nr::TIMER_DELETE => timer::sys_timer_delete(t, a.i32(0)),
        nr::TIMES => timer::sys_times(t, a.ptr(0)),
        nr::GETRUSAGE => timer::sys_getrusage(t, a.i32(0), a.ptr(1)),
        nr::SCHED_YIELD => time::sys_sched_yield(t),
        nr::SCHED_GETSCHEDULER => time::sys_sched_getscheduler(t, a.i32(0)),
        nr::SCHED_RR_GET_INTERVAL => time::sys_sched_rr_get_interval(t, a.i32(0), a.ptr(1)),
        nr::SCHED_SETSCHEDULER => time::sys_sched_setscheduler(t, a.i32(0), a.i32(1), a.ptr(2)),
        nr::SCHED_GETPARAM => time::sys_sched_getparam(t, a.i32(0), a.ptr(1)),
        nr::SCHED_SETPARAM => time::sys_sched_setparam(t, a.i32(0), a.ptr(1)),
        nr::SCHED_GET_PRIORITY_MAX => time::sys_sched_get_priority_max(a.i32(0)),
        nr::SCHED_GET_PRIORITY_MIN => time::sys_sched_get_priority_min(a.i32(0)),
        nr::CLOCK_SETTIME => time::sys_clock_settime(t, a.i32(0), a.ptr(1)),
        nr::SCHED_GETAFFINITY => time::sys_sched_getaffinity(t, a.i32(0), a.usize(1), a.ptr(2)),
        nr::SCHED_SETAFFINITY => time::sys_sched_setaffinity(t, a.i32(0), a.usize(1), a.ptr(2)),
        nr::GETCPU => time::sys_getcpu(t, a.ptr(0), a.ptr(1)),
        nr::SYSINFO => time::sys_sysinfo(t, a.ptr(0)),

        // signals (bookkeeping)
        nr::RT_SIGACTION => signal::sys_rt_sigaction(t, a.i32(0), a.ptr(1), a.ptr(2), a.usize(3)),
        nr::RT_SIGPROCMASK => {
            signal::sys_rt_sigprocmask(t, a.i32(0), a.ptr(1), a.ptr(2), a.usize(3))
        }
        nr::RT_SIGRETURN => return signal::sys_rt_sigreturn(t),
        nr::RT_SIGSUSPEND => signal::sys_rt_sigsuspend(t, a.ptr(0), a.usize(1)),
        nr::RT_SIGTIMEDWAIT => {
            signal::sys_rt_sigtimedwait(t, a.ptr(0), a.ptr(1), a.ptr(2), a.usize(3))
        }
        nr::RT_SIGQUEUEINFO => signal::sys_rt_sigqueueinfo(t, a.i32(0), a.i32(1), a.ptr(2)),
        nr::RT_TGSIGQUEUEINFO => {
            signal::sys_rt_tgsigqueueinfo(t, a.i32(0), a.i32(1), a.i32(2), a.ptr(3))
        }
        nr::PAUSE => signal::sys_pause(t),
        nr::SIGNALFD => signal::sys_signalfd(t, a.fd(0), a.ptr(1), a.usize(2)),
        nr::SIGNALFD4 => signal::sys_signalfd4(t, a.fd(0), a.ptr(1), a.usize(2), a.i32(3)),
        nr::KILL => signal::sys_kill(t, a.i32(0), a.i32(1)),
        nr::TKILL => signal::sys_tkill(t, a.i32(0), a.i32(1)),
        nr::TGKILL => signal::sys_tgkill(t, a.i32(0), a.i32(1), a.i32(2)),
        nr::RT_SIGPENDING => signal::sys_rt_sigpending(t, a.ptr(0), a.usize(1)),
        nr::SIGALTSTACK => signal::sys_sigaltstack(t, a.ptr(0), a.ptr(1)),

        // pipes and polling
        nr::PIPE => pipe::sys_pipe(t, a.ptr(0)),
        nr::PIPE2 => pipe::sys_pipe2(t, a.ptr(0), a.i32(1)),
        nr::EVENTFD => pipe::sys_eventfd(t, a.u32(0)),
        nr::MQ_OPEN => mqueue::sys_mq_open(t, a.ptr(0), a.i32(1), a.u32(2), a.ptr(3)),
        nr::MQ_UNLINK => mqueue::sys_mq_unlink(t, a.ptr(0)),
        nr::MQ_TIMEDSEND => {
            mqueue::sys_mq_timedsend(t, a.fd(0), a.ptr(1), a.usize(2), a.u32(3), a.ptr(4))
        }
        nr::MQ_TIMEDRECEIVE => {
            mqueue::sys_mq_timedreceive(t, a.fd(0), a.ptr(1), a.usize(2), a.ptr(3), a.ptr(4))
        }
        nr::MQ_NOTIFY => mqueue::sys_mq_notify(t, a.fd(0), a.ptr(1)),
        nr::MQ_GETSETATTR => mqueue::sys_mq_getsetattr(t, a.fd(0), a.ptr(1), a.ptr(2)),
        nr::EVENTFD2 => pipe::sys_eventfd2(t, a.u32(0), a.i32(1)),
        nr::POLL => poll::sys_poll(t, a.ptr(0), a.u32(1), a.i32(2)),
        nr::PPOLL => poll::sys_ppoll(t, a.ptr(0), a.u32(1), a.ptr(2), a.ptr(3), a.usize(4)),
        nr::SELECT => poll::sys_select(t, a.i32(0), a.ptr(1), a.ptr(2), a.ptr(3), a.ptr(4)),
        nr::PSELECT6 => {
            let sets = [a.ptr(1), a.ptr(2), a.ptr(3)];
            poll::sys_pselect6(t, a.i32(0), sets, a.ptr(4), a.ptr(5))
        }
        nr::EPOLL_CREATE => poll::sys_epoll_create(t, a.i32(0)),
        nr::EPOLL_CREATE1 => poll::sys_epoll_create1(t, a.i32(0)),
        nr::EPOLL_CTL => poll::sys_epoll_ctl(t, a.fd(0), a.i32(1), a.fd(2), a.ptr(3)),
        nr::EPOLL_WAIT => poll::sys_epoll_wait(t, a.fd(0), a.ptr(1), a.i32(2), a.i32(3)),
        nr::EPOLL_PWAIT => poll::sys_epoll_pwait(
            t,
            a.fd(0),
            a.ptr(1),
            a.i32(2),
            a.i32(3),
            a.ptr(4),
            a.usize(5),
        ),
        nr::EPOLL_PWAIT2 => poll::sys_epoll_pwait2(
            t,
            a.fd(0),
            a.ptr(1),
            a.i32(2),
            a.ptr(3),
            a.ptr(4),
            a.usize(5),
        ),
        nr::TIMERFD_CREATE => timerfd::sys_timerfd_create(t, a.i32(0), a.i32(1)),
        nr::TIMERFD_SETTIME => {
            timerfd::sys_timerfd_settime(t, a.fd(0), a.i32(1), a.ptr(2), a.ptr(3))
        }
        nr::TIMERFD_GETTIME => timerfd::sys_timerfd_gettime(t, a.fd(0), a.ptr(1)),
        nr::SPLICE => splice::sys_splice(
            t,
            a.fd(0),
            a.ptr(1),
            a.fd(2),
            a.ptr(3),
            a.usize(4),
            a.u32(5),
        ),
        nr::TEE => splice::sys_tee(t, a.fd(0), a.fd(1), a.usize(2), a.u32(3)),
        nr::VMSPLICE => splice::sys_vmsplice(t, a.fd(0), a.ptr(1), a.usize(2), a.u32(3)),
        nr::MOUNT => mount::sys_mount(t, a.ptr(0), a.ptr(1), a.ptr(2), a.u64(3), a.ptr(4)),
        nr::UMOUNT2 => mount::sys_umount2(t, a.ptr(0), a.i32(1)),
        nr::INOTIFY_INIT => inotify::sys_inotify_init(t),
        nr::INOTIFY_INIT1 => inotify::sys_inotify_init1(t, a.i32(0)),
        nr::INOTIFY_ADD_WATCH => inotify::sys_inotify_add_watch(t, a.fd(0), a.ptr(1), a.u32(2)),
        nr::INOTIFY_RM_WATCH => inotify::sys_inotify_rm_watch(t, a.fd(0), a.i32(1)),

        // sockets
        nr::SOCKET => socket::sys_socket(t, a.i32(0), a.i32(1), a.i32(2)),
        nr::SOCKETPAIR => socket::sys_socketpair(t, a.i32(0), a.i32(1), a.i32(2), a.ptr(3)),
        nr::BIND => socket::sys_bind(t, a.fd(0), a.ptr(1), a.u32(2)),
        nr::LISTEN => socket::sys_listen(t, a.fd(0), a.i32(1)),
        nr::ACCEPT => socket::sys_accept(t, a.fd(0), a.ptr(1), a.ptr(2)),
        nr::ACCEPT4 => socket::sys_accept4(t, a.fd(0), a.ptr(1), a.ptr(2), a.i32(3)),
        nr::CONNECT => socket::sys_connect(t, a.fd(0), a.ptr(1), a.u32(2)),
        nr::SENDTO => socket::sys_sendto(
            t,
            a.fd(0),
            a.ptr(1),
            a.usize(2),
            a.i32(3),
            a.ptr(4),
            a.u32(5),
        ),
        nr::RECVFROM => socket::sys_recvfrom(
            t,
            a.fd(0),
            a.ptr(1),
            a.usize(2),
            a.i32(3),
            a.ptr(4),
            a.ptr(5),
        ),
        nr::SENDMSG => socket::sys_sendmsg(t, a.fd(0), a.ptr(1), a.i32(2)),
        nr::RECVMSG => socket::sys_recvmsg(t, a.fd(0), a.ptr(1), a.i32(2)),
        nr::SENDMMSG => socket::sys_sendmmsg(t, a.fd(0), a.ptr(1), a.u32(2), a.i32(3)),
        nr::RECVMMSG => socket::sys_recvmmsg(t, a.fd(0), a.ptr(1), a.u32(2), a.i32(3), a.ptr(4)),
        nr::SHUTDOWN => socket::sys_shutdown(t, a.fd(0), a.i32(1)),
        nr::GETSOCKNAME => socket::sys_getsockname(t, a.fd(0), a.ptr(1), a.ptr(2)),
        nr::GETPEERNAME => socket::sys_getpeername(t, a.fd(0), a.ptr(1), a.ptr(2)),
        nr::GETSOCKOPT => {
            socket::sys_getsockopt(t, a.fd(0), a.i32(1), a.i32(2), a.ptr(3), a.ptr(4))
        }
        nr::SETSOCKOPT => {
            socket::sys_setsockopt(t, a.fd(0), a.i32(1), a.i32(2), a.ptr(3), a.u32(4))
        }

        _ => {
            t.kernel.log_unimplemented(nr);
            Err(crate::errno!(ENOSYS))
        }
    };
    v.map(Value)
}
