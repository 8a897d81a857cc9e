//! Errors that become an errno for the application.
#![deny(unsafe_code)]

use core::fmt;

/// A Linux error number, always positive (`ENOENT` is 2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

macro_rules! errno_consts {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(pub const $name: Errno = Errno(libc::$name);)*
        }
    };
}

errno_consts!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    ENOEXEC,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    ETXTBSY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EMLINK,
    EPIPE,
    EDOM,
    ERANGE,
    EDEADLK,
    ENAMETOOLONG,
    ENOLCK,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENODATA,
    EOVERFLOW,
    EOPNOTSUPP,
    ENOTSUP,
    ENOTSOCK,
    ETIMEDOUT,
    ECONNREFUSED,
    EALREADY,
    EINPROGRESS,
    ELIBBAD,
    ERESTART,
    EADDRINUSE,
    EADDRNOTAVAIL,
    EAFNOSUPPORT,
    ECONNRESET,
    EDESTADDRREQ,
    EISCONN,
    EMSGSIZE,
    ENOPROTOOPT,
    ENOTCONN,
    EPROTONOSUPPORT,
    EPROTOTYPE,
    ESOCKTNOSUPPORT,
    ENOBUFS,
    ENETUNREACH,
);

/// Kernel-internal: the syscall was interrupted and should restart transparently if the
/// signal handler allows it (Linux's `ERESTARTSYS`). Never reaches the application.
pub const ERESTARTSYS: i32 = 512;

/// Kernel-internal: restart transparently unless a handler ran, then `EINTR` whatever
/// SA_RESTART says (Linux's `ERESTARTNOHAND`: poll, select, pause-like waits).
pub const ERESTARTNOHAND: i32 = 514;

impl Errno {
    pub const ERESTARTSYS: Errno = Errno(ERESTARTSYS);
    pub const ERESTARTNOHAND: Errno = Errno(ERESTARTNOHAND);

    /// An errno from a raw number, as returned by the host or the gofer.
    pub const fn from_raw(n: i32) -> Errno {
        Errno(n)
    }

    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The name (`"ENOENT"`), for logs and `--strace`.
    pub fn name(self) -> &'static str {
        syscall_tables::errno::name(self.0).unwrap_or("E?")
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

/// An error on its way to the application: the errno it will see, and why, for the logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub errno: Errno,
    pub msg: &'static str,
}

impl Error {
    pub const fn new(errno: Errno) -> Error {
        Error { errno, msg: "" }
    }

    pub const fn with_msg(errno: Errno, msg: &'static str) -> Error {
        Error { errno, msg }
    }

    /// The host's `errno` after a failed host call made on the application's behalf.
    pub fn last_os_error() -> Error {
        let raw = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        Error::new(Errno(raw))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.msg.is_empty() {
            write!(f, "{:?}", self.errno)
        } else {
            write!(f, "{:?}: {}", self.errno, self.msg)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<Errno> for Error {
    fn from(errno: Errno) -> Error {
        Error::new(errno)
    }
}

impl From<nix::errno::Errno> for Error {
    fn from(e: nix::errno::Errno) -> Error {
        Error::new(Errno(e as i32))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(Errno(e.raw_os_error().unwrap_or(libc::EIO)))
    }
}

pub type Result<T> = core::result::Result<T, Error>;

/// `return_errno!(EINVAL)` or `return_errno!(EINVAL, "why")`.
#[macro_export]
macro_rules! return_errno {
    ($errno:ident) => {
        return Err($crate::error::Error::new($crate::error::Errno::$errno))
    };
    ($errno:ident, $msg:expr) => {
        return Err($crate::error::Error::with_msg(
            $crate::error::Errno::$errno,
            $msg,
        ))
    };
}

/// `errno!(EINVAL)` builds the error without returning: `.ok_or(errno!(EBADF))?`.
#[macro_export]
macro_rules! errno {
    ($errno:ident) => {
        $crate::error::Error::new($crate::error::Errno::$errno)
    };
    ($errno:ident, $msg:expr) => {
        $crate::error::Error::with_msg($crate::error::Errno::$errno, $msg)
    };
}
