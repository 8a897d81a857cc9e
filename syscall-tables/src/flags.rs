//! Named values of syscall arguments, for `--strace`. Values are x86_64 Linux's (most are
//! the same on every architecture; an aarch64 table can share those that are).

use crate::types::FlagSet;

const fn bits(what: &'static str, bits: &'static [(&'static str, u64)]) -> FlagSet {
    FlagSet {
        what,
        field_mask: 0,
        field: &[],
        field_last: false,
        bits,
    }
}

const fn values(what: &'static str, field: &'static [(&'static str, u64)]) -> FlagSet {
    FlagSet {
        what,
        field_mask: u64::MAX,
        field,
        field_last: false,
        bits: &[],
    }
}

/// Signal names by number; index = signal. Shared by `ArgKind::Signal` and clone flags.
pub const SIGNAL_NAMES: &[(&str, u64)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

pub static OPEN: FlagSet = FlagSet {
    what: "open flags",
    field_mask: 0o3,
    field: &[("O_RDONLY", 0), ("O_WRONLY", 1), ("O_RDWR", 2)],
    field_last: false,
    bits: &[
        ("O_CREAT", 0o100),
        ("O_EXCL", 0o200),
        ("O_NOCTTY", 0o400),
        ("O_TRUNC", 0o1000),
        ("O_APPEND", 0o2000),
        ("O_NONBLOCK", 0o4000),
        // O_SYNC includes O_DSYNC's bit, so it is tried first.
        ("O_SYNC", 0o4010000),
        ("O_DSYNC", 0o10000),
        ("O_ASYNC", 0o20000),
        ("O_DIRECT", 0o40000),
        ("O_LARGEFILE", 0o100000),
        // O_TMPFILE includes O_DIRECTORY's bit.
        ("O_TMPFILE", 0o20200000),
        ("O_DIRECTORY", 0o200000),
        ("O_NOFOLLOW", 0o400000),
        ("O_NOATIME", 0o1000000),
        ("O_CLOEXEC", 0o2000000),
        ("O_PATH", 0o10000000),
    ],
};

pub static AT: FlagSet = bits(
    "at flags",
    &[
        ("AT_SYMLINK_NOFOLLOW", 0x100),
        ("AT_REMOVEDIR", 0x200),
        ("AT_SYMLINK_FOLLOW", 0x400),
        ("AT_NO_AUTOMOUNT", 0x800),
        ("AT_EMPTY_PATH", 0x1000),
        ("AT_STATX_FORCE_SYNC", 0x2000),
        ("AT_STATX_DONT_SYNC", 0x4000),
        ("AT_RECURSIVE", 0x8000),
    ],
);

/// `faccessat2` reuses 0x200 as `AT_EACCESS`.
pub static FACCESSAT: FlagSet = bits(
    "faccessat flags",
    &[
        ("AT_SYMLINK_NOFOLLOW", 0x100),
        ("AT_EACCESS", 0x200),
        ("AT_EMPTY_PATH", 0x1000),
    ],
);

pub static ACCESS_MODE: FlagSet = bits(
    "access mode",
    &[("F_OK", 0), ("R_OK", 4), ("W_OK", 2), ("X_OK", 1)],
);

pub static PROT: FlagSet = bits(
    "mmap prot",
    &[
        ("PROT_NONE", 0),
        ("PROT_READ", 0x1),
        ("PROT_WRITE", 0x2),
        ("PROT_EXEC", 0x4),
        ("PROT_SEM", 0x8),
        ("PROT_GROWSDOWN", 0x0100_0000),
        ("PROT_GROWSUP", 0x0200_0000),
    ],
);

pub static MMAP: FlagSet = FlagSet {
    what: "mmap flags",
    field_mask: 0x3,
    field: &[
        ("MAP_SHARED", 0x1),
        ("MAP_PRIVATE", 0x2),
        ("MAP_SHARED_VALIDATE", 0x3),
    ],
    field_last: false,
    bits: &[
        ("MAP_FIXED", 0x10),
        ("MAP_ANONYMOUS", 0x20),
        ("MAP_32BIT", 0x40),
        ("MAP_GROWSDOWN", 0x100),
        ("MAP_DENYWRITE", 0x800),
        ("MAP_EXECUTABLE", 0x1000),
        ("MAP_LOCKED", 0x2000),
        ("MAP_NORESERVE", 0x4000),
        ("MAP_POPULATE", 0x8000),
        ("MAP_NONBLOCK", 0x10000),
        ("MAP_STACK", 0x20000),
        ("MAP_HUGETLB", 0x40000),
        ("MAP_SYNC", 0x80000),
        ("MAP_FIXED_NOREPLACE", 0x10_0000),
        ("MAP_UNINITIALIZED", 0x400_0000),
    ],
};

pub static MREMAP: FlagSet = bits(
    "mremap flags",
    &[
        ("MREMAP_MAYMOVE", 1),
        ("MREMAP_FIXED", 2),
        ("MREMAP_DONTUNMAP", 4),
    ],
);

pub static MSYNC: FlagSet = bits(
    "msync flags",
    &[("MS_ASYNC", 1), ("MS_INVALIDATE", 2), ("MS_SYNC", 4)],
);

pub static MADVISE: FlagSet = values(
    "madvise advice",
    &[
        ("MADV_NORMAL", 0),
        ("MADV_RANDOM", 1),
        ("MADV_SEQUENTIAL", 2),
        ("MADV_WILLNEED", 3),
        ("MADV_DONTNEED", 4),
        ("MADV_FREE", 8),
        ("MADV_REMOVE", 9),
        ("MADV_DONTFORK", 10),
        ("MADV_DOFORK", 11),
        ("MADV_MERGEABLE", 12),
        ("MADV_UNMERGEABLE", 13),
        ("MADV_HUGEPAGE", 14),
        ("MADV_NOHUGEPAGE", 15),
        ("MADV_DONTDUMP", 16),
        ("MADV_DODUMP", 17),
        ("MADV_WIPEONFORK", 18),
        ("MADV_KEEPONFORK", 19),
        ("MADV_COLD", 20),
        ("MADV_PAGEOUT", 21),
        ("MADV_POPULATE_READ", 22),
        ("MADV_POPULATE_WRITE", 23),
        ("MADV_DONTNEED_LOCKED", 24),
        ("MADV_COLLAPSE", 25),
        ("MADV_HWPOISON", 100),
        ("MADV_SOFT_OFFLINE", 101),
        ("MADV_GUARD_INSTALL", 102),
        ("MADV_GUARD_REMOVE", 103),
    ],
);

pub static MLOCKALL: FlagSet = bits(
    "mlockall flags",
    &[("MCL_CURRENT", 1), ("MCL_FUTURE", 2), ("MCL_ONFAULT", 4)],
);

pub static CLONE: FlagSet = FlagSet {
    what: "clone flags",
    // The low byte is the signal sent to the parent when the child exits.
    field_mask: 0xff,
    field: SIGNAL_NAMES,
    field_last: true,
    bits: &[
        ("CLONE_VM", 0x100),
        ("CLONE_FS", 0x200),
        ("CLONE_FILES", 0x400),
        ("CLONE_SIGHAND", 0x800),
        ("CLONE_PIDFD", 0x1000),
        ("CLONE_PTRACE", 0x2000),
        ("CLONE_VFORK", 0x4000),
        ("CLONE_PARENT", 0x8000),
        ("CLONE_THREAD", 0x1_0000),
        ("CLONE_NEWNS", 0x2_0000),
        ("CLONE_SYSVSEM", 0x4_0000),
        ("CLONE_SETTLS", 0x8_0000),
        ("CLONE_PARENT_SETTID", 0x10_0000),
        ("CLONE_CHILD_CLEARTID", 0x20_0000),
        ("CLONE_DETACHED", 0x40_0000),
        ("CLONE_UNTRACED", 0x80_0000),
        ("CLONE_CHILD_SETTID", 0x100_0000),
        ("CLONE_NEWCGROUP", 0x200_0000),
        ("CLONE_NEWUTS", 0x400_0000),
        ("CLONE_NEWIPC", 0x800_0000),
        ("CLONE_NEWUSER", 0x1000_0000),
        ("CLONE_NEWPID", 0x2000_0000),
        ("CLONE_NEWNET", 0x4000_0000),
        ("CLONE_IO", 0x8000_0000),
    ],
};

pub static FCNTL_CMD: FlagSet = values(
    "fcntl command",
    &[
        ("F_DUPFD", 0),
        ("F_GETFD", 1),
        ("F_SETFD", 2),
        ("F_GETFL", 3),
        ("F_SETFL", 4),
        ("F_GETLK", 5),
        ("F_SETLK", 6),
        ("F_SETLKW", 7),
        ("F_SETOWN", 8),
        ("F_GETOWN", 9),
        ("F_SETSIG", 10),
        ("F_GETSIG", 11),
        ("F_SETOWN_EX", 15),
        ("F_GETOWN_EX", 16),
        ("F_GETOWNER_UIDS", 17),
        ("F_OFD_GETLK", 36),
        ("F_OFD_SETLK", 37),
        ("F_OFD_SETLKW", 38),
        ("F_SETLEASE", 1024),
        ("F_GETLEASE", 1025),
        ("F_NOTIFY", 1026),
        ("F_DUPFD_QUERY", 1027),
        ("F_CREATED_QUERY", 1028),
        ("F_DUPFD_CLOEXEC", 1030),
        ("F_SETPIPE_SZ", 1031),
        ("F_GETPIPE_SZ", 1032),
        ("F_ADD_SEALS", 1033),
        ("F_GET_SEALS", 1034),
        ("F_GET_RW_HINT", 1035),
        ("F_SET_RW_HINT", 1036),
        ("F_GET_FILE_RW_HINT", 1037),
        ("F_SET_FILE_RW_HINT", 1038),
    ],
);

pub static SEEK_WHENCE: FlagSet = values(
    "lseek whence",
    &[
        ("SEEK_SET", 0),
        ("SEEK_CUR", 1),
        ("SEEK_END", 2),
        ("SEEK_DATA", 3),
        ("SEEK_HOLE", 4),
    ],
);

pub static CLOCKS: FlagSet = values(
    "clock id",
    &[
        ("CLOCK_REALTIME", 0),
        ("CLOCK_MONOTONIC", 1),
        ("CLOCK_PROCESS_CPUTIME_ID", 2),
        ("CLOCK_THREAD_CPUTIME_ID", 3),
        ("CLOCK_MONOTONIC_RAW", 4),
        ("CLOCK_REALTIME_COARSE", 5),
        ("CLOCK_MONOTONIC_COARSE", 6),
        ("CLOCK_BOOTTIME", 7),
        ("CLOCK_REALTIME_ALARM", 8),
        ("CLOCK_BOOTTIME_ALARM", 9),
        ("CLOCK_TAI", 11),
    ],
);

pub static TIMER: FlagSet = bits("timer flags", &[("TIMER_ABSTIME", 1)]);

pub static TIMERFD_SETTIME: FlagSet = bits(
    "timerfd_settime flags",
    &[("TFD_TIMER_ABSTIME", 1), ("TFD_TIMER_CANCEL_ON_SET", 2)],
);

pub static ITIMER: FlagSet = values(
    "itimer which",
    &[
        ("ITIMER_REAL", 0),
        ("ITIMER_VIRTUAL", 1),
        ("ITIMER_PROF", 2),
    ],
);

pub static SIGPROCMASK_HOW: FlagSet = values(
    "sigprocmask how",
    &[("SIG_BLOCK", 0), ("SIG_UNBLOCK", 1), ("SIG_SETMASK", 2)],
);

pub static WAIT: FlagSet = bits(
    "wait options",
    &[
        ("WNOHANG", 0x1),
        ("WUNTRACED", 0x2),
        ("WEXITED", 0x4),
        ("WCONTINUED", 0x8),
        ("WNOWAIT", 0x100_0000),
        ("__WNOTHREAD", 0x2000_0000),
        ("__WALL", 0x4000_0000),
        ("__WCLONE", 0x8000_0000),
    ],
);

pub static IDTYPE: FlagSet = values(
    "waitid idtype",
    &[("P_ALL", 0), ("P_PID", 1), ("P_PGID", 2), ("P_PIDFD", 3)],
);

pub static CLOEXEC: FlagSet = bits("close-on-exec flag", &[("O_CLOEXEC", 0o2000000)]);

pub static PIPE2: FlagSet = bits(
    "pipe2 flags",
    &[
        ("O_NONBLOCK", 0o4000),
        ("O_DIRECT", 0o40000),
        ("O_CLOEXEC", 0o2000000),
        ("O_NOTIFICATION_PIPE", 0o200),
    ],
);

/// Shared by eventfd2, signalfd4, timerfd_create, inotify_init1 and epoll_create1, whose
/// `*_NONBLOCK`/`*_CLOEXEC` are `O_NONBLOCK`/`O_CLOEXEC`.
pub static NONBLOCK_CLOEXEC: FlagSet = bits(
    "non-blocking and close-on-exec flags",
    &[("O_NONBLOCK", 0o4000), ("O_CLOEXEC", 0o2000000)],
);

pub static EPOLL_CREATE: FlagSet = bits("epoll_create1 flags", &[("EPOLL_CLOEXEC", 0o2000000)]);

pub static EVENTFD: FlagSet = bits(
    "eventfd flags",
    &[
        ("EFD_SEMAPHORE", 1),
        ("EFD_NONBLOCK", 0o4000),
        ("EFD_CLOEXEC", 0o2000000),
    ],
);

pub static MEMFD: FlagSet = bits(
    "memfd_create flags",
    &[
        ("MFD_CLOEXEC", 0x1),
        ("MFD_ALLOW_SEALING", 0x2),
        ("MFD_HUGETLB", 0x4),
        ("MFD_NOEXEC_SEAL", 0x8),
        ("MFD_EXEC", 0x10),
    ],
);

pub static EPOLL_CTL_OP: FlagSet = values(
    "epoll_ctl op",
    &[
        ("EPOLL_CTL_ADD", 1),
        ("EPOLL_CTL_DEL", 2),
        ("EPOLL_CTL_MOD", 3),
    ],
);

pub static FUTEX_OP: FlagSet = FlagSet {
    what: "futex op",
    field_mask: 0x7f,
    field: &[
        ("FUTEX_WAIT", 0),
        ("FUTEX_WAKE", 1),
        ("FUTEX_FD", 2),
        ("FUTEX_REQUEUE", 3),
        ("FUTEX_CMP_REQUEUE", 4),
        ("FUTEX_WAKE_OP", 5),
        ("FUTEX_LOCK_PI", 6),
        ("FUTEX_UNLOCK_PI", 7),
        ("FUTEX_TRYLOCK_PI", 8),
        ("FUTEX_WAIT_BITSET", 9),
        ("FUTEX_WAKE_BITSET", 10),
        ("FUTEX_WAIT_REQUEUE_PI", 11),
        ("FUTEX_CMP_REQUEUE_PI", 12),
        ("FUTEX_LOCK_PI2", 13),
    ],
    field_last: false,
    bits: &[("FUTEX_PRIVATE_FLAG", 128), ("FUTEX_CLOCK_REALTIME", 256)],
};

pub static ADDRESS_FAMILY: FlagSet = values(
    "address family",
    &[
        ("AF_UNSPEC", 0),
        ("AF_UNIX", 1),
        ("AF_INET", 2),
        ("AF_INET6", 10),
        ("AF_NETLINK", 16),
        ("AF_PACKET", 17),
        ("AF_BLUETOOTH", 31),
        ("AF_ALG", 38),
        ("AF_VSOCK", 40),
        ("AF_XDP", 44),
    ],
);

pub static SOCKET_TYPE: FlagSet = FlagSet {
    what: "socket type",
    field_mask: 0xf,
    field: &[
        ("SOCK_STREAM", 1),
        ("SOCK_DGRAM", 2),
        ("SOCK_RAW", 3),
        ("SOCK_RDM", 4),
        ("SOCK_SEQPACKET", 5),
        ("SOCK_DCCP", 6),
        ("SOCK_PACKET", 10),
    ],
    field_last: false,
    bits: &[("SOCK_NONBLOCK", 0o4000), ("SOCK_CLOEXEC", 0o2000000)],
};

pub static SOCKET_FLAGS: FlagSet = bits(
    "accept4 flags",
    &[("SOCK_NONBLOCK", 0o4000), ("SOCK_CLOEXEC", 0o2000000)],
);

pub static MSG: FlagSet = bits(
    "message flags",
    &[
        ("MSG_OOB", 0x1),
        ("MSG_PEEK", 0x2),
        ("MSG_DONTROUTE", 0x4),
        ("MSG_CTRUNC", 0x8),
        ("MSG_PROXY", 0x10),
        ("MSG_TRUNC", 0x20),
        ("MSG_DONTWAIT", 0x40),
        ("MSG_EOR", 0x80),
        ("MSG_WAITALL", 0x100),
        ("MSG_FIN", 0x200),
        ("MSG_SYN", 0x400),
        ("MSG_CONFIRM", 0x800),
        ("MSG_RST", 0x1000),
        ("MSG_ERRQUEUE", 0x2000),
        ("MSG_NOSIGNAL", 0x4000),
        ("MSG_MORE", 0x8000),
        ("MSG_WAITFORONE", 0x1_0000),
        ("MSG_BATCH", 0x4_0000),
        ("MSG_ZEROCOPY", 0x400_0000),
        ("MSG_FASTOPEN", 0x2000_0000),
        ("MSG_CMSG_CLOEXEC", 0x4000_0000),
    ],
);

pub static SOCKOPT_LEVEL: FlagSet = values(
    "socket option level",
    &[
        ("SOL_IP", 0),
        ("SOL_SOCKET", 1),
        ("SOL_TCP", 6),
        ("SOL_UDP", 17),
        ("SOL_IPV6", 41),
        ("SOL_RAW", 255),
        ("SOL_NETLINK", 270),
    ],
);

pub static SHUTDOWN_HOW: FlagSet = values(
    "shutdown how",
    &[("SHUT_RD", 0), ("SHUT_WR", 1), ("SHUT_RDWR", 2)],
);

pub static FLOCK: FlagSet = bits(
    "flock operation",
    &[
        ("LOCK_SH", 1),
        ("LOCK_EX", 2),
        ("LOCK_NB", 4),
        ("LOCK_UN", 8),
    ],
);

pub static RENAME: FlagSet = bits(
    "renameat2 flags",
    &[
        ("RENAME_NOREPLACE", 1),
        ("RENAME_EXCHANGE", 2),
        ("RENAME_WHITEOUT", 4),
    ],
);

pub static XATTR: FlagSet = bits("xattr flags", &[("XATTR_CREATE", 1), ("XATTR_REPLACE", 2)]);

pub static RLIMIT: FlagSet = values(
    "resource limit",
    &[
        ("RLIMIT_CPU", 0),
        ("RLIMIT_FSIZE", 1),
        ("RLIMIT_DATA", 2),
        ("RLIMIT_STACK", 3),
        ("RLIMIT_CORE", 4),
        ("RLIMIT_RSS", 5),
        ("RLIMIT_NPROC", 6),
        ("RLIMIT_NOFILE", 7),
        ("RLIMIT_MEMLOCK", 8),
        ("RLIMIT_AS", 9),
        ("RLIMIT_LOCKS", 10),
        ("RLIMIT_SIGPENDING", 11),
        ("RLIMIT_MSGQUEUE", 12),
        ("RLIMIT_NICE", 13),
        ("RLIMIT_RTPRIO", 14),
        ("RLIMIT_RTTIME", 15),
    ],
);

pub static RUSAGE_WHO: FlagSet = FlagSet {
    what: "getrusage who",
    field_mask: u64::MAX,
    // RUSAGE_CHILDREN is -1 as an int; compared after sign-extension to 64 bits.
    field: &[
        ("RUSAGE_SELF", 0),
        ("RUSAGE_CHILDREN", u64::MAX),
        ("RUSAGE_THREAD", 1),
    ],
    field_last: false,
    bits: &[],
};

pub static PRIO_WHICH: FlagSet = values(
    "priority which",
    &[("PRIO_PROCESS", 0), ("PRIO_PGRP", 1), ("PRIO_USER", 2)],
);

pub static SCHED_POLICY: FlagSet = values(
    "scheduling policy",
    &[
        ("SCHED_OTHER", 0),
        ("SCHED_FIFO", 1),
        ("SCHED_RR", 2),
        ("SCHED_BATCH", 3),
        ("SCHED_IDLE", 5),
        ("SCHED_DEADLINE", 6),
        ("SCHED_EXT", 7),
    ],
);

pub static PRCTL_OPTION: FlagSet = values(
    "prctl option",
    &[
        ("PR_SET_PDEATHSIG", 1),
        ("PR_GET_PDEATHSIG", 2),
        ("PR_GET_DUMPABLE", 3),
        ("PR_SET_DUMPABLE", 4),
        ("PR_GET_KEEPCAPS", 7),
        ("PR_SET_KEEPCAPS", 8),
        ("PR_SET_NAME", 15),
        ("PR_GET_NAME", 16),
        ("PR_GET_SECCOMP", 21),
        ("PR_SET_SECCOMP", 22),
        ("PR_CAPBSET_READ", 23),
        ("PR_CAPBSET_DROP", 24),
        ("PR_GET_SECUREBITS", 27),
        ("PR_SET_SECUREBITS", 28),
        ("PR_SET_TIMERSLACK", 29),
        ("PR_GET_TIMERSLACK", 30),
        ("PR_SET_MM", 35),
        ("PR_SET_CHILD_SUBREAPER", 36),
        ("PR_GET_CHILD_SUBREAPER", 37),
        ("PR_SET_NO_NEW_PRIVS", 38),
        ("PR_GET_NO_NEW_PRIVS", 39),
        ("PR_GET_TID_ADDRESS", 40),
        ("PR_SET_THP_DISABLE", 41),
        ("PR_GET_THP_DISABLE", 42),
        ("PR_CAP_AMBIENT", 47),
        ("PR_SET_VMA", 0x5356_4d41),
    ],
);

pub static ARCH_PRCTL_CODE: FlagSet = values(
    "arch_prctl code",
    &[
        ("ARCH_SET_GS", 0x1001),
        ("ARCH_SET_FS", 0x1002),
        ("ARCH_GET_FS", 0x1003),
        ("ARCH_GET_GS", 0x1004),
        ("ARCH_GET_CPUID", 0x1011),
        ("ARCH_SET_CPUID", 0x1012),
        ("ARCH_GET_XCOMP_SUPP", 0x1021),
        ("ARCH_GET_XCOMP_PERM", 0x1022),
        ("ARCH_REQ_XCOMP_PERM", 0x1023),
        ("ARCH_MAP_VDSO_X32", 0x2001),
        ("ARCH_MAP_VDSO_32", 0x2002),
        ("ARCH_MAP_VDSO_64", 0x2003),
        ("ARCH_SHSTK_ENABLE", 0x5001),
        ("ARCH_SHSTK_DISABLE", 0x5002),
        ("ARCH_SHSTK_LOCK", 0x5003),
        ("ARCH_SHSTK_STATUS", 0x5005),
    ],
);

pub static PTRACE_REQUEST: FlagSet = values(
    "ptrace request",
    &[
        ("PTRACE_TRACEME", 0),
        ("PTRACE_PEEKTEXT", 1),
        ("PTRACE_PEEKDATA", 2),
        ("PTRACE_PEEKUSER", 3),
        ("PTRACE_POKETEXT", 4),
        ("PTRACE_POKEDATA", 5),
        ("PTRACE_POKEUSER", 6),
        ("PTRACE_CONT", 7),
        ("PTRACE_KILL", 8),
        ("PTRACE_SINGLESTEP", 9),
        ("PTRACE_GETREGS", 12),
        ("PTRACE_SETREGS", 13),
        ("PTRACE_GETFPREGS", 14),
        ("PTRACE_SETFPREGS", 15),
        ("PTRACE_ATTACH", 16),
        ("PTRACE_DETACH", 17),
        ("PTRACE_SYSCALL", 24),
        ("PTRACE_SYSEMU", 31),
        ("PTRACE_SYSEMU_SINGLESTEP", 32),
        ("PTRACE_SETOPTIONS", 0x4200),
        ("PTRACE_GETEVENTMSG", 0x4201),
        ("PTRACE_GETSIGINFO", 0x4202),
        ("PTRACE_SETSIGINFO", 0x4203),
        ("PTRACE_GETREGSET", 0x4204),
        ("PTRACE_SETREGSET", 0x4205),
        ("PTRACE_SEIZE", 0x4206),
        ("PTRACE_INTERRUPT", 0x4207),
        ("PTRACE_LISTEN", 0x4208),
    ],
);

pub static MOUNT: FlagSet = FlagSet {
    what: "mount flags",
    // Old callers put the magic 0xC0ED in the high 16 bits; Linux ignores it.
    field_mask: 0xffff_0000,
    field: &[("MS_MGC_VAL", 0xc0ed_0000)],
    field_last: false,
    bits: &[
        ("MS_RDONLY", 1),
        ("MS_NOSUID", 2),
        ("MS_NODEV", 4),
        ("MS_NOEXEC", 8),
        ("MS_SYNCHRONOUS", 16),
        ("MS_REMOUNT", 32),
        ("MS_MANDLOCK", 64),
        ("MS_DIRSYNC", 128),
        ("MS_NOSYMFOLLOW", 256),
        ("MS_NOATIME", 1024),
        ("MS_NODIRATIME", 2048),
        ("MS_BIND", 4096),
        ("MS_MOVE", 8192),
        ("MS_REC", 16384),
        ("MS_SILENT", 32768),
        ("MS_POSIXACL", 1 << 16),
        ("MS_UNBINDABLE", 1 << 17),
        ("MS_PRIVATE", 1 << 18),
        ("MS_SLAVE", 1 << 19),
        ("MS_SHARED", 1 << 20),
        ("MS_RELATIME", 1 << 21),
        ("MS_KERNMOUNT", 1 << 22),
        ("MS_I_VERSION", 1 << 23),
        ("MS_STRICTATIME", 1 << 24),
        ("MS_LAZYTIME", 1 << 25),
    ],
};

pub static UMOUNT: FlagSet = bits(
    "umount2 flags",
    &[
        ("MNT_FORCE", 1),
        ("MNT_DETACH", 2),
        ("MNT_EXPIRE", 4),
        ("UMOUNT_NOFOLLOW", 8),
    ],
);

pub static GETRANDOM: FlagSet = bits(
    "getrandom flags",
    &[
        ("GRND_NONBLOCK", 1),
        ("GRND_RANDOM", 2),
        ("GRND_INSECURE", 4),
    ],
);

pub static CLOSE_RANGE: FlagSet = bits(
    "close_range flags",
    &[("CLOSE_RANGE_UNSHARE", 2), ("CLOSE_RANGE_CLOEXEC", 4)],
);

pub static FALLOCATE: FlagSet = bits(
    "fallocate mode",
    &[
        ("FALLOC_FL_KEEP_SIZE", 0x1),
        ("FALLOC_FL_PUNCH_HOLE", 0x2),
        ("FALLOC_FL_NO_HIDE_STALE", 0x4),
        ("FALLOC_FL_COLLAPSE_RANGE", 0x8),
        ("FALLOC_FL_ZERO_RANGE", 0x10),
        ("FALLOC_FL_INSERT_RANGE", 0x20),
        ("FALLOC_FL_UNSHARE_RANGE", 0x40),
    ],
);

pub static FADVISE: FlagSet = values(
    "fadvise advice",
    &[
        ("POSIX_FADV_NORMAL", 0),
        ("POSIX_FADV_RANDOM", 1),
        ("POSIX_FADV_SEQUENTIAL", 2),
        ("POSIX_FADV_WILLNEED", 3),
        ("POSIX_FADV_DONTNEED", 4),
        ("POSIX_FADV_NOREUSE", 5),
    ],
);

pub static SPLICE: FlagSet = bits(
    "splice flags",
    &[
        ("SPLICE_F_MOVE", 1),
        ("SPLICE_F_NONBLOCK", 2),
        ("SPLICE_F_MORE", 4),
        ("SPLICE_F_GIFT", 8),
    ],
);

pub static SECCOMP_OP: FlagSet = values(
    "seccomp operation",
    &[
        ("SECCOMP_SET_MODE_STRICT", 0),
        ("SECCOMP_SET_MODE_FILTER", 1),
        ("SECCOMP_GET_ACTION_AVAIL", 2),
        ("SECCOMP_GET_NOTIF_SIZES", 3),
    ],
);

/// Every set, for documentation and for the consistency tests.
pub static ALL: &[&FlagSet] = &[
    &OPEN,
    &AT,
    &FACCESSAT,
    &ACCESS_MODE,
    &PROT,
    &MMAP,
    &MREMAP,
    &MSYNC,
    &MADVISE,
    &MLOCKALL,
    &CLONE,
    &FCNTL_CMD,
    &SEEK_WHENCE,
    &CLOCKS,
    &TIMER,
    &TIMERFD_SETTIME,
    &ITIMER,
    &SIGPROCMASK_HOW,
    &WAIT,
    &IDTYPE,
    &CLOEXEC,
    &PIPE2,
    &NONBLOCK_CLOEXEC,
    &EPOLL_CREATE,
    &EVENTFD,
    &MEMFD,
    &EPOLL_CTL_OP,
    &FUTEX_OP,
    &ADDRESS_FAMILY,
    &SOCKET_TYPE,
    &SOCKET_FLAGS,
    &MSG,
    &SOCKOPT_LEVEL,
    &SHUTDOWN_HOW,
    &FLOCK,
    &RENAME,
    &XATTR,
    &RLIMIT,
    &RUSAGE_WHO,
    &PRIO_WHICH,
    &SCHED_POLICY,
    &PRCTL_OPTION,
    &ARCH_PRCTL_CODE,
    &PTRACE_REQUEST,
    &MOUNT,
    &UMOUNT,
    &GETRANDOM,
    &CLOSE_RANGE,
    &FALLOCATE,
    &FADVISE,
    &SPLICE,
    &SECCOMP_OP,
];
