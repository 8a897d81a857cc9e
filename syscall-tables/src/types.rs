//! Types shared by every architecture's table.

/// A set of named values for one argument: a bit mask (`O_CLOEXEC|O_NONBLOCK`), an
/// enumeration (`F_GETFD`), or both at once (the access mode in the low bits of open
/// flags, the exit signal in the low byte of clone flags).
#[derive(Debug)]
pub struct FlagSet {
    /// What the set is, for documentation (`"open flags"`).
    pub what: &'static str,
    /// Bits that hold one enumerated value rather than independent flags (0 if none).
    pub field_mask: u64,
    /// Names of the values of the masked field (`O_RDONLY` = 0, `O_WRONLY` = 1, …).
    pub field: &'static [(&'static str, u64)],
    /// Print the field's name after the flags rather than before (`…|SIGCHLD` in clone
    /// flags, as strace does).
    pub field_last: bool,
    /// Independent flags, composite ones first (`O_SYNC` before `O_DSYNC`). An entry
    /// whose value is 0 names the empty set (`PROT_NONE`).
    pub bits: &'static [(&'static str, u64)],
}

/// How one syscall argument is decoded and printed.
#[derive(Debug, Clone, Copy)]
pub enum ArgKind {
    /// A file descriptor.
    Fd,
    /// A directory file descriptor for `*at` calls; `AT_FDCWD` is named.
    DirFd,
    /// A NUL-terminated path name.
    Path,
    /// A NUL-terminated string that is not a path (an xattr name, a filesystem type).
    Str,
    /// A buffer the kernel reads, whose length is argument `n` (0-based).
    InBuf(u8),
    /// A buffer the kernel fills, whose capacity is argument `n` (0-based).
    OutBuf(u8),
    /// A pointer to a structure, named as in Linux (`"stat"`, `"sigaction"`).
    Struct(&'static str),
    /// A signed 32-bit integer.
    Int,
    /// An unsigned 32-bit integer.
    UInt,
    /// A signed 64-bit integer.
    Long,
    /// An unsigned 64-bit integer.
    ULong,
    /// A byte count (`size_t`).
    Size,
    /// A file offset (`off_t`/`loff_t`).
    Offset,
    /// A word printed in hexadecimal (flags we do not decode, magic numbers).
    Hex,
    /// Flags or an enumerated value from a known set.
    Flags(&'static FlagSet),
    /// A file mode (`0644`, `S_IFCHR|0620`), printed in octal.
    Mode,
    /// The mode of `open`-like calls: used, and printed, only when the flags in argument
    /// `n` (0-based) hold `O_CREAT` or `O_TMPFILE`.
    CreatMode(u8),
    /// A signal number (`SIGTERM`).
    Signal,
    /// A process or thread id.
    Pid,
    /// A user id (`-1` means "unchanged").
    Uid,
    /// A group id (`-1` means "unchanged").
    Gid,
    /// A clock id (`CLOCK_MONOTONIC`).
    ClockId,
    /// An array of `struct iovec` the kernel reads from, whose count is argument `n`.
    InIoVec(u8),
    /// An array of `struct iovec` the kernel writes to, whose count is argument `n`.
    OutIoVec(u8),
    /// A NULL-terminated array of strings (`argv`).
    StrArray,
    /// A NULL-terminated array of `NAME=value` strings (`envp`), printed as a count.
    EnvArray,
    /// An address or opaque pointer.
    Ptr,
}

/// What a syscall returns on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetKind {
    /// An integer (0 for success in most calls).
    Int,
    /// A new file descriptor.
    Fd,
    /// A byte count.
    Size,
    /// An address, printed in hexadecimal.
    Addr,
    /// A process or thread id.
    Pid,
    /// A file mode, printed in octal (`umask`).
    Mode,
    /// Nothing: the call does not return to its caller (`exit`, `rt_sigreturn`).
    NoReturn,
}

/// How far Carapace supports a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Implemented with Linux's semantics, as far as the tests know.
    Implemented,
    /// Implemented for the common cases; the note says what is missing.
    Partial,
    /// Returns `ENOSYS`.
    Unimplemented,
}

impl Status {
    /// The word used in `docs/syscalls.md`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Implemented => "implemented",
            Status::Partial => "partial",
            Status::Unimplemented => "unimplemented",
        }
    }
}

/// One syscall argument.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// The parameter's name in the man page (`pathname`).
    pub name: &'static str,
    pub kind: ArgKind,
}

/// One row of a syscall table.
#[derive(Debug)]
pub struct Syscall {
    pub nr: u64,
    /// Linux's name (`openat`).
    pub name: &'static str,
    /// At most six arguments, in register order.
    pub args: &'static [Arg],
    pub ret: RetKind,
    pub status: Status,
    /// One line on the support status; empty when there is nothing to say.
    pub note: &'static str,
}

/// The architectures that have a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
}

impl Arch {
    /// The name used in documentation (`x86_64`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
        }
    }
}
