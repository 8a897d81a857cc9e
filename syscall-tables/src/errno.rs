//! Linux errno numbers, names and messages.
//!
//! Messages are the ones glibc's `strerror` gives, which are what strace prints after the
//! name (`-1 ENOENT (No such file or directory)`). Numbers 41 and 58 have never been
//! assigned on Linux (they would be the aliases `EWOULDBLOCK` and `EDEADLOCK`, which share
//! 11 and 35), so `ERRNOS` has 131 rows for 1..=133.

/// One errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrnoInfo {
    pub number: i32,
    /// `"ENOENT"`.
    pub name: &'static str,
    /// `"No such file or directory"`.
    pub message: &'static str,
}

const fn e(number: i32, name: &'static str, message: &'static str) -> ErrnoInfo {
    ErrnoInfo {
        number,
        name,
        message,
    }
}

/// Every errno an application can see, in number order (1..=133, no 41 or 58).
pub static ERRNOS: &[ErrnoInfo] = &[
    e(1, "EPERM", "Operation not permitted"),
    e(2, "ENOENT", "No such file or directory"),
    e(3, "ESRCH", "No such process"),
    e(4, "EINTR", "Interrupted system call"),
    e(5, "EIO", "Input/output error"),
    e(6, "ENXIO", "No such device or address"),
    e(7, "E2BIG", "Argument list too long"),
    e(8, "ENOEXEC", "Exec format error"),
    e(9, "EBADF", "Bad file descriptor"),
    e(10, "ECHILD", "No child processes"),
    e(11, "EAGAIN", "Resource temporarily unavailable"),
    e(12, "ENOMEM", "Cannot allocate memory"),
    e(13, "EACCES", "Permission denied"),
    e(14, "EFAULT", "Bad address"),
    e(15, "ENOTBLK", "Block device required"),
    e(16, "EBUSY", "Device or resource busy"),
    e(17, "EEXIST", "File exists"),
    e(18, "EXDEV", "Invalid cross-device link"),
    e(19, "ENODEV", "No such device"),
    e(20, "ENOTDIR", "Not a directory"),
    e(21, "EISDIR", "Is a directory"),
    e(22, "EINVAL", "Invalid argument"),
    e(23, "ENFILE", "Too many open files in system"),
    e(24, "EMFILE", "Too many open files"),
    e(25, "ENOTTY", "Inappropriate ioctl for device"),
    e(26, "ETXTBSY", "Text file busy"),
    e(27, "EFBIG", "File too large"),
    e(28, "ENOSPC", "No space left on device"),
    e(29, "ESPIPE", "Illegal seek"),
    e(30, "EROFS", "Read-only file system"),
    e(31, "EMLINK", "Too many links"),
    e(32, "EPIPE", "Broken pipe"),
    e(33, "EDOM", "Numerical argument out of domain"),
    e(34, "ERANGE", "Numerical result out of range"),
    e(35, "EDEADLK", "Resource deadlock avoided"),
    e(36, "ENAMETOOLONG", "File name too long"),
    e(37, "ENOLCK", "No locks available"),
    e(38, "ENOSYS", "Function not implemented"),
    e(39, "ENOTEMPTY", "Directory not empty"),
    e(40, "ELOOP", "Too many levels of symbolic links"),
    e(42, "ENOMSG", "No message of desired type"),
    e(43, "EIDRM", "Identifier removed"),
    e(44, "ECHRNG", "Channel number out of range"),
    e(45, "EL2NSYNC", "Level 2 not synchronized"),
    e(46, "EL3HLT", "Level 3 halted"),
    e(47, "EL3RST", "Level 3 reset"),
    e(48, "ELNRNG", "Link number out of range"),
    e(49, "EUNATCH", "Protocol driver not attached"),
    e(50, "ENOCSI", "No CSI structure available"),
    e(51, "EL2HLT", "Level 2 halted"),
    e(52, "EBADE", "Invalid exchange"),
    e(53, "EBADR", "Invalid request descriptor"),
    e(54, "EXFULL", "Exchange full"),
    e(55, "ENOANO", "No anode"),
    e(56, "EBADRQC", "Invalid request code"),
    e(57, "EBADSLT", "Invalid slot"),
    e(59, "EBFONT", "Bad font file format"),
    e(60, "ENOSTR", "Device not a stream"),
    e(61, "ENODATA", "No data available"),
    e(62, "ETIME", "Timer expired"),
    e(63, "ENOSR", "Out of streams resources"),
    e(64, "ENONET", "Machine is not on the network"),
    e(65, "ENOPKG", "Package not installed"),
    e(66, "EREMOTE", "Object is remote"),
    e(67, "ENOLINK", "Link has been severed"),
    e(68, "EADV", "Advertise error"),
    e(69, "ESRMNT", "Srmount error"),
    e(70, "ECOMM", "Communication error on send"),
    e(71, "EPROTO", "Protocol error"),
    e(72, "EMULTIHOP", "Multihop attempted"),
    e(73, "EDOTDOT", "RFS specific error"),
    e(74, "EBADMSG", "Bad message"),
    e(75, "EOVERFLOW", "Value too large for defined data type"),
    e(76, "ENOTUNIQ", "Name not unique on network"),
    e(77, "EBADFD", "File descriptor in bad state"),
    e(78, "EREMCHG", "Remote address changed"),
    e(79, "ELIBACC", "Can not access a needed shared library"),
    e(80, "ELIBBAD", "Accessing a corrupted shared library"),
    e(81, "ELIBSCN", ".lib section in a.out corrupted"),
    e(
        82,
        "ELIBMAX",
        "Attempting to link in too many shared libraries",
    ),
    e(83, "ELIBEXEC", "Cannot exec a shared library directly"),
    e(
        84,
        "EILSEQ",
        "Invalid or incomplete multibyte or wide character",
    ),
    e(
        85,
        "ERESTART",
        "Interrupted system call should be restarted",
    ),
    e(86, "ESTRPIPE", "Streams pipe error"),
    e(87, "EUSERS", "Too many users"),
    e(88, "ENOTSOCK", "Socket operation on non-socket"),
    e(89, "EDESTADDRREQ", "Destination address required"),
    e(90, "EMSGSIZE", "Message too long"),
    e(91, "EPROTOTYPE", "Protocol wrong type for socket"),
    e(92, "ENOPROTOOPT", "Protocol not available"),
    e(93, "EPROTONOSUPPORT", "Protocol not supported"),
    e(94, "ESOCKTNOSUPPORT", "Socket type not supported"),
    e(95, "EOPNOTSUPP", "Operation not supported"),
    e(96, "EPFNOSUPPORT", "Protocol family not supported"),
    e(
        97,
        "EAFNOSUPPORT",
        "Address family not supported by protocol",
    ),
    e(98, "EADDRINUSE", "Address already in use"),
    e(99, "EADDRNOTAVAIL", "Cannot assign requested address"),
    e(100, "ENETDOWN", "Network is down"),
    e(101, "ENETUNREACH", "Network is unreachable"),
    e(102, "ENETRESET", "Network dropped connection on reset"),
    e(103, "ECONNABORTED", "Software caused connection abort"),
    e(104, "ECONNRESET", "Connection reset by peer"),
    e(105, "ENOBUFS", "No buffer space available"),
    e(106, "EISCONN", "Transport endpoint is already connected"),
    e(107, "ENOTCONN", "Transport endpoint is not connected"),
    e(
        108,
        "ESHUTDOWN",
        "Cannot send after transport endpoint shutdown",
    ),
    e(109, "ETOOMANYREFS", "Too many references: cannot splice"),
    e(110, "ETIMEDOUT", "Connection timed out"),
    e(111, "ECONNREFUSED", "Connection refused"),
    e(112, "EHOSTDOWN", "Host is down"),
    e(113, "EHOSTUNREACH", "No route to host"),
    e(114, "EALREADY", "Operation already in progress"),
    e(115, "EINPROGRESS", "Operation now in progress"),
    e(116, "ESTALE", "Stale file handle"),
    e(117, "EUCLEAN", "Structure needs cleaning"),
    e(118, "ENOTNAM", "Not a XENIX named type file"),
    e(119, "ENAVAIL", "No XENIX semaphores available"),
    e(120, "EISNAM", "Is a named type file"),
    e(121, "EREMOTEIO", "Remote I/O error"),
    e(122, "EDQUOT", "Disk quota exceeded"),
    e(123, "ENOMEDIUM", "No medium found"),
    e(124, "EMEDIUMTYPE", "Wrong medium type"),
    e(125, "ECANCELED", "Operation canceled"),
    e(126, "ENOKEY", "Required key not available"),
    e(127, "EKEYEXPIRED", "Key has expired"),
    e(128, "EKEYREVOKED", "Key has been revoked"),
    e(129, "EKEYREJECTED", "Key was rejected by service"),
    e(130, "EOWNERDEAD", "Owner died"),
    e(131, "ENOTRECOVERABLE", "State not recoverable"),
    e(132, "ERFKILL", "Operation not possible due to RF-kill"),
    e(133, "EHWPOISON", "Memory page has hardware error"),
];

/// Errnos that exist only inside the kernel: a syscall returns one of these to ask for a
/// restart, and the application never sees it. The sentry uses them the same way, so
/// they have names for its logs and `--strace`.
pub static KERNEL_INTERNAL: &[ErrnoInfo] = &[
    e(512, "ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    e(513, "ERESTARTNOINTR", "To be restarted"),
    e(514, "ERESTARTNOHAND", "To be restarted if no handler"),
    e(515, "ENOIOCTLCMD", "No ioctl command"),
    e(516, "ERESTART_RESTARTBLOCK", "Interrupted by signal"),
];

/// Aliases Linux defines for existing numbers.
const ALIASES: &[(&str, i32)] = &[("EWOULDBLOCK", 11), ("EDEADLOCK", 35)];

/// The row for errno `n`, among application-visible and kernel-internal errnos.
pub fn info(n: i32) -> Option<&'static ErrnoInfo> {
    ERRNOS
        .iter()
        .chain(KERNEL_INTERNAL)
        .find(|row| row.number == n)
}

/// The name of errno `n` (`"ENOENT"` for 2).
pub fn name(n: i32) -> Option<&'static str> {
    info(n).map(|row| row.name)
}

/// The message for errno `n` (`"No such file or directory"` for 2).
pub fn message(n: i32) -> Option<&'static str> {
    info(n).map(|row| row.message)
}

/// The number of the errno called `name`, aliases included (`EWOULDBLOCK` is 11).
pub fn number(name: &str) -> Option<i32> {
    ERRNOS
        .iter()
        .chain(KERNEL_INTERNAL)
        .find(|row| row.name == name)
        .map(|row| row.number)
        .or_else(|| {
            ALIASES
                .iter()
                .find(|(alias, _)| *alias == name)
                .map(|(_, n)| *n)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spot_checks() {
        assert_eq!(name(2), Some("ENOENT"));
        assert_eq!(message(2), Some("No such file or directory"));
        assert_eq!(name(11), Some("EAGAIN"));
        assert_eq!(name(38), Some("ENOSYS"));
        assert_eq!(message(38), Some("Function not implemented"));
        assert_eq!(name(1), Some("EPERM"));
        assert_eq!(name(133), Some("EHWPOISON"));
        assert_eq!(name(512), Some("ERESTARTSYS"));
        assert_eq!(number("EWOULDBLOCK"), Some(11));
        assert_eq!(number("ENOENT"), Some(2));
    }

    #[test]
    fn unknown_numbers_have_no_name() {
        for n in [0, -1, 41, 58, 134, 511, i32::MIN, i32::MAX] {
            assert_eq!(name(n), None, "errno {n}");
        }
    }

    #[test]
    fn table_is_sorted_unique_and_covers_1_to_133() {
        let numbers: Vec<i32> = ERRNOS.iter().map(|row| row.number).collect();
        let expected: Vec<i32> = (1..=133).filter(|n| *n != 41 && *n != 58).collect();
        assert_eq!(numbers, expected);
        let mut names: Vec<&str> = ERRNOS.iter().map(|row| row.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ERRNOS.len());
        assert!(ERRNOS
            .iter()
            .all(|row| row.name.starts_with('E') && !row.message.is_empty()));
    }
}
